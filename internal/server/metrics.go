package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	applyDuration    prometheus.Histogram
	appliedEntries   prometheus.Counter
	appliedIndex     prometheus.Gauge
	keys             prometheus.Gauge
	revision         prometheus.Gauge
	snapshotDuration prometheus.Histogram
	proposalsFailed  prometheus.Counter
	readIndexRounds  prometheus.Counter
	watchNotify      prometheus.Histogram
	watchSendDelay   prometheus.Histogram
	watchFellBehind  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "cairn", Subsystem: "server", Name: "apply_duration_seconds",
			Help: "Time to apply one batch of committed entries.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 20)}),
		appliedEntries:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "server", Name: "applied_entries_total", Help: "Committed entries applied."}),
		appliedIndex:     prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "server", Name: "applied_index", Help: "Last applied raft index."}),
		keys:             prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "mvcc", Name: "keys", Help: "Live keys at the current revision."}),
		revision:         prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "cairn", Subsystem: "mvcc", Name: "revision", Help: "Current store revision."}),
		snapshotDuration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "cairn", Subsystem: "server", Name: "snapshot_duration_seconds", Help: "Time to serialize and save a snapshot.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		proposalsFailed:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "server", Name: "proposals_failed_total", Help: "Proposals that failed or timed out."}),
		readIndexRounds:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "server", Name: "read_index_rounds_total", Help: "ReadIndex rounds (each serves every linearizable read waiting when it starts)."}),
		watchNotify: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "cairn", Subsystem: "watch", Name: "notify_duration_seconds",
			Help: "Time the applier spends handing one applied batch's events to every matching watcher's queue (the fan-out, short of the network send).", Buckets: prometheus.ExponentialBuckets(0.000001, 2, 24)}),
		watchSendDelay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "cairn", Subsystem: "watch", Name: "send_delay_seconds",
			Help: "Time from an events response being queued for a watcher (at apply, or when caught up from history) to its send loop handing it to gRPC.", Buckets: prometheus.ExponentialBuckets(0.00001, 2, 22)}),
		watchFellBehind: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cairn", Subsystem: "watch", Name: "fell_behind_total",
			Help: "Watchers moved aside because their stream's queue was full (each is caught up from history as soon as its stream's send loop makes room)."}),
	}
	if reg != nil {
		reg.MustRegister(m.applyDuration, m.appliedEntries, m.appliedIndex, m.keys, m.revision, m.snapshotDuration, m.proposalsFailed, m.readIndexRounds, m.watchNotify, m.watchSendDelay, m.watchFellBehind)
	}
	return m
}

func (m *metrics) observeApply(n int, d time.Duration, keys int, rev int64, applied uint64) {
	m.applyDuration.Observe(d.Seconds())
	m.appliedEntries.Add(float64(n))
	m.keys.Set(float64(keys))
	m.revision.Set(float64(rev))
	m.appliedIndex.Set(float64(applied))
}
