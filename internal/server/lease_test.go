package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/command"
	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// fakeClock is the lease clock of a test: it moves only when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// leaseServer is a test server whose lease clock and expiry checks the test
// drives: tick runs one expiry check and waits until it is done.
type leaseServer struct {
	*Server
	clock *fakeClock
	ticks chan time.Time
	node  *fakeNode
}

func newLeaseServer(t *testing.T) *leaseServer {
	clock := &fakeClock{t: time.Unix(1_000_000, 0)}
	ticks := make(chan time.Time)
	node := newFakeNode()
	s := newTestServer(t, node, func(c *Config) { c.Now, c.LeaseTicks = clock.now, ticks })
	return &leaseServer{Server: s, clock: clock, ticks: ticks, node: node}
}

// tick runs one expiry check (the loop takes the tick, then the next send
// proves the check before it finished) and lets the fake node apply what
// it proposed.
func (ls *leaseServer) tick(t *testing.T) {
	t.Helper()
	ls.ticks <- time.Time{}
	ls.ticks <- time.Time{}
	ls.barrier(t)
}

// barrier waits until every proposal so far is applied (a linearizable read
// after them).
func (ls *leaseServer) barrier(t *testing.T) {
	t.Helper()
	if _, _, err := ls.Range(context.Background(), &mvcc.RangeRequest{Key: []byte("x")}, false); err != nil {
		t.Fatal(err)
	}
}

func (ls *leaseServer) putLease(t *testing.T, k string, id int64) int64 {
	t.Helper()
	_, rev, err := ls.Txn(context.Background(), &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte(k), Value: []byte("v"), Lease: id}}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func (ls *leaseServer) keys(t *testing.T) []string {
	t.Helper()
	res, _, err := ls.Range(context.Background(), &mvcc.RangeRequest{Key: []byte{0}, End: []byte{0}}, false)
	if err != nil {
		t.Fatal(err)
	}
	var ks []string
	for _, kv := range res.KVs {
		ks = append(ks, string(kv.Key))
	}
	return ks
}

func TestLeaseGrantRenewExpire(t *testing.T) {
	ctx := context.Background()
	ls := newLeaseServer(t)
	id, ttl, _, err := ls.LeaseGrant(ctx, 0, 10)
	if err != nil || id <= 0 || ttl != 10 {
		t.Fatalf("grant: id %d ttl %d err %v", id, ttl, err)
	}
	if _, _, _, err := ls.LeaseGrant(ctx, id, 10); !errors.Is(err, lease.ErrExists) {
		t.Fatalf("grant of an existing id: %v", err)
	}
	if _, _, _, err := ls.LeaseGrant(ctx, 7, lease.MaxTTL+1); !errors.Is(err, lease.ErrTTLTooLarge) {
		t.Fatalf("too large TTL: %v", err)
	}
	if _, ttl, _, err := ls.LeaseGrant(ctx, 8, 1); err != nil || ttl != 2 {
		t.Fatalf("a 1 s TTL is raised to etcd's minimum, 2 s at the default timeouts: ttl %d err %v", ttl, err)
	}
	ls.putLease(t, "a", id)
	ls.putLease(t, "b", id)
	ls.putLease(t, "c", 8)
	put(t, ls.Server, "plain", "v")
	info, _, err := ls.LeaseTimeToLive(ctx, id, true)
	if err != nil || info.GrantedTTL != 10 || info.TTL != 9 && info.TTL != 10 || !slices.Equal(info.Keys, []string{"a", "b"}) {
		t.Fatalf("time to live: %+v %v", info, err)
	}

	// 9 s later a renewal restarts the clock; at 18 s the lease is still
	// there, although 18 s > its TTL since the grant.
	ls.clock.advance(9 * time.Second)
	if ttl, _, err := ls.LeaseRenew(ctx, id); err != nil || ttl != 10 {
		t.Fatalf("renew: %d %v", ttl, err)
	}
	ls.clock.advance(9 * time.Second)
	ls.tick(t)
	if got := ls.keys(t); !slices.Equal(got, []string{"a", "b", "plain"}) {
		t.Fatalf("keys at 18 s: %v (lease 8, 2 s, expired with its key c; lease %x renewed at 9 s must live)", got, id)
	}

	// Not yet past TTL + slack since the renewal: alive. Past it: revoked,
	// both keys deleted in one revision.
	ls.clock.advance(time.Second)
	ls.tick(t)
	if _, _, err := ls.LeaseTimeToLive(ctx, id, false); err != nil {
		t.Fatalf("the lease expired at exactly its TTL, before the slack: %v", err)
	}
	before := ls.Rev()
	ls.clock.advance(ls.leaseSlack())
	ls.tick(t)
	if _, _, err := ls.LeaseTimeToLive(ctx, id, false); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("expired lease still found: %v", err)
	}
	if got := ls.keys(t); !slices.Equal(got, []string{"plain"}) {
		t.Fatalf("keys after expiry: %v", got)
	}
	if rev := ls.Rev(); rev != before+1 {
		t.Fatalf("expiry took revisions %d..%d, want one", before, rev)
	}
	if _, _, err := ls.LeaseRenew(ctx, id); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("renew of an expired lease: %v", err)
	}
	ids, _, err := ls.LeaseIDs(ctx)
	if err != nil || len(ids) != 0 {
		t.Fatalf("leases left: %v %v", ids, err)
	}
}

