package raftnode

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/storage/snap"
	"github.com/cairn-db/cairn/internal/storage/vfs"
	"github.com/cairn-db/cairn/internal/storage/wal"
)

// ErrStopped is returned by calls made after the node stopped.
var ErrStopped = errors.New("raftnode: stopped")

// Transport sends raft messages to peers. Send must never block.
type Transport interface {
	Send(msgs []*raftpb.Message)
}

// Config configures a Node. Zero values take the documented defaults.
type Config struct {
	ID uint64
	// Peers bootstraps a new cluster (ignored when the WAL already exists).
	Peers []raft.Peer
	// Join starts a member that was added to a running cluster (member
	// add): a new, empty log, no bootstrap; the leader sends it a snapshot.
	Join bool
	// Metadata is written once into a new WAL (cluster and member identity);
	// on restart the stored value is returned in Restored.Metadata.
	Metadata []byte

	FS      vfs.FS
	WALDir  string
	SnapDir string
	// WALSegmentSize is the preallocated WAL segment size (default 64 MiB).
	WALSegmentSize int64

	ElectionTicks  int // default 10
	HeartbeatTicks int // default 1
	// Ticks drives raft's logical clock. Required.
	Ticks <-chan time.Time

	// CatchUpEntries is how many entries the in-memory log keeps behind a
	// snapshot for slow followers (default 5000).
	CatchUpEntries uint64
	// KeepSnapshots is how many snapshot files (and WAL segments before the
	// oldest of them) are kept (default 3).
	KeepSnapshots int

	Transport Transport
	Logger    *slog.Logger
	Metrics   *Metrics

	// MutantSkipFsync, when it returns true, makes the WAL acknowledge
	// without fsync. It exists only so the robustness suite can prove it
	// catches that bug (failpoint mutant-no-fsync); nil in production.
	MutantSkipFsync func() bool
}

// Restored is the durable state found on start.
type Restored struct {
	// Metadata as written at WAL creation.
	Metadata []byte
	// Snapshot is the newest valid snapshot (nil when there is none). The
	// applier must restore its state from Snapshot.Data before applying.
	Snapshot *raftpb.Snapshot
	// NewCluster is true when the WAL was created by this start.
	NewCluster bool
}

// Apply is one batch of work for the applier, in log order. When Snapshot is
// set the applier first replaces its state with it, then applies Entries.
type Apply struct {
	Snapshot *raftpb.Snapshot
	Entries  []*raftpb.Entry
}

// Node runs raft for one member.
type Node struct {
	cfg     Config
	log     *slog.Logger
	node    raft.Node
	storage *raft.MemoryStorage
	snapper *snap.Snapshotter

	applyc     chan Apply
	readStatec chan ReadState
	snapc      chan snapRequest
	errc       chan error
	stopc      chan struct{}
	donec      chan struct{}
	stopOnce   sync.Once

	snapSize atomic.Int64
	lostTerm atomic.Uint64 // term in which PeerLost last acted

	lead  atomic.Uint64
	term  atomic.Uint64
	state atomic.Int32

	snapWG sync.WaitGroup // snapshot sends in flight

	walMu sync.Mutex // protects wal (the run goroutine and CreateSnapshot)
	wal   *wal.WAL
}

type snapRequest struct {
	meta snap.Meta
	size int64
	errc chan error
}

