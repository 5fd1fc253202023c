package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/command"
	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/raftnode"
)

// applyResult is what applying one command produced, for its waiter.
type applyResult struct {
	txn      *mvcc.TxnResult
	rev      int64  // store revision right after the command
	leaseTTL int64  // lease grant and renew: the lease's TTL
	key      []byte // sequential create: the key made
	// leaseTTLs: a renewal batch's TTL per lease, 0 for a missing one.
	leaseTTLs []int64
	err       error
}

type trigger struct {
	id  uint64
	res applyResult
}

// applyLoop is the only writer of the store and the member table. It
// applies committed work in log order and never waits on a client.
func (s *Server) applyLoop() {
	defer s.wg.Done()
	defer close(s.applyDone)
	for {
		var ap raftnode.Apply
		var ok bool
		select {
		case ap, ok = <-s.node.Apply():
			if !ok {
				return
			}
		case <-s.stopc:
			return
		}
		if ap.Snapshot != nil {
			if err := s.installSnapshot(ap.Snapshot); err != nil {
				s.fail(err)
				return
			}
		}
		if len(ap.Entries) > 0 {
			if err := s.applyEntries(ap.Entries); err != nil {
				s.fail(err)
				return
			}
		}
		s.maybeSnapshot()
	}
}

func (s *Server) applyEntries(ents []*raftpb.Entry) error {
	start := time.Now()
	applied := s.applied.Applied()
	var triggers []trigger
	var events []mvcc.Event
	membersChanged, removed := false, false

	s.mu.Lock()
	last := applied
	for _, e := range ents {
		idx := e.GetIndex()
		if idx <= applied {
			continue
		}
		last = idx
		s.appliedTerm.Store(e.GetTerm())
		switch e.GetType() {
		case raftpb.EntryNormal:
			if len(e.GetData()) == 0 {
				continue // a new leader's empty entry
			}
			cmd, err := command.Decode(e.GetData())
			if err != nil {
				s.mu.Unlock()
				return fmt.Errorf("%w: entry %d: %v", ErrCorruptCommitted, idx, err)
			}
			res, evs, changed := s.applyCommandLocked(cmd)
			events = append(events, evs...)
			membersChanged = membersChanged || changed
			if cmd.ID != 0 {
				triggers = append(triggers, trigger{cmd.ID, res})
			}
		case raftpb.EntryConfChange:
			var cc raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("%w: conf change at entry %d: %v", ErrCorruptCommitted, idx, err)
			}
			s.applyConfChangeLocked(&cc)
			membersChanged = true
			if cc.GetId() != 0 {
				triggers = append(triggers, trigger{cc.GetId(), applyResult{}})
			}
			if cc.GetType() == raftpb.ConfChangeRemoveNode && cc.GetNodeId() == s.cfg.MemberID {
				removed = true
			}
		case raftpb.EntryConfChangeV2:
			var cc raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("%w: conf change at entry %d: %v", ErrCorruptCommitted, idx, err)
			}
			s.confSt = s.node.ApplyConfChange(&cc)
		}
	}
	keys := s.store.KeyCount()
	rev := s.store.Rev()
	var members []Member
	if membersChanged {
		members = s.members.list()
	}
	s.mu.Unlock()

	s.applied.SetApplied(last)
	// Watchers first, then callers: a client that sees its write acknowledged
	// and then reads its watch channel finds the event already queued.
	if s.cfg.MutantDropWatchEvent != nil {
		events = s.mutantDrop(events)
	}
	notifyStart := time.Now()
	s.watches.Notify(rev, events)
	s.metrics.watchNotify.Observe(time.Since(notifyStart).Seconds())
	for _, t := range triggers {
		s.wait.Trigger(t.id, t.res)
	}
	if membersChanged && s.cfg.OnMembersChanged != nil {
		s.cfg.OnMembersChanged(members)
	}
	if removed {
		s.log.Warn("this member was removed from the cluster; stopping")
		s.fail(ErrMemberRemoved)
	}
	s.metrics.observeApply(len(ents), time.Since(start), keys, rev, last)
	return nil
}

func (s *Server) applyCommandLocked(cmd *command.Command) (res applyResult, events []mvcc.Event, membersChanged bool) {
	if growsData(cmd) && s.nospaceLocked() {
		return applyResult{err: ErrNoSpace, rev: s.store.Rev()}, nil, false
	}
	switch cmd.Kind {
	case command.KindAlarm:
		s.applyAlarmLocked(cmd.Alarm)
	case command.KindTxn:
		s.mutantCorrupt(cmd)
		r, evs, err := s.store.Txn(cmd.Txn, s.leases.Exists)
		res = applyResult{txn: r, err: err}
		events = evs
		s.leases.Track(evs)
	case command.KindLeaseGrant, command.KindLeaseRevoke, command.KindLeaseRenew, command.KindLeaseExpire, command.KindLeaseRenewBatch, command.KindLeaseExpireUnrenewed:
		res, events = s.applyLeaseLocked(cmd)
	case command.KindGuardedTxn:
		res, events = s.applyGuardedLocked(cmd)
	case command.KindCreateSequential:
		res, events = s.applySequentialLocked(cmd.Sequential)
	case command.KindCompact:
		res = applyResult{err: s.store.Compact(cmd.CompactRev)}
	case command.KindMemberAttrs:
		if m := cmd.Member; m != nil {
			s.members.setClientURLs(m.ID, m.Name, m.ClientURLs)
			membersChanged = true
		}
	default:
		// A kind this version does not know cannot be applied identically
		// everywhere; Decode rejects unknown kinds, so this is unreachable.
		panic(fmt.Sprintf("server: unknown command kind %d", cmd.Kind))
	}
	res.rev = s.store.Rev()
	return res, events, membersChanged
}

