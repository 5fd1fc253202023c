package server

import (
	"context"
	"errors"
	"fmt"

	"github.com/cairn-db/cairn/internal/command"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// Fencing and sequential keys: Cairn's additions to etcd's coordination.
//
// A fencing token is the create revision of a lock holder's key (the key
// clientv3's Mutex and the Lock service create under the lock's name). A
// guarded write presents the lock's name and a token; the applier runs it
// only if the token is the current holder's, so a writer that lost the lock
// (its lease expired during a pause, another client took the lock) cannot
// write any more, however late its request arrives.

// ErrFenceStale is a guarded write whose token is not the current holder's.
var ErrFenceStale = errors.New("cairn: fencing token is not the lock holder's")

// GuardedTxn runs r only if token is the fencing token of lock's holder.
func (s *Server) GuardedTxn(ctx context.Context, lock string, token int64, r *mvcc.TxnRequest) (*mvcc.TxnResult, int64, error) {
	res, err := s.propose(ctx, &command.Command{Kind: command.KindGuardedTxn, Fence: &command.Fence{Lock: lock, Token: token}, Txn: r})
	if err != nil {
		return nil, 0, err
	}
	return res.txn, res.rev, res.err
}

// CreateSequential puts prefix followed by the write's revision (20 digits)
// and returns the key and the revision.
func (s *Server) CreateSequential(ctx context.Context, prefix, value []byte, lease int64) ([]byte, int64, error) {
	res, err := s.propose(ctx, &command.Command{Kind: command.KindCreateSequential,
		Sequential: &command.Sequential{Prefix: prefix, Value: value, Lease: lease}})
	if err != nil {
		return nil, 0, err
	}
	return res.key, res.rev, res.err
}

// fenceHolderLocked returns the fencing token of lock's holder, 0 if the
// lock is free.
func (s *Server) fenceHolderLocked(lock string) int64 {
	prefix := []byte(lock + "/")
	res, err := s.store.Range(&mvcc.RangeRequest{Key: prefix, End: prefixEnd(prefix), SortOrder: mvcc.SortAscend,
		SortTarget: mvcc.SortByCreate, Limit: 1, KeysOnly: true})
	if err != nil || len(res.KVs) == 0 {
		return 0
	}
	return res.KVs[0].CreateRevision
}

// applyGuardedLocked applies a guarded txn.
func (s *Server) applyGuardedLocked(cmd *command.Command) (applyResult, []mvcc.Event) {
	f := cmd.Fence
	if f == nil || cmd.Txn == nil {
		return applyResult{err: fmt.Errorf("%w: malformed guarded write", ErrFenceStale)}, nil
	}
	if holder := s.fenceHolderLocked(f.Lock); holder == 0 || holder != f.Token {
		return applyResult{err: fmt.Errorf("%w: lock %q is held with token %d, the write presented %d", ErrFenceStale, f.Lock, holder, f.Token)}, nil
	}
	r, evs, err := s.store.Txn(cmd.Txn, s.leases.Exists)
	s.leases.Track(evs)
	return applyResult{txn: r, err: err}, evs
}

// applySequentialLocked applies a sequential create.
func (s *Server) applySequentialLocked(q *command.Sequential) (applyResult, []mvcc.Event) {
	if q == nil {
		q = &command.Sequential{}
	}
	rev := s.store.Rev() + 1 // a txn of one put makes exactly one revision
	key := fmt.Appendf(append([]byte(nil), q.Prefix...), "%020d", rev)
	txn := &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: key, Value: q.Value, Lease: q.Lease}}}}
	_, evs, err := s.store.Txn(txn, s.leases.Exists)
	if err != nil {
		return applyResult{err: err}, nil
	}
	s.leases.Track(evs)
	return applyResult{key: key}, evs
}

// prefixEnd is the end of the range of keys that start with prefix.
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{0} // every byte 0xff: to the end of the keyspace
}