// Start opens (or creates) the member's WAL and snapshots and starts raft.
// It returns the restored durable state for the applier.
func Start(cfg Config) (*Node, *Restored, error) {
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 10
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.CatchUpEntries == 0 {
		cfg.CatchUpEntries = 5000
	}
	if cfg.KeepSnapshots == 0 {
		cfg.KeepSnapshots = 3
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(nil)
	}
	if err := vfs.MkdirAllSync(cfg.FS, cfg.WALDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create wal dir %s: %w", cfg.WALDir, err)
	}
	if err := vfs.MkdirAllSync(cfg.FS, cfg.SnapDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create snapshot dir %s: %w", cfg.SnapDir, err)
	}
	n := &Node{
		cfg:        cfg,
		log:        cfg.Logger,
		storage:    raft.NewMemoryStorage(),
		snapper:    snap.New(cfg.FS, cfg.SnapDir, cfg.Logger),
		applyc:     make(chan Apply, 64),
		readStatec: make(chan ReadState, 64),
		snapc:      make(chan snapRequest),
		errc:       make(chan error, 1),
		stopc:      make(chan struct{}),
		donec:      make(chan struct{}),
	}
	rcfg := &raft.Config{
		ID:                        cfg.ID,
		ElectionTick:              cfg.ElectionTicks,
		HeartbeatTick:             cfg.HeartbeatTicks,
		Storage:                   n.storage,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           512,
		MaxUncommittedEntriesSize: 1 << 30,
		MaxCommittedSizePerReady:  64 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{cfg.Logger},
	}
	walOpts := wal.Options{SegmentSize: cfg.WALSegmentSize, Logger: cfg.Logger}
	restored := &Restored{}
	if !wal.Exists(cfg.FS, cfg.WALDir) {
		if len(cfg.Peers) == 0 && !cfg.Join {
			return nil, nil, fmt.Errorf("no WAL in %s and no bootstrap peers: the data dir lost its log (refusing to start as an empty member)", cfg.WALDir)
		}
		w, err := wal.Create(cfg.FS, cfg.WALDir, cfg.Metadata, walOpts)
		if err != nil {
			return nil, nil, fmt.Errorf("create wal: %w", err)
		}
		n.wal = w
		restored.Metadata = cfg.Metadata
		restored.NewCluster = true
		if cfg.Join {
			n.node = raft.RestartNode(rcfg) // empty log: the leader catches it up
		} else {
			n.node = raft.StartNode(rcfg, cfg.Peers)
		}
	} else {
		snapshot, err := n.loadSnapshot()
		if err != nil {
			return nil, nil, err
		}
		w, st, err := wal.Open(cfg.FS, cfg.WALDir, walOpts)
		if err != nil {
			return nil, nil, fmt.Errorf("open wal: %w", err)
		}
		n.wal = w
		restored.Metadata = st.Metadata
		var snapIndex uint64
		if snapshot != nil {
			snapIndex = snapshot.GetMetadata().GetIndex()
			if snapIndex < st.Snapshot.Index {
				w.Close()
				return nil, nil, fmt.Errorf("snapshot files end at index %d but the wal continues from a snapshot at index %d: the newer snapshot file is missing or corrupt", snapIndex, st.Snapshot.Index)
			}
			if err := n.storage.ApplySnapshot(withoutData(snapshot)); err != nil {
				w.Close()
				return nil, nil, fmt.Errorf("load snapshot into raft log: %w", err)
			}
			restored.Snapshot = snapshot
		} else if st.Snapshot.Index > 0 {
			w.Close()
			return nil, nil, fmt.Errorf("the wal continues from a snapshot at index %d but no snapshot file was found in %s", st.Snapshot.Index, cfg.SnapDir)
		}
		ents := st.Entries
		for len(ents) > 0 && ents[0].GetIndex() <= snapIndex {
			ents = ents[1:]
		}
		if len(ents) > 0 && ents[0].GetIndex() != snapIndex+1 {
			w.Close()
			return nil, nil, fmt.Errorf("wal entries start at index %d, after a gap from snapshot index %d", ents[0].GetIndex(), snapIndex)
		}
		hs := proto.Clone(st.HardState).(*raftpb.HardState)
		if hs.GetCommit() < snapIndex {
			hs.Commit = proto.Uint64(snapIndex)
		}
		if err := n.storage.SetHardState(hs); err != nil {
			w.Close()
			return nil, nil, err
		}
		if err := n.storage.Append(ents); err != nil {
			w.Close()
			return nil, nil, err
		}
		rcfg.Applied = snapIndex
		n.node = raft.RestartNode(rcfg)
		n.log.Info("restarted raft from data dir", "snapshot-index", snapIndex, "entries", len(ents), "term", hs.GetTerm(), "commit", hs.GetCommit())
	}
	go n.run()
	return n, restored, nil
}