func TestLeaseRevokeAndReattach(t *testing.T) {
	ctx := context.Background()
	ls := newLeaseServer(t)
	for _, id := range []int64{1, 2} {
		if _, _, _, err := ls.LeaseGrant(ctx, id, 60); err != nil {
			t.Fatal(err)
		}
	}
	ls.putLease(t, "k", 1)
	ls.putLease(t, "k", 2) // moves k from lease 1 to lease 2
	ls.putLease(t, "j", 1)
	if _, _, err := ls.Txn(ctx, &mvcc.TxnRequest{Success: []mvcc.Op{{Delete: &mvcc.DeleteRequest{Key: []byte("j")}}}}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := ls.LeaseRevoke(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if got := ls.keys(t); !slices.Equal(got, []string{"k"}) {
		t.Fatalf("revoking lease 1 touched keys it no longer had: %v", got)
	}
	if _, err := ls.LeaseRevoke(ctx, 1); !errors.Is(err, lease.ErrNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, _, err := ls.Txn(ctx, &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("z"), Lease: 1}}}}, false); !errors.Is(err, mvcc.ErrLeaseNotFound) {
		t.Fatalf("put with a revoked lease: %v", err)
	}
	if _, err := ls.LeaseRevoke(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if got := ls.keys(t); len(got) != 0 {
		t.Fatalf("keys left: %v", got)
	}
}

// Only a leader that has applied an entry of its own term expires leases.
func TestLeaseExpiryOnlyOnLeader(t *testing.T) {
	ctx := context.Background()
	ls := newLeaseServer(t)
	if _, _, _, err := ls.LeaseGrant(ctx, 5, 2); err != nil {
		t.Fatal(err)
	}
	ls.putLease(t, "e", 5)
	ls.node.leader.Store(false)
	ls.clock.advance(time.Minute)
	ls.tick(t)
	if got := ls.keys(t); !slices.Equal(got, []string{"e"}) {
		t.Fatalf("a follower expired a lease: %v", got)
	}
	ls.node.leader.Store(true)
	ls.tick(t)
	if got := ls.keys(t); len(got) != 0 {
		t.Fatalf("the leader did not expire the lease: %v", got)
	}
}

// A keepalive committed after the leader decided to expire a lease, but
// before the expiry, keeps the lease: the keepalive was acknowledged, so the
// lease must live a full TTL from it. (Found by the robustness suite's
// pause-leader lease check: a 1 s lease lost its key 0.1 s after an
// acknowledged keepalive.)
func TestLeaseRenewedBeforeExpiryCommitsLives(t *testing.T) {
	ctx := context.Background()
	ls := newLeaseServer(t)
	if _, _, _, err := ls.LeaseGrant(ctx, 5, 2); err != nil {
		t.Fatal(err)
	}
	ls.putLease(t, "e", 5)
	ls.clock.advance(2*time.Second + ls.leaseSlack())
	ls.node.mu.Lock()
	ls.node.hold = func(data []byte) bool {
		c, err := command.Decode(data)
		return err == nil && c.Kind == command.KindLeaseExpireUnrenewed
	}
	ls.node.mu.Unlock()
	ls.tick(t) // the leader decides: lease 5 is due; its expiry is held back
	ls.node.mu.Lock()
	held := len(ls.node.held)
	ls.node.mu.Unlock()
	if held != 1 {
		t.Fatalf("%d expiry proposals held, want 1", held)
	}
	if ttl, _, err := ls.LeaseRenew(ctx, 5); err != nil || ttl != 2 {
		t.Fatalf("renew: ttl %d err %v", ttl, err)
	}
	ls.node.release()
	ls.barrier(t)
	if got := ls.keys(t); !slices.Equal(got, []string{"e"}) {
		t.Fatalf("keys after the stale expiry: %v (the renewed lease was revoked)", got)
	}
	if _, _, err := ls.LeaseTimeToLive(ctx, 5, false); err != nil {
		t.Fatalf("the renewed lease is gone: %v", err)
	}
	// Unrenewed for its TTL again, it expires.
	ls.clock.advance(2*time.Second + ls.leaseSlack())
	ls.tick(t)
	if got := ls.keys(t); len(got) != 0 {
		t.Fatalf("keys after the lease expired: %v", got)
	}
}