func (s *Server) applyConfChangeLocked(cc *raftpb.ConfChange) {
	s.confSt = s.node.ApplyConfChange(cc)
	switch cc.GetType() {
	case raftpb.ConfChangeAddNode, raftpb.ConfChangeAddLearnerNode:
		var m Member
		if err := json.Unmarshal(cc.GetContext(), &m); err != nil || m.ID != cc.GetNodeId() {
			s.log.Warn("conf change without a valid member context", "node", fmt.Sprintf("%x", cc.GetNodeId()))
			m = Member{ID: cc.GetNodeId()}
		}
		m.IsLearner = cc.GetType() == raftpb.ConfChangeAddLearnerNode
		if old, ok := s.members.members[m.ID]; ok {
			// A learner promoted (AddNode for a member): keep what it published.
			promoted := *old
			promoted.IsLearner = m.IsLearner
			s.members.add(&promoted)
			s.log.Info("member promoted", "id", fmt.Sprintf("%x", m.ID), "name", old.Name)
			break
		}
		s.members.add(&m)
		s.log.Info("member added", "id", fmt.Sprintf("%x", m.ID), "name", m.Name, "peer-urls", m.PeerURLs)
	case raftpb.ConfChangeUpdateNode:
		var m Member
		if err := json.Unmarshal(cc.GetContext(), &m); err == nil {
			if old, ok := s.members.members[cc.GetNodeId()]; ok {
				upd := *old
				upd.PeerURLs = m.PeerURLs
				s.members.add(&upd)
				s.log.Info("member updated", "id", fmt.Sprintf("%x", upd.ID), "peer-urls", upd.PeerURLs)
			}
		}
	case raftpb.ConfChangeRemoveNode:
		s.members.remove(cc.GetNodeId())
		s.log.Info("member removed", "id", fmt.Sprintf("%x", cc.GetNodeId()))
	}
}

// maybeSnapshot starts a snapshot when enough entries were applied since the
// last one. The store is cloned copy-on-write under the lock (cheap); the
// serialization and the file write run in another goroutine, so the apply
// path never waits for them.
func (s *Server) maybeSnapshot() {
	applied := s.applied.Applied()
	s.mu.RLock()
	due := applied-s.snapIdx >= s.cfg.SnapshotCount
	s.mu.RUnlock()
	if !due || !s.snapping.CompareAndSwap(false, true) {
		return
	}
	s.mu.Lock()
	clone := s.store.Clone()
	secs := stateSections{members: s.members.marshal(), leases: s.leases.Encode(nil), alarms: s.marshalAlarmsLocked(),
		leaseClock: lease.EncodeRemainders(nil, s.deadlines.Remainders())}
	cs := cloneConfState(s.confSt)
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.snapping.Store(false)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		write := func(w io.Writer) error { return encodeState(w, clone, secs) }
		if err := s.node.CreateSnapshot(ctx, applied, cs, write); err != nil {
			if !errors.Is(err, raftnode.ErrStopped) {
				// A snapshot that cannot be written means the disk is failing:
				// stop, as for a WAL write error, rather than carry on.
				s.fail(fmt.Errorf("save snapshot at index %d: %w", applied, err))
			}
			return
		}
		s.mu.Lock()
		if applied > s.snapIdx {
			s.snapIdx = applied
		}
		s.mu.Unlock()
		s.metrics.snapshotDuration.Observe(time.Since(start).Seconds())
	}()
}

// installSnapshot replaces the state with a snapshot's.
func (s *Server) installSnapshot(snap *raftpb.Snapshot) error {
	md := snap.GetMetadata()
	st, err := decodeState(snap.GetData())
	if err != nil {
		return fmt.Errorf("restore snapshot at index %d: %w", md.GetIndex(), err)
	}
	store := st.store
	s.mu.Lock()
	s.store = store
	s.members = st.members
	s.repAlarms = st.alarms
	s.restoreLeasesLocked(st.leases, st.leaseClock)
	s.confSt = cloneConfState(md.GetConfState())
	s.snapIdx = md.GetIndex()
	list := s.members.list()
	s.mu.Unlock()
	s.applied.SetApplied(md.GetIndex())
	if s.watches != nil {
		// Watchers are caught up from the new store's history (or told it
		// was compacted), as etcd does on restore.
		s.watches.Restored(store.Rev())
	}
	if s.cfg.OnMembersChanged != nil {
		s.cfg.OnMembersChanged(list)
	}
	s.log.Info("state restored from snapshot", "index", md.GetIndex(), "revision", store.Rev())
	return nil
}

func cloneConfState(cs *raftpb.ConfState) *raftpb.ConfState {
	if cs == nil {
		return &raftpb.ConfState{}
	}
	return proto.Clone(cs).(*raftpb.ConfState)
}

// mutantDrop removes every n-th event (a deliberately broken server).
func (s *Server) mutantDrop(evs []mvcc.Event) []mvcc.Event {
	n := s.cfg.MutantDropWatchEvent()
	if n <= 0 {
		return evs
	}
	kept := evs[:0:0]
	for _, e := range evs {
		s.mutantSeen++
		if s.mutantSeen%uint64(n) != 0 {
			kept = append(kept, e)
		}
	}
	return kept
}