func (n *Node) loadSnapshot() (*raftpb.Snapshot, error) {
	meta, rc, err := n.snapper.Load()
	if errors.Is(err, snap.ErrNoSnapshot) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load snapshot: %w", err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	return &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(meta.Index),
			Term:      proto.Uint64(meta.Term),
			ConfState: cloneConfState(meta.ConfState),
		},
	}, nil
}

// run is the Ready loop; see the package documentation.
func (n *Node) run() {
	defer close(n.donec)
	defer close(n.applyc)
	defer n.node.Stop()
	for {
		select {
		case <-n.cfg.Ticks:
			n.node.Tick()
		case rd := <-n.node.Ready():
			if err := n.handleReady(rd); err != nil {
				if !errors.Is(err, ErrStopped) {
					n.fail(err)
				}
				return
			}
			n.node.Advance()
		case req := <-n.snapc:
			err := n.saveSnapshot(req.meta, req.size)
			req.errc <- err
			if err != nil {
				n.fail(err)
				return
			}
		case <-n.stopc:
			return
		}
	}
}

func (n *Node) handleReady(rd raft.Ready) error {
	if rd.SoftState != nil {
		old := n.lead.Swap(rd.SoftState.Lead)
		n.state.Store(int32(rd.SoftState.RaftState))
		if old != rd.SoftState.Lead {
			n.log.Info("raft leader changed", "from", fmt.Sprintf("%x", old), "to", fmt.Sprintf("%x", rd.SoftState.Lead), "state", rd.SoftState.RaftState.String())
			n.cfg.Metrics.LeaderChanges.Inc()
		}
		n.cfg.Metrics.setState(rd.SoftState.RaftState, rd.SoftState.Lead != raft.None)
	}
	if rd.HardState != nil {
		n.term.Store(rd.HardState.GetTerm())
	}
	// ReadStates never block the raft loop: a reader that gave up (or a
	// retried request answered twice) leaves answers nobody takes, and a full
	// channel would otherwise stop raft for good. A dropped answer costs its
	// reader one retry.
	for _, rs := range rd.ReadStates {
		select {
		case n.readStatec <- ReadState{Index: rs.Index, RequestCtx: rs.RequestCtx}:
		default:
			n.log.Debug("dropping a read state nobody is waiting for", "index", rs.Index)
		}
	}

	// A leader may send its appends before its own fsync (raft thesis
	// 10.2.1: the leader counts itself in the quorum only once its own
	// write is durable, which raft tracks through Advance). Every other
	// member must persist before it sends, so its acknowledgements and
	// votes are never ahead of its disk.
	sentEarly := false
	if n.IsLeader() && len(rd.Messages) > 0 {
		n.send(rd.Messages)
		sentEarly = true
	}

	// 1. Persist.
	var snapshot *raftpb.Snapshot
	if rd.Snapshot != nil && !raft.IsEmptySnap(rd.Snapshot) {
		snapshot = rd.Snapshot
		md := snapshot.GetMetadata()
		if err := n.saveSnapshotFile(snap.Meta{Index: md.GetIndex(), Term: md.GetTerm(), ConfState: cloneConfState(md.GetConfState())}, snapshot.GetData()); err != nil {
			return err
		}
	}
	if rd.HardState != nil || len(rd.Entries) > 0 {
		start := time.Now()
		n.walMu.Lock()
		mustSync := rd.MustSync && (n.cfg.MutantSkipFsync == nil || !n.cfg.MutantSkipFsync())
		err := n.wal.Save(rd.HardState, rd.Entries, mustSync)
		n.walMu.Unlock()
		if err != nil {
			return fmt.Errorf("write wal: %w", err)
		}
		if rd.MustSync {
			d := time.Since(start)
			n.cfg.Metrics.WALSync.Observe(d.Seconds())
			if d > time.Second {
				n.log.Warn("slow wal fsync", "took", d, "entries", len(rd.Entries))
			}
		}
	}
	if snapshot != nil {
		if err := n.storage.ApplySnapshot(withoutData(snapshot)); err != nil {
			return fmt.Errorf("apply snapshot to raft log: %w", err)
		}
		n.log.Info("installed snapshot from leader", "index", snapshot.GetMetadata().GetIndex(), "bytes", len(snapshot.GetData()))
	}
	if rd.HardState != nil {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if len(rd.Entries) > 0 {
		if err := n.storage.Append(rd.Entries); err != nil {
			return err
		}
	}

	// 2. Send.
	if !sentEarly && len(rd.Messages) > 0 {
		n.send(rd.Messages)
	}

	// 3. Hand committed work to the applier.
	if snapshot != nil || len(rd.CommittedEntries) > 0 {
		select {
		case n.applyc <- Apply{Snapshot: snapshot, Entries: rd.CommittedEntries}:
		case <-n.stopc:
			return ErrStopped
		}
	}
	return nil
}

func (n *Node) saveSnapshotFile(meta snap.Meta, data []byte) error {
	if err := n.snapper.Save(meta, func(w io.Writer) error {
		_, err := io.Copy(w, bytes.NewReader(data))
		return err
	}); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	n.snapSize.Store(int64(len(data)))
	n.walMu.Lock()
	defer n.walMu.Unlock()
	if err := n.wal.SaveSnapshot(wal.Marker{Index: meta.Index, Term: meta.Term}); err != nil {
		return fmt.Errorf("mark snapshot in wal: %w", err)
	}
	return nil
}

// saveSnapshot runs on the raft goroutine once the snapshot file is
// durable: it marks the snapshot in the WAL, makes it the snapshot raft
// sends to slow followers (the data stays in the file; see sendSnapshot),
// compacts the in-memory log and releases old files.
func (n *Node) saveSnapshot(meta snap.Meta, size int64) error {
	if _, err := n.storage.CreateSnapshot(meta.Index, meta.ConfState, nil); errors.Is(err, raft.ErrSnapOutOfDate) {
		return nil // a newer snapshot (from the leader) is already installed
	} else if err != nil {
		return err
	}
	n.walMu.Lock()
	err := n.wal.SaveSnapshot(wal.Marker{Index: meta.Index, Term: meta.Term})
	n.walMu.Unlock()
	if err != nil {
		return fmt.Errorf("mark snapshot in wal: %w", err)
	}
	n.snapSize.Store(size)
	release := uint64(0)
	if meta.Index > n.cfg.CatchUpEntries {
		release = meta.Index - n.cfg.CatchUpEntries
		if err := n.storage.Compact(release); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return err
		}
	}
	if err := n.snapper.Purge(n.cfg.KeepSnapshots); err != nil {
		n.log.Warn("purge old snapshots", "err", err)
	}
	n.walMu.Lock()
	err = n.wal.ReleaseTo(release, 1)
	n.walMu.Unlock()
	if err != nil {
		n.log.Warn("release old wal segments", "err", err)
	}
	n.log.Info("saved snapshot", "index", meta.Index, "term", meta.Term, "bytes", size)
	return nil
}

