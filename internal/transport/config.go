package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"
)

// Raft is the part of the raft node the transport drives. It is owned by the
// consumer (internal/raftnode) and must be safe for concurrent use: Process is
// called from HTTP handler goroutines, the Report methods from per-peer sender
// goroutines and, for a MsgSnap that cannot even be queued, from Send itself.
// None of the methods may block on the caller of Transport.Send.
type Raft interface {
	// Process steps a message received from a peer into raft.
	Process(ctx context.Context, m *raftpb.Message) error
	// ReportUnreachable tells raft that the last send to id failed.
	ReportUnreachable(id uint64)
	// ReportSnapshot tells raft how the MsgSnap sent to id ended.
	ReportSnapshot(id uint64, failed bool)
}

// Defaults applied by New to zero Config fields.
const (
	DefaultQueueSize   = 4096
	DefaultDialTimeout = time.Second
)

// Config configures a Transport.
type Config struct {
	// ID is this member's raft ID; must not be 0. Messages whose To differs are
	// rejected by the receiver.
	ID uint64
	// ClusterID identifies the cluster; a peer presenting another ClusterID is
	// answered with HTTP 412 and its messages never reach Raft.
	ClusterID uint64
	// Raft receives messages and send reports; required.
	Raft Raft
	// Logger receives transport logs; nil discards them.
	Logger *slog.Logger
	// QueueSize is the per-peer message queue length (messages). When a
	// queue is full, Send drops the message (raft retries) and counts it.
	// 0 means DefaultQueueSize.
	QueueSize int
	// DialTimeout bounds establishing a TCP connection to a peer. 0 means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Registerer, if non-nil, receives the transport's Prometheus
	// collectors (cairn_transport_*).
	Registerer prometheus.Registerer
	// OnStreamLost, if non-nil, is called (from a handler goroutine) when a
	// peer's incoming message stream breaks without a clean end, which is
	// what a crashed or killed peer looks like. The raft node uses it to
	// stop waiting out a full election timeout for a leader that is gone.
	OnStreamLost func(from uint64)
}

// Sentinel errors.
var (
	// ErrInvalidConfig is wrapped by Config.Validate and New.
	ErrInvalidConfig = errors.New("transport: invalid config")
	// ErrClusterIDMismatch: the peer belongs to another cluster (HTTP 412).
	ErrClusterIDMismatch = errors.New("transport: cluster ID mismatch")
	// ErrMemberIDMismatch: the request or a message was addressed to
	// another member than the receiver.
	ErrMemberIDMismatch = errors.New("transport: member ID mismatch")
	// ErrFrameTooLarge: a frame length prefix exceeds MaxFrameSize (or a
	// snapshot's Data exceeds MaxSnapshotSize).
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrBadFrame: a frame does not hold a valid raftpb.Message.
	ErrBadFrame = errors.New("transport: malformed frame")
	// ErrStopped: the transport has been stopped (HTTP 503 on the handler).
	ErrStopped = errors.New("transport: stopped")
)

// Validate reports the first invalid field, naming it.
func (c *Config) Validate() error {
	switch {
	case c.ID == 0:
		return fmt.Errorf("%w: ID must be a non-zero member ID", ErrInvalidConfig)
	case c.Raft == nil:
		return fmt.Errorf("%w: Raft must be set", ErrInvalidConfig)
	case c.QueueSize < 0:
		return fmt.Errorf("%w: QueueSize %d is negative", ErrInvalidConfig, c.QueueSize)
	case c.DialTimeout < 0:
		return fmt.Errorf("%w: DialTimeout %v is negative", ErrInvalidConfig, c.DialTimeout)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
