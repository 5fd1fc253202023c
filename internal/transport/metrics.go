package transport

import (
	"errors"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Drop reasons used as the "reason" label of cairn_transport_messages_dropped_total.
const (
	dropQueueFull   = "queue_full"
	dropSendFailed  = "send_failed"
	dropUnknownPeer = "unknown_peer"
	dropStopped     = "stopped"
	dropWrongMember = "wrong_member"
	// dropProposalBacklog: a forwarded proposal received while raft could
	// not take proposals and proposalQueueSize more were waiting.
	dropProposalBacklog = "proposal_backlog"
)

type metrics struct {
	sent      *prometheus.CounterVec // to
	dropped   *prometheus.CounterVec // to, reason
	failures  *prometheus.CounterVec // to
	received  *prometheus.CounterVec // from
	snapshots *prometheus.CounterVec // to, result
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "transport", Name: "messages_sent_total",
			Help: "Raft messages written to a peer's connection.",
		}, []string{"to"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "transport", Name: "messages_dropped_total",
			Help: "Raft messages dropped before reaching a peer, by reason.",
		}, []string{"to", "reason"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "transport", Name: "send_failures_total",
			Help: "Failed batch writes or connection attempts to a peer.",
		}, []string{"to"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "transport", Name: "messages_received_total",
			Help: "Raft messages received from a peer and handed to raft.",
		}, []string{"from"}),
		snapshots: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cairn", Subsystem: "transport", Name: "snapshots_sent_total",
			Help: "Snapshot transfers to a peer, by result (ok or failed).",
		}, []string{"to", "result"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.sent, m.dropped, m.failures, m.received, m.snapshots} {
			if err := reg.Register(c); err != nil {
				return nil, errors.Join(ErrInvalidConfig, err)
			}
		}
	}
	return m, nil
}

// peerCounters caches the per-peer children so the hot path skips the label lookup.
type peerCounters struct {
	sent, droppedFull, droppedFailed, droppedStopped, failures prometheus.Counter
}

func (m *metrics) forPeer(id uint64) peerCounters {
	to := idString(id)
	return peerCounters{
		sent:           m.sent.WithLabelValues(to),
		droppedFull:    m.dropped.WithLabelValues(to, dropQueueFull),
		droppedFailed:  m.dropped.WithLabelValues(to, dropSendFailed),
		droppedStopped: m.dropped.WithLabelValues(to, dropStopped),
		failures:       m.failures.WithLabelValues(to),
	}
}

func (m *metrics) deletePeer(id uint64) {
	to := idString(id)
	m.sent.DeletePartialMatch(prometheus.Labels{"to": to})
	m.dropped.DeletePartialMatch(prometheus.Labels{"to": to})
	m.failures.DeletePartialMatch(prometheus.Labels{"to": to})
	m.snapshots.DeletePartialMatch(prometheus.Labels{"to": to})
}

// idString formats a member ID the way etcd prints them (hex).
func idString(id uint64) string { return strconv.FormatUint(id, 16) }