// CreateSnapshot records a snapshot of the applied state at index. The
// applier calls it from a background goroutine; write streams the state
// into the snapshot file, which is written and fsynced here, off the raft
// loop, so a large snapshot never delays replication. The raft loop then
// does the cheap bookkeeping. Calls must not overlap.
func (n *Node) CreateSnapshot(ctx context.Context, index uint64, cs *raftpb.ConfState, write func(io.Writer) error) error {
	term, err := n.storage.Term(index)
	if errors.Is(err, raft.ErrCompacted) || errors.Is(err, raft.ErrUnavailable) {
		return nil // the log moved past index (a snapshot from the leader); nothing to record
	} else if err != nil {
		return err
	}
	meta := snap.Meta{Index: index, Term: term, ConfState: cloneConfState(cs)}
	var size int64
	if err := n.snapper.Save(meta, func(w io.Writer) error {
		cw := &countingWriter{w: w}
		err := write(cw)
		size = cw.n
		return err
	}); err != nil {
		return fmt.Errorf("save snapshot: %w", err)
	}
	req := snapRequest{meta: meta, size: size, errc: make(chan error, 1)}
	select {
	case n.snapc <- req:
	case <-n.donec:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.errc:
		return err
	case <-n.donec:
		return ErrStopped
	}
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sendSnapshot fills a MsgSnap with the snapshot file's data and hands it to
// the transport. It runs in its own goroutine: reading a large file must not
// hold up the raft loop. When the file for that exact index is gone (a newer
// snapshot replaced it), raft is told the send failed and will retry.
func (n *Node) sendSnapshot(m *raftpb.Message) {
	index := m.GetSnapshot().GetMetadata().GetIndex()
	meta, rc, err := n.snapper.LoadNewestAvailable(index)
	if err == nil && meta.Index != index {
		rc.Close()
		err = fmt.Errorf("snapshot file at index %d not found (newest at or below is %d)", index, meta.Index)
	}
	if err != nil {
		n.log.Warn("cannot send snapshot", "to", fmt.Sprintf("%x", m.GetTo()), "index", index, "err", err)
		n.ReportSnapshot(m.GetTo(), true)
		return
	}
	data, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		n.log.Warn("cannot read snapshot to send", "index", index, "err", err)
		n.ReportSnapshot(m.GetTo(), true)
		return
	}
	m.Snapshot.Data = data
	n.log.Info("sending snapshot", "to", fmt.Sprintf("%x", m.GetTo()), "index", index, "bytes", len(data))
	n.cfg.Transport.Send([]*raftpb.Message{m})
}