// Leases, their attachments and the time each had left survive a snapshot.
func TestLeaseSnapshotRoundTrip(t *testing.T) {
	ctx := context.Background()
	ls := newLeaseServer(t)
	for _, id := range []int64{3, 4} {
		if _, _, _, err := ls.LeaseGrant(ctx, id, 30); err != nil {
			t.Fatal(err)
		}
	}
	ls.putLease(t, "p", 3)
	ls.putLease(t, "q", 3)
	ls.putLease(t, "r", 4)
	// 20 s later lease 4 is renewed: lease 3 has 10 s left, lease 4 30 s.
	ls.clock.advance(20 * time.Second)
	if _, _, err := ls.LeaseRenew(ctx, 4); err != nil {
		t.Fatal(err)
	}
	ls.mu.RLock()
	var buf bytes.Buffer
	err := encodeState(&buf, ls.store.Clone(), stateSections{members: ls.members.marshal(), leases: ls.leases.Encode(nil),
		leaseClock: lease.EncodeRemainders(nil, ls.deadlines.Remainders())})
	ls.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	st, err := decodeState(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	store, leases := st.store, st.leases
	other := newLeaseServer(t)
	other.mu.Lock()
	other.store = store
	other.restoreLeasesLocked(leases, st.leaseClock)
	other.mu.Unlock()
	// The clock restarts from the time each lease had left, not its TTL.
	for id, want := range map[int64]struct {
		keys []string
		left int64
	}{3: {[]string{"p", "q"}, 10}, 4: {[]string{"r"}, 30}} {
		info, _, err := other.LeaseTimeToLive(ctx, id, true)
		if err != nil || info.GrantedTTL != 30 || !slices.Equal(info.Keys, want.keys) || info.TTL != want.left {
			t.Fatalf("lease %d after restore: %+v %v (want %d s left)", id, info, err, want.left)
		}
	}
	// Past those 10 s (and the slack), lease 3 expires there; lease 4 lives.
	// (A write first: a leader expires leases once it applied an entry of
	// its term.)
	put(t, other.Server, "z", "v")
	other.clock.advance(10*time.Second + other.leaseSlack())
	other.tick(t)
	if got := other.keys(t); !slices.Equal(got, []string{"r", "z"}) {
		t.Fatalf("keys after lease 3's time ran out on the restored member: %v", got)
	}
}

// Concurrent keepalives share log entries, and each gets its own lease's
// answer (a missing lease: ErrNotFound).
func TestLeaseRenewalsAreBatched(t *testing.T) {
	ctx := context.Background()
	ls := newLeaseServer(t)
	for id := int64(1); id <= 10; id++ {
		if _, _, _, err := ls.LeaseGrant(ctx, id, id+10); err != nil {
			t.Fatal(err)
		}
	}
	ls.node.mu.Lock()
	before := ls.node.index
	ls.node.mu.Unlock()
	const n = 400
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := int64(i%12 + 1) // 11 and 12 do not exist
			ttl, _, err := ls.LeaseRenew(ctx, id)
			switch {
			case id > 10 && !errors.Is(err, lease.ErrNotFound):
				errs <- fmt.Errorf("renew of missing lease %d: ttl %d err %v", id, ttl, err)
			case id <= 10 && (err != nil || ttl != id+10):
				errs <- fmt.Errorf("renew of lease %d: ttl %d err %v", id, ttl, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ls.node.mu.Lock()
	entries := ls.node.index - before
	ls.node.mu.Unlock()
	t.Logf("%d renewals in %d log entries", n, entries)
	if entries >= n {
		t.Fatalf("%d renewals took %d entries: not batched", n, entries)
	}
}
