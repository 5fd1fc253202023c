// Package server turns client requests into raft proposals and linearizable
// reads, and applies the committed log to the state machine.
//
// Entry points: New builds a Server over a started raft node and the state
// it restored; Range, Txn and Compact serve the KV API; Status, HashKV and
// Members serve Maintenance and Cluster. The apply loop (apply.go) is the
// only writer of the MVCC store and the member table.
//
// Writes: the request is encoded as a command.Command with a unique ID,
// a waiter is registered under that ID (wait.go), the command is proposed to
// raft (a follower's raft forwards it to the leader), and the caller waits
// until the applier of THIS member applies it and triggers the waiter with
// the result. Every check that depends on state is made in apply, so a
// command has the same outcome on every member.
//
// Reads: linearizable reads share ReadIndex rounds (read.go): one round
// serves every read that arrived before it started; the read then waits until
// the applied index reaches the read index. Serializable reads are served
// from local state at once.
//
// Imports: mvcc, command, raftnode (for its Apply and ReadState types) and
// raftpb for configuration-change entries; never the API wire types.
package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/raftnode"
	"github.com/cairn-db/cairn/internal/watch"
)

// Errors returned by the server. Their texts are etcd's, so the API edge
// maps each to etcd's gRPC error.
var (
	ErrTimeout          = errors.New("etcdserver: request timed out")
	ErrNoLeader         = errors.New("etcdserver: no leader")
	ErrStopped          = errors.New("etcdserver: server stopped")
	ErrRequestTooLarge  = errors.New("etcdserver: request is too large")
	ErrLeaderChanged    = errors.New("etcdserver: leader changed")
	ErrNotLeader        = errors.New("etcdserver: not leader")
	ErrBadTransferee    = errors.New("etcdserver: bad leader transferee")
	ErrTransferTimeout  = errors.New("etcdserver: request timed out, leader transfer took too long")
	ErrCorruptCommitted = errors.New("server: a committed entry could not be decoded")
)

// RaftNode is what the server needs of the raft node (raftnode.Node).
type RaftNode interface {
	Propose(ctx context.Context, data []byte) error
	ReadIndex(ctx context.Context, rctx []byte) error
	ReadStates() <-chan raftnode.ReadState
	Apply() <-chan raftnode.Apply
	ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState
	// CreateSnapshot saves a snapshot of the state at index; write streams
	// the state into the snapshot file.
	CreateSnapshot(ctx context.Context, index uint64, cs *raftpb.ConfState, write func(io.Writer) error) error
	Leader() uint64
	Term() uint64
	IsLeader() bool
	// TransferLeadership asks raft to hand leadership to transferee.
	TransferLeadership(ctx context.Context, transferee uint64)
	// ProposeConfChange proposes a configuration change.
	ProposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error
	// Progress returns, on the leader, how far member id's log matches, the
	// commit index and whether id is recently active; ok is false elsewhere
	// or for an unknown id.
	Progress(id uint64) (match, commit uint64, active, ok bool)
}

// Config configures a Server.
type Config struct {
	MemberID   uint64
	ClusterID  uint64
	Name       string
	ClientURLs []string

	Node RaftNode
	// Restored is the snapshot the raft node loaded on start, if any.
	Restored *raftpb.Snapshot

	// SnapshotCount is how many applied entries trigger a snapshot (default 10000).
	SnapshotCount uint64
	// RequestTimeout bounds a proposal or read-index wait (default 7s).
	RequestTimeout time.Duration
	// MaxRequestBytes bounds an encoded proposal (default 1.5 MiB).
	MaxRequestBytes int

	// WatchProgressInterval is how often watchers that asked for progress
	// notifications get one (default 10 minutes, as etcd).
	WatchProgressInterval time.Duration

	// HeartbeatInterval and ElectionTimeout are raft's (defaults 100ms and
	// 1s); they set the minimum lease TTL and the expiry slack.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration
	// Now is the clock of lease deadlines (default time.Now).
	Now func() time.Time
	// LeaseTicks, when set, replaces the timer of the leader's expiry
	// checks (tests inject time so).
	LeaseTicks <-chan time.Time

	// OnMembersChanged is called by the applier with the new member list
	// whenever it changes (the daemon updates the transport's peers).
	OnMembersChanged func([]Member)

	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// MutantStaleReads, when it returns true, serves linearizable reads from
	// local state without ReadIndex. It exists only so the robustness suite
	// can prove it catches stale reads (failpoint mutant-stale-read).
	MutantStaleReads func() bool
	// MutantCorrupt, when it returns true, makes this member apply puts with
	// another value than the log's (failpoint mutant-corrupt): a diverged
	// replica, for the corruption check to find.
	MutantCorrupt func() bool

	// HashPeer asks another member for its HashKV (the corruption check);
	// nil disables the check. CorruptCheckInterval is its period (default
	// DefaultCorruptCheckInterval).
	HashPeer             HashPeer
	CorruptCheckInterval time.Duration

	// QuotaBytes is the space quota on the data's size (mvcc.Store.Size);
	// 0 means DefaultQuotaBytes.
	QuotaBytes int64

	// MutantDropWatchEvent, when it returns n > 0, drops one event out of
	// every n handed to the watch registry (failpoint
	// mutant-drop-watch-event), to prove the suite catches lost events.
	MutantDropWatchEvent func() int
}