// send hands messages to the transport; snapshots go through sendSnapshot.
func (n *Node) send(msgs []*raftpb.Message) {
	plain := msgs[:0:0]
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			n.snapWG.Add(1)
			go func() {
				defer n.snapWG.Done()
				n.sendSnapshot(m)
			}()
			continue
		}
		plain = append(plain, m)
	}
	if len(plain) > 0 {
		n.cfg.Transport.Send(plain)
	}
}

// withoutData returns the snapshot's metadata only: raft's in-memory log
// keeps no copy of the state (it is in the snapshot file).
func withoutData(s *raftpb.Snapshot) *raftpb.Snapshot {
	return &raftpb.Snapshot{Metadata: s.GetMetadata()}
}

// fail records a fatal error; the run goroutine returns right after.
func (n *Node) fail(err error) {
	n.log.Error("raft node stopped by a fatal error", "err", err)
	select {
	case n.errc <- err:
	default:
	}
	n.stopOnce.Do(func() { close(n.stopc) })
}

// Stop stops raft and waits for the loop to end; idempotent. The apply
// channel is closed when the loop has ended. Must not be called from the
// applier while it holds work the loop waits for.
func (n *Node) Stop() {
	n.stopOnce.Do(func() { close(n.stopc) })
	<-n.donec
	n.snapWG.Wait()
	n.walMu.Lock()
	defer n.walMu.Unlock()
	if n.wal != nil {
		n.wal.Close()
		n.wal = nil
	}
}

// Errors reports the fatal error that stopped the node.
func (n *Node) Errors() <-chan error { return n.errc }

// Done is closed when the Ready loop has ended.
func (n *Node) Done() <-chan struct{} { return n.donec }

// Apply returns the channel of committed work, closed when the node stops.
func (n *Node) Apply() <-chan Apply { return n.applyc }

