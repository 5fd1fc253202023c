package raftnode

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3"
)

// Metrics are the raft node's Prometheus metrics.
type Metrics struct {
	IsLeader      prometheus.Gauge
	HasLeader     prometheus.Gauge
	LeaderChanges prometheus.Counter
	Proposals     prometheus.Counter
	WALSync       prometheus.Histogram
}

// NewMetrics creates the metrics and registers them on reg when non-nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		IsLeader:      prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "is_leader", Help: "1 when this member is the raft leader."}),
		HasLeader:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "raft", Name: "has_leader", Help: "1 when this member knows a leader."}),
		LeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "raft", Name: "leader_changes_total", Help: "Leader changes seen by this member."}),
		Proposals:     prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "raft", Name: "proposals_total", Help: "Proposals submitted to raft by this member."}),
		WALSync: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "cairn", Subsystem: "wal", Name: "fsync_duration_seconds", Help: "Latency of WAL group commits (append + fsync).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.IsLeader, m.HasLeader, m.LeaderChanges, m.Proposals, m.WALSync)
	}
	return m
}

func (m *Metrics) setState(s raft.StateType, hasLeader bool) {
	if s == raft.StateLeader {
		m.IsLeader.Set(1)
	} else {
		m.IsLeader.Set(0)
	}
	if hasLeader {
		m.HasLeader.Set(1)
	} else {
		m.HasLeader.Set(0)
	}
}