// Server serves the KV, Maintenance and Cluster operations of one member.
type Server struct {
	cfg     Config
	log     *slog.Logger
	node    RaftNode
	metrics *metrics

	mu       sync.RWMutex // protects the fields below; the applier holds it to write
	store    *mvcc.Store
	members  *membership
	confSt   *raftpb.ConfState
	snapIdx  uint64 // index of the newest snapshot taken or installed
	snapTerm uint64
	leases   *lease.Table
	// repAlarms are the replicated alarms (NOSPACE); see quota.go.
	repAlarms []Alarm

	deadlines   *lease.Deadlines  // member-local lease clock (lease.go)
	minTTL      int64             // seconds
	appliedTerm atomic.Uint64     // raft term of the last applied entry
	renewc      chan renewRequest // keepalives for renewLoop
	alarms      alarms            // CORRUPT alarms this member raised (not replicated)
	confMu      sync.Mutex        // serializes this member's membership changes

	applied  indexWaiter
	wait     *waitRegistry
	watches  *watch.Registry
	reqID    atomic.Uint64
	snapping atomic.Bool

	mutantSeen uint64 // only the applier: events seen by mutantDrop

	readMu     sync.Mutex // protects readNotif
	readNotif  *notifier
	readWakeC  chan struct{}
	readStates chan raftnode.ReadState

	errc      chan error
	stopc     chan struct{}
	stopOnce  sync.Once
	wg        sync.WaitGroup
	applyDone chan struct{}
}

// New builds a server over a started raft node and starts its apply and
// read loops. Call Stop to end them.
func New(cfg Config) (*Server, error) {
	if cfg.SnapshotCount == 0 {
		cfg.SnapshotCount = 10000
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = 7 * time.Second
	}
	if cfg.MaxRequestBytes == 0 {
		cfg.MaxRequestBytes = 1536 * 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.WatchProgressInterval == 0 {
		cfg.WatchProgressInterval = 10 * time.Minute
	}
	if cfg.HeartbeatInterval == 0 {
		cfg.HeartbeatInterval = 100 * time.Millisecond
	}
	if cfg.ElectionTimeout == 0 {
		cfg.ElectionTimeout = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QuotaBytes <= 0 {
		cfg.QuotaBytes = DefaultQuotaBytes
	}
	if cfg.CorruptCheckInterval <= 0 {
		cfg.CorruptCheckInterval = DefaultCorruptCheckInterval
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		node:      cfg.Node,
		metrics:   newMetrics(cfg.Registerer),
		store:     mvcc.New(),
		members:   newMembership(),
		confSt:    &raftpb.ConfState{},
		leases:    lease.NewTable(),
		deadlines: lease.NewDeadlines(cfg.Now),
		minTTL:    minLeaseTTL(cfg.HeartbeatInterval, cfg.ElectionTimeout),
		renewc:    make(chan renewRequest),
		wait:      newWaitRegistry(),
		readNotif: newNotifier(),
		readWakeC: make(chan struct{}, 1),
		errc:      make(chan error, 1),
		stopc:     make(chan struct{}),
		applyDone: make(chan struct{}),
	}
	s.reqID.Store(uint64(cfg.MemberID&0xffff)<<48 | (uint64(time.Now().UnixMilli())<<8)&(1<<48-1))
	if cfg.Restored != nil {
		if err := s.installSnapshot(cfg.Restored); err != nil {
			return nil, err
		}
	}
	if s.metrics.keys != nil {
		s.metrics.keys.Set(float64(s.store.KeyCount()))
	}
	s.startWatches()
	s.wg.Add(4)
	go s.applyLoop()
	go s.readLoop()
	go s.expireLoop()
	go s.renewLoop()
	if cfg.HashPeer != nil {
		s.wg.Add(1)
		go s.corruptLoop()
	}
	return s, nil
}

// Stop ends the server's loops. The raft node must be stopped first (its
// Apply channel closing ends the apply loop) or concurrently.
func (s *Server) Stop() {
	s.stopOnce.Do(func() { close(s.stopc) })
	s.wg.Wait()
}

// Errors reports a fatal apply error (the member must stop).
func (s *Server) Errors() <-chan error { return s.errc }

// MemberID returns this member's ID.
func (s *Server) MemberID() uint64 { return s.cfg.MemberID }

// ClusterID returns the cluster's ID.
func (s *Server) ClusterID() uint64 { return s.cfg.ClusterID }

// Term returns the current raft term.
func (s *Server) Term() uint64 { return s.node.Term() }

// Leader returns the leader's member ID, 0 when unknown.
func (s *Server) Leader() uint64 { return s.node.Leader() }

// AppliedIndex returns the last applied raft index.
func (s *Server) AppliedIndex() uint64 { return s.applied.Applied() }

// Rev returns the current revision of the local store.
func (s *Server) Rev() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.store.Rev()
}

// Members returns the member list sorted by ID.
func (s *Server) Members() []Member {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.members.list()
}

func (s *Server) fail(err error) {
	s.log.Error("server stopping on a fatal error", "err", err)
	select {
	case s.errc <- err:
	default:
	}
}

func (s *Server) nextID() uint64 { return s.reqID.Add(1) }

// waitLeader waits until a leader is known or ctx ends.
func (s *Server) waitLeader(ctx context.Context) error {
	if s.node.Leader() != 0 {
		return nil
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if s.node.Leader() != 0 {
				return nil
			}
		case <-ctx.Done():
			return ErrNoLeader
		case <-s.stopc:
			return ErrStopped
		}
	}
}
