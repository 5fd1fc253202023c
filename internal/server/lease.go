package server

import (
	"context"
	"math"
	"time"

	"github.com/cairn-db/cairn/internal/command"
	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// Leases. The table (which leases exist, their TTLs and keys) is replicated:
// grant, revoke and renew (keepalive) are commands, applied on every member.
// Expiry is decided by the leader alone, from the deadlines its applier set
// when it applied each grant or renewal, and proposed through the log as a
// revoke, so every member deletes the same keys at the same revision.
//
// A renewal is acknowledged only once it is applied, so it is in the log and
// every member that applied it restarted the lease's clock: a new leader
// continues from its own deadlines instead of resetting every TTL, as etcd
// does. A lease therefore never expires before its TTL has passed since the
// last acknowledged keepalive (the leader waits leaseSlack beyond its own
// deadline, covering the time between a member's apply and the client's
// acknowledgement), and outlives it by at most leaseSlack plus the expiry
// check period and one commit, or by the time to elect a new leader when
// the leader fails near the deadline.

const (
	// leaseCheckInterval is how often the leader looks for expired leases.
	leaseCheckInterval = 100 * time.Millisecond
	// leaseRetry is how long the leader waits before proposing an expiry
	// again when the first proposal did not take effect (lost in a leader
	// change).
	leaseRetry = 2 * time.Second
	// maxRevokesPerCheck bounds the expiry proposals of one check.
	maxRevokesPerCheck = 1000
)

// minLeaseTTL is etcd's minimum TTL: 1.5 election timeouts (in whole
// heartbeats), rounded up to seconds. Shorter grants are raised to it.
func minLeaseTTL(heartbeat, election time.Duration) int64 {
	ticks := int64(election / heartbeat)
	d := time.Duration(3*ticks/2) * heartbeat
	return int64(math.Ceil(d.Seconds()))
}

// leaseSlack is how long past its deadline the leader lets a lease live
// before revoking it: two heartbeats (the most a follower's apply can lag
// the leader's acknowledgement by), and at least 250 ms.
func (s *Server) leaseSlack() time.Duration {
	return max(250*time.Millisecond, 2*s.cfg.HeartbeatInterval)
}

// LeaseGrant creates a lease. id 0 lets the server choose one. The granted
// TTL is ttl raised to the minimum.
func (s *Server) LeaseGrant(ctx context.Context, id, ttl int64) (int64, int64, int64, error) {
	if ttl > lease.MaxTTL {
		return 0, 0, 0, lease.ErrTTLTooLarge
	}
	ttl = max(ttl, s.minTTL)
	if id == 0 {
		s.mu.RLock()
		for id == 0 || s.leases.Exists(id) {
			id = int64(s.nextID() & math.MaxInt64)
		}
		s.mu.RUnlock()
	}
	res, err := s.propose(ctx, &command.Command{Kind: command.KindLeaseGrant, Lease: &command.LeaseOp{ID: id, TTL: ttl}})
	if err != nil {
		return 0, 0, 0, err
	}
	return id, ttl, res.rev, res.err
}

// LeaseRevoke deletes a lease and every key attached to it, in one revision.
func (s *Server) LeaseRevoke(ctx context.Context, id int64) (int64, error) {
	res, err := s.propose(ctx, &command.Command{Kind: command.KindLeaseRevoke, Lease: &command.LeaseOp{ID: id}})
	if err != nil {
		return 0, err
	}
	return res.rev, res.err
}

// LeaseRenew restarts a lease's TTL (a keepalive) and returns its granted
// TTL, or lease.ErrNotFound. Renewals are batched (renewLoop): one log
// entry carries every renewal that arrived while the previous one was in
// flight, so a keepalive costs a share of one proposal, not one each.
func (s *Server) LeaseRenew(ctx context.Context, id int64) (int64, int64, error) {
	req := renewRequest{id: id, done: make(chan renewResult, 1)}
	select {
	case s.renewc <- req:
	case <-ctx.Done():
		return 0, 0, s.contextError(ctx, ctx.Err())
	case <-s.stopc:
		return 0, 0, ErrStopped
	}
	select {
	case r := <-req.done:
		return r.ttl, r.rev, r.err
	case <-ctx.Done():
		return 0, 0, s.contextError(ctx, ctx.Err())
	case <-s.stopc:
		return 0, 0, ErrStopped
	}
}

type renewRequest struct {
	id   int64
	done chan renewResult // buffered: the loop never waits for a caller
}

type renewResult struct {
	ttl, rev int64
	err      error
}

// maxRenewBatch bounds the renewals of one log entry.
const maxRenewBatch = 4096

// renewLoop proposes renewals in batches, one batch in flight at a time.
func (s *Server) renewLoop() {
	defer s.wg.Done()
	for {
		var batch []renewRequest
		select {
		case r := <-s.renewc:
			batch = append(batch, r)
		case <-s.stopc:
			return
		}
	more:
		for len(batch) < maxRenewBatch {
			select {
			case r := <-s.renewc:
				batch = append(batch, r)
			default:
				break more
			}
		}
		ids := make([]int64, len(batch))
		for i, r := range batch {
			ids[i] = r.id
		}
		res, err := s.propose(context.Background(), &command.Command{Kind: command.KindLeaseRenewBatch, Renew: ids})
		for i, r := range batch {
			out := renewResult{err: err}
			if err == nil {
				out.rev = res.rev
				if out.ttl = res.leaseTTLs[i]; out.ttl == 0 {
					out.err = lease.ErrNotFound
				}
			}
			r.done <- out
		}
	}
}

// LeaseInfo is what LeaseTimeToLive reports.
type LeaseInfo struct {
	ID         int64
	GrantedTTL int64
	TTL        int64    // seconds left, truncated; 0 once past the deadline
	Keys       []string // sorted; only when asked for
}

// LeaseTimeToLive reads a lease after a linearizable read barrier; the
// remaining TTL is this member's clock of it.
func (s *Server) LeaseTimeToLive(ctx context.Context, id int64, keys bool) (LeaseInfo, int64, error) {
	if err := s.linearizableReadNotify(ctx); err != nil {
		return LeaseInfo{}, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ttl, ks, ok := s.leases.Get(id)
	if !ok {
		return LeaseInfo{}, s.store.Rev(), lease.ErrNotFound
	}
	info := LeaseInfo{ID: id, GrantedTTL: ttl}
	if left, ok := s.deadlines.Remaining(id); ok && left > 0 {
		info.TTL = int64(left / time.Second)
	}
	if keys {
		info.Keys = ks
	}
	return info, s.store.Rev(), nil
}

// LeaseIDs lists the leases after a linearizable read barrier.
func (s *Server) LeaseIDs(ctx context.Context) ([]int64, int64, error) {
	if err := s.linearizableReadNotify(ctx); err != nil {
		return nil, 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.leases.IDs(), s.store.Rev(), nil
}

// applyLeaseLocked applies a lease command (the applier holds s.mu).
func (s *Server) applyLeaseLocked(cmd *command.Command) (applyResult, []mvcc.Event) {
	op := cmd.Lease
	if op == nil {
		op = &command.LeaseOp{}
	}
	switch cmd.Kind {
	case command.KindLeaseGrant:
		if err := s.leases.Grant(op.ID, op.TTL); err != nil {
			return applyResult{err: err}, nil
		}
		s.deadlines.Renew(op.ID, op.TTL, 1)
		return applyResult{leaseTTL: op.TTL}, nil
	case command.KindLeaseRenew:
		ttl, renewals, ok := s.leases.Renew(op.ID)
		if !ok {
			return applyResult{err: lease.ErrNotFound}, nil
		}
		s.deadlines.Renew(op.ID, ttl, renewals)
		return applyResult{leaseTTL: ttl}, nil
	case command.KindLeaseRenewBatch:
		ttls := make([]int64, len(cmd.Renew)) // 0: no such lease
		for i, id := range cmd.Renew {
			if ttl, renewals, ok := s.leases.Renew(id); ok {
				s.deadlines.Renew(id, ttl, renewals)
				ttls[i] = ttl
			}
		}
		return applyResult{leaseTTLs: ttls}, nil
	case command.KindLeaseExpireUnrenewed:
		var events []mvcc.Event
		for _, e := range cmd.Expire {
			if n, ok := s.leases.Renewals(e.ID); !ok || n != e.Renewals {
				// Gone, or renewed after the leader found it due: the
				// renewal was acknowledged, so the lease must live on.
				continue
			}
			evs, err := s.revokeLocked(e.ID)
			if err == nil {
				s.log.Debug("lease expired", "lease", e.ID)
			}
			events = append(events, evs...)
		}
		return applyResult{}, events
	case command.KindLeaseExpire: // older entries only
		var events []mvcc.Event
		for _, id := range cmd.Expired {
			evs, _ := s.revokeLocked(id)
			events = append(events, evs...)
		}
		return applyResult{}, events
	default: // command.KindLeaseRevoke
		evs, err := s.revokeLocked(op.ID)
		return applyResult{err: err}, evs
	}
}

// revokeLocked removes lease id and deletes its keys in one revision.
func (s *Server) revokeLocked(id int64) ([]mvcc.Event, error) {
	keys, err := s.leases.Revoke(id)
	if err != nil {
		return nil, err
	}
	s.deadlines.Forget(id)
	if len(keys) == 0 {
		return nil, nil
	}
	txn := &mvcc.TxnRequest{Success: make([]mvcc.Op, len(keys))}
	for i, k := range keys {
		txn.Success[i] = mvcc.Op{Delete: &mvcc.DeleteRequest{Key: []byte(k)}}
	}
	_, evs, err := s.store.Txn(txn, s.leases.Exists)
	if err != nil {
		// Deleting existing keys cannot fail; if it did, every member would
		// fail alike and still agree, so report it and go on.
		s.log.Error("lease revoke: deleting keys failed", "lease", id, "err", err)
	}
	return evs, nil
}

// restoreLeasesLocked rebuilds key attachments from the store and restarts
// every lease's clock, after the state was replaced by a snapshot: from the
// time each lease had left when the snapshot was made (clock), or from its
// full TTL if the snapshot did not record it.
func (s *Server) restoreLeasesLocked(t *lease.Table, clock map[int64]time.Duration) {
	if t == nil {
		t = lease.NewTable()
	}
	all, err := s.store.Range(&mvcc.RangeRequest{Key: []byte{0}, End: []byte{0}})
	if err == nil {
		for _, kv := range all.KVs {
			if kv.Lease != 0 {
				t.Attach(kv.Lease, kv.Key)
			}
		}
	}
	s.leases = t
	s.deadlines.Reset(t, clock)
}

// expireLoop proposes the revocation of expired leases while this member
// leads and has applied an entry of its own term (so every renewal
// committed before it became leader is in its deadlines).
func (s *Server) expireLoop() {
	defer s.wg.Done()
	ticks := s.cfg.LeaseTicks
	if ticks == nil {
		t := time.NewTicker(leaseCheckInterval)
		defer t.Stop()
		ticks = t.C
	}
	for {
		select {
		case <-ticks:
			s.expireLeases()
		case <-s.stopc:
			return
		}
	}
}

func (s *Server) expireLeases() {
	if !s.node.IsLeader() || s.appliedTerm.Load() != s.node.Term() {
		return
	}
	due := s.deadlines.Due(s.leaseSlack(), leaseRetry, maxRevokesPerCheck)
	if len(due) == 0 {
		return
	}
	expire := make([]command.ExpiredLease, len(due))
	for i, d := range due {
		expire[i] = command.ExpiredLease{ID: d.ID, Renewals: d.Renewals}
	}
	data := command.Encode(&command.Command{Kind: command.KindLeaseExpireUnrenewed, Expire: expire})
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if err := s.node.Propose(ctx, data); err != nil {
		s.log.Warn("could not propose the revocation of expired leases; will retry", "leases", len(due), "err", err)
	}
}
