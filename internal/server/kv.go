package server

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-db/cairn/internal/command"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// Range reads keys. Unless serializable, the read is linearizable.
// It returns the result and the store revision it was read at.
func (s *Server) Range(ctx context.Context, r *mvcc.RangeRequest, serializable bool) (*mvcc.RangeResult, int64, error) {
	if !serializable {
		if err := s.linearizableReadNotify(ctx); err != nil {
			return nil, 0, err
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	res, err := s.store.Range(r)
	return res, s.store.Rev(), err
}

// Txn runs a transaction. A transaction that writes goes through raft; a
// read-only one is served locally after a ReadIndex round (or at once when
// serializable is true, which the API sets when every read in it asked to be
// serializable).
func (s *Server) Txn(ctx context.Context, r *mvcc.TxnRequest, serializable bool) (*mvcc.TxnResult, int64, error) {
	if isReadOnly(r) {
		if !serializable {
			if err := s.linearizableReadNotify(ctx); err != nil {
				return nil, 0, err
			}
		}
		// A txn without puts or deletes only reads (mvcc.Store.Txn changes
		// nothing then), so it shares the read lock with other readers.
		s.mu.RLock()
		defer s.mu.RUnlock()
		res, _, err := s.store.Txn(r, s.leases.Exists)
		return res, s.store.Rev(), err
	}
	res, err := s.propose(ctx, &command.Command{Kind: command.KindTxn, Txn: r})
	if err != nil {
		return nil, 0, err
	}
	return res.txn, res.rev, res.err
}

// Compact compacts the history up to rev; the check against the current and
// the compacted revision is made in apply, on every member alike.
func (s *Server) Compact(ctx context.Context, rev int64) (int64, error) {
	res, err := s.propose(ctx, &command.Command{Kind: command.KindCompact, CompactRev: rev})
	if err != nil {
		return 0, err
	}
	return res.rev, res.err
}

// Publish records this member's name and client URLs in the replicated
// member table, retrying until it is applied or ctx ends.
func (s *Server) Publish(ctx context.Context) error {
	for {
		_, err := s.propose(ctx, &command.Command{Kind: command.KindMemberAttrs, Member: &command.MemberAttrs{
			ID: s.cfg.MemberID, Name: s.cfg.Name, ClientURLs: s.cfg.ClientURLs,
		}})
		if err == nil {
			s.log.Info("published member attributes", "name", s.cfg.Name, "client-urls", s.cfg.ClientURLs)
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, ErrStopped) {
			return err
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stopc:
			return ErrStopped
		}
	}
}

// propose submits cmd to raft and waits until this member applied it.
func (s *Server) propose(ctx context.Context, cmd *command.Command) (applyResult, error) {
	cmd.ID = s.nextID()
	data := command.Encode(cmd)
	if len(data) > s.cfg.MaxRequestBytes {
		return applyResult{}, ErrRequestTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.RequestTimeout)
	defer cancel()
	if err := s.checkQuota(ctx, cmd, len(data)); err != nil {
		return applyResult{}, err
	}
	if err := s.waitLeader(ctx); err != nil {
		s.metrics.proposalsFailed.Inc()
		return applyResult{}, err
	}
	ch := s.wait.Register(cmd.ID)
	if err := s.node.Propose(ctx, data); err != nil {
		s.wait.Cancel(cmd.ID)
		s.metrics.proposalsFailed.Inc()
		return applyResult{}, s.contextError(ctx, err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-ctx.Done():
		s.wait.Cancel(cmd.ID)
		s.metrics.proposalsFailed.Inc()
		return applyResult{}, s.contextError(ctx, ctx.Err())
	case <-s.stopc:
		s.wait.Cancel(cmd.ID)
		return applyResult{}, ErrStopped
	}
}

// contextError maps a failed wait to etcd's errors: the caller's own
// cancellation stays a context error, our deadline becomes ErrTimeout.
func (s *Server) contextError(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		if s.node.Leader() == 0 {
			return ErrNoLeader
		}
		return ErrTimeout
	}
	return err
}

func isReadOnly(r *mvcc.TxnRequest) bool {
	for _, ops := range [][]mvcc.Op{r.Success, r.Failure} {
		for _, op := range ops {
			if op.Put != nil || op.Delete != nil {
				return false
			}
			if op.Txn != nil && !isReadOnly(op.Txn) {
				return false
			}
		}
	}
	return true
}

// HashKV hashes the store's local history up to rev (0: current), as etcd
// does: no read barrier. Members agree for any rev they have all applied,
// which is how callers compare them (hash at a revision every member has).
func (s *Server) HashKV(ctx context.Context, rev int64) (hash uint32, hashRev, compactRev, curRev int64, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	hash, hashRev, compactRev, err = s.store.HashKV(rev)
	return hash, hashRev, compactRev, s.store.Rev(), err
}

// Hash hashes the live state.
func (s *Server) Hash() (uint32, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.store.Hash(), s.store.Rev()
}

// StatusInfo is what Maintenance.Status reports.
type StatusInfo struct {
	Leader       uint64
	Term         uint64
	AppliedIndex uint64
	Revision     int64
	Keys         int
	IsLearner    bool
	DataBytes    int64 // mvcc.Store.Size: what the quota measures
	QuotaBytes   int64
}

// Status returns the member's status.
func (s *Server) Status() StatusInfo {
	s.mu.RLock()
	rev, keys, size := s.store.Rev(), s.store.KeyCount(), s.store.Size()
	learner := false
	for _, m := range s.members.members {
		learner = learner || (m.ID == s.cfg.MemberID && m.IsLearner)
	}
	s.mu.RUnlock()
	return StatusInfo{
		Leader:       s.node.Leader(),
		Term:         s.node.Term(),
		AppliedIndex: s.applied.Applied(),
		Revision:     rev,
		Keys:         keys,
		IsLearner:    learner,
		DataBytes:    size,
		QuotaBytes:   s.cfg.QuotaBytes,
	}
}
