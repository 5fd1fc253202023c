package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairn-db/cairn/internal/testutil"
)

// The test cluster runs with a 20 ms heartbeat and a 300 ms election
// timeout: the minimum lease TTL is 1 s, the bound on how long an expired
// lease may outlive its TTL is election timeout + 1 s.
const leaseOverstay = 300*time.Millisecond + time.Second

func TestLeaseAPI(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	follower := (c.WaitLeader() + 1) % 3
	cli := c.Client(follower)

	g, err := cli.Grant(ctx, 60)
	if err != nil || g.ID == 0 || g.TTL != 60 {
		t.Fatalf("grant: %+v %v", g, err)
	}
	if _, err := cli.Lease.Grant(ctx, 0); err != nil { // TTL 0 is raised to the minimum
		t.Fatal(err)
	}
	short, err := cli.Grant(ctx, 0)
	if err != nil || short.TTL != 1 {
		t.Fatalf("TTL 0 should be raised to the 1 s minimum: %+v %v", short, err)
	}
	for _, k := range []string{"l/a", "l/b"} {
		if _, err := cli.Put(ctx, k, "v", clientv3.WithLease(g.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Put(ctx, "l/x", "v", clientv3.WithLease(12345)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("put with an unknown lease: %v", err)
	}
	ttl, err := cli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 60 || ttl.TTL < 58 || ttl.TTL > 60 || len(ttl.Keys) != 2 || string(ttl.Keys[0]) != "l/a" {
		t.Fatalf("time to live: %+v %v", ttl, err)
	}
	missing, err := cli.TimeToLive(ctx, 999)
	if err != nil || missing.TTL != -1 {
		t.Fatalf("time to live of a missing lease: %+v %v", missing, err)
	}
	ka, err := cli.KeepAliveOnce(ctx, g.ID)
	if err != nil || ka.TTL != 60 || int64(ka.ID) != int64(g.ID) {
		t.Fatalf("keepalive: %+v %v", ka, err)
	}
	if _, err := cli.KeepAliveOnce(ctx, 999); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("keepalive of a missing lease: %v", err) // clientv3 turns TTL 0 into ErrLeaseNotFound
	}
	ls, err := cli.Leases(ctx)
	if err != nil || len(ls.Leases) != 3 {
		t.Fatalf("leases: %+v %v", ls, err)
	}

	wch := cli.Watch(ctx, "l/", clientv3.WithPrefix())
	rv, err := cli.Revoke(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	resp := <-wch
	if len(resp.Events) != 2 || resp.Events[0].Kv.ModRevision != rv.Header.Revision || resp.Events[1].Kv.ModRevision != rv.Header.Revision {
		t.Fatalf("revoke must delete both keys in its one revision %d: %v", rv.Header.Revision, resp.Events)
	}
	if _, err := cli.Revoke(ctx, g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := cli.Grant(ctx, 9_000_000_001); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
		t.Fatalf("too large TTL: %v", err)
	}
}

// A lease kept alive by clientv3 lives; once the keepalives stop it expires
// after its TTL, not before, and not much later.
func TestLeaseKeepAliveAndExpiry(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	cli := c.Client(0, 1, 2)
	g, err := cli.Grant(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "ka", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	kctx, stop := context.WithCancel(ctx)
	kch, err := cli.KeepAlive(kctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	var lastAck time.Time
	for until := time.Now().Add(3 * time.Second); time.Now().Before(until); {
		if _, ok := <-kch; !ok {
			t.Fatal("keepalive channel closed while keeping alive")
		}
		lastAck = time.Now()
	}
	stop()
	for range kch { // drain: clientv3 closes it once the keepalive stops
	}
	if r, err := cli.Get(ctx, "ka"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("a lease kept alive for 3 s with a 1 s TTL lost its key: %v %v", r, err)
	}
	gone := waitGone(t, cli, "ka", 10*time.Second)
	if d := gone.Sub(lastAck); d < time.Second || d > time.Second+leaseOverstay {
		t.Fatalf("expired %v after the last acknowledged keepalive (want between 1s and %v)", d, time.Second+leaseOverstay)
	}
}

// waitGone polls until key is absent and returns when it first saw it so.
func waitGone(t *testing.T, cli *clientv3.Client, key string, limit time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		r, err := cli.Get(context.Background(), key)
		if err == nil && len(r.Kvs) == 0 {
			return time.Now()
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s still present after %v", key, limit)
	return time.Time{}
}

// The leader is killed while 1,000 leases are held: none expires before its
// TTL since its last acknowledged keepalive, none outlives it by more than
// the bound, and the keys of each lease vanish in one revision.
func TestLeasesSurviveLeaderKill(t *testing.T) {
	const (
		n   = 1000
		ttl = 8 // seconds: the setup must fit in it
	)
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	lead := c.WaitLeader()
	survivors := []int{(lead + 1) % 3, (lead + 2) % 3}
	cli := c.Client(survivors...)

	// The deletions, timed as they arrive.
	type gone struct {
		rev int64
		at  time.Time
	}
	var mu sync.Mutex
	dels := map[string]gone{}
	wch := c.Client(survivors[0]).Watch(ctx, "lk/", clientv3.WithPrefix())
	go func() {
		for resp := range wch {
			now := time.Now()
			mu.Lock()
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					dels[string(ev.Kv.Key)] = gone{ev.Kv.ModRevision, now}
				}
			}
			mu.Unlock()
		}
	}()

	ids := make([]clientv3.LeaseID, n)
	acked := make([]time.Time, n)
	each := func(f func(i int) error) {
		t.Helper()
		var wg sync.WaitGroup
		errc := make(chan error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := f(i); err != nil {
					errc <- err
				}
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			t.Fatal(err)
		}
	}
	// Grant and attach, then one keepalive each: the acknowledgements come
	// close together, well inside the TTL.
	each(func(i int) error {
		g, err := cli.Grant(ctx, ttl)
		if err != nil {
			return err
		}
		ids[i] = g.ID
		for _, k := range []string{"a", "b"} {
			if _, err := cli.Put(ctx, fmt.Sprintf("lk/%04d/%s", i, k), "v", clientv3.WithLease(g.ID)); err != nil {
				return err
			}
		}
		return nil
	})
	each(func(i int) error {
		if _, err := cli.KeepAliveOnce(ctx, ids[i]); err != nil {
			return err
		}
		acked[i] = time.Now()
		return nil
	})
	// Kill the leader halfway through the TTL: a new leader that restarted
	// every lease's TTL (etcd's behaviour) would keep them 4 s too long.
	var last time.Time
	for _, a := range acked {
		if a.After(last) {
			last = a
		}
	}
	time.Sleep(time.Until(last.Add(ttl * time.Second / 2)))
	c.Crash(lead)
	killed := time.Now()

	deadline := time.Now().Add(ttl*time.Second + leaseOverstay + 20*time.Second)
	for {
		mu.Lock()
		got := len(dels)
		mu.Unlock()
		if got >= 2*n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d keys deleted", got, 2*n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	var early, late int
	var worst time.Duration
	for i := range n {
		a, b := dels[fmt.Sprintf("lk/%04d/a", i)], dels[fmt.Sprintf("lk/%04d/b", i)]
		if a.rev != b.rev {
			t.Errorf("lease %x: keys deleted at revisions %d and %d, not one", ids[i], a.rev, b.rev)
		}
		life := a.at.Sub(acked[i])
		worst = max(worst, life)
		if life < ttl*time.Second {
			early++
		}
		if life > ttl*time.Second+leaseOverstay {
			late++
		}
	}
	t.Logf("leader killed %v after the last keepalive; longest lease life after its keepalive %v (TTL %ds)", killed.Sub(last), worst, ttl)
	if early > 0 || late > 0 {
		t.Fatalf("%d leases expired before their TTL, %d too long after it (worst %v)", early, late, worst)
	}
}

// A session (a lease the client keeps alive, with its ephemeral keys) learns
// promptly that it ended: clientv3's Session.Done closes within one
// keepalive interval (TTL/3, checked every 500 ms) of the server revoking or
// expiring its lease.
func TestSessionLearnsItsEnd(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	cli := c.Client(0, 1, 2)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(3))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "eph/me", "here", clientv3.WithLease(s.Lease())); err != nil {
		t.Fatal(err)
	}
	revoked := time.Now()
	if _, err := c.Client(1).Revoke(ctx, s.Lease()); err != nil { // as the leader does at expiry
		t.Fatal(err)
	}
	select {
	case <-s.Done():
		// clientv3 sends a lease's keepalive every TTL/3 (1 s), checking
		// every 500 ms which leases are due: the answer that the lease is
		// gone comes at most 1.5 s after it went, plus scheduling.
		if d := time.Since(revoked); d > 1500*time.Millisecond+300*time.Millisecond {
			t.Fatalf("the session learned its end %v after it (want within TTL/3 + 0.5 s = 1.5 s)", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session never learned that its lease was gone")
	}
	if r, err := cli.Get(ctx, "eph/me"); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("the ephemeral key outlived its session: %v %v", r, err)
	}
}