// ReadState is the answer to a ReadIndex request: once the applied index
// reaches Index, a read reflects every write committed before the request.
type ReadState struct {
	Index      uint64
	RequestCtx []byte
}

// ReadStates returns the channel of ReadIndex results.
func (n *Node) ReadStates() <-chan ReadState { return n.readStatec }

// Propose proposes data for the log; the leader is found by raft.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	n.cfg.Metrics.Proposals.Inc()
	return n.node.Propose(ctx, data)
}

// ReadIndex requests a read index; the result arrives on ReadStates with
// the same rctx.
func (n *Node) ReadIndex(ctx context.Context, rctx []byte) error {
	return n.node.ReadIndex(ctx, rctx)
}

// Progress returns, on the leader, how far member id's log matches, the
// commit index, and whether id was heard from recently (within an election
// timeout; the leader itself always is).
func (n *Node) Progress(id uint64) (match, commit uint64, active, ok bool) {
	st := n.node.Status()
	if st.RaftState != raft.StateLeader {
		return 0, 0, false, false
	}
	pr, ok := st.Progress[id]
	if !ok {
		return 0, 0, false, false
	}
	return pr.Match, st.GetCommit(), pr.RecentActive || id == n.cfg.ID, true
}

// ProposeConfChange proposes a configuration change.
func (n *Node) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error {
	return n.node.ProposeConfChange(ctx, cc)
}

// ApplyConfChange applies a committed configuration change to raft.
func (n *Node) ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState {
	return n.node.ApplyConfChange(cc)
}

// Process steps a message received from a peer.
func (n *Node) Process(ctx context.Context, m *raftpb.Message) error {
	return n.node.Step(ctx, m)
}

// ReportUnreachable tells raft that a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) { n.node.ReportUnreachable(id) }

// ReportSnapshot tells raft how sending a snapshot ended.
func (n *Node) ReportSnapshot(id uint64, failed bool) {
	st := raft.SnapshotFinish
	if failed {
		st = raft.SnapshotFailure
	}
	n.node.ReportSnapshot(id, st)
}

// Leader returns the current leader's ID (0 when unknown).
func (n *Node) Leader() uint64 { return n.lead.Load() }

// Term returns the current term.
func (n *Node) Term() uint64 { return n.term.Load() }

// IsLeader reports whether this member is the leader.
func (n *Node) IsLeader() bool { return raft.StateType(n.state.Load()) == raft.StateLeader }

// Status returns raft's status.
func (n *Node) Status() raft.Status { return n.node.Status() }

// TransferLeadership asks raft to hand leadership to transferee.
func (n *Node) TransferLeadership(ctx context.Context, transferee uint64) {
	n.node.TransferLeadership(ctx, n.Leader(), transferee)
}

func cloneConfState(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return &raftpb.ConfState{}
	}
	return proto.Clone(cs).(*raftpb.ConfState)
}

// CommittedIndex returns raft's commit index.
func (n *Node) CommittedIndex() uint64 { return n.node.Status().GetCommit() }

// LastSnapshotSize returns the size in bytes of the newest snapshot saved
// or installed (0 before the first).
func (n *Node) LastSnapshotSize() int64 { return n.snapSize.Load() }

// PeerLost is called when a peer's connection broke abruptly (the transport
// saw its stream die). If that peer is our leader, waiting out a whole
// randomized election timeout (up to twice --election-timeout) only delays
// recovery: the member forgets the leader and starts a pre-vote at once.
// Pre-vote keeps this safe: if the other members still hear from the
// leader, they refuse, and nothing changes.
func (n *Node) PeerLost(id uint64) {
	if id == 0 || id != n.Leader() || n.IsLeader() {
		return
	}
	term := n.Term()
	if n.lostTerm.Swap(term) == term {
		return // already acted in this term
	}
	n.log.Info("leader connection lost; starting an election early", "leader", fmt.Sprintf("%x", id), "term", term)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = n.node.ForgetLeader(ctx)
	_ = n.node.Campaign(ctx)
}
