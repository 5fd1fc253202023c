package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-db/cairn/cairnclient"
	"github.com/cairn-db/cairn/internal/testutil"
)

// Sequential keys: 20 digits, strictly increasing across concurrent
// creators, ephemeral with a lease.
func TestCreateSequential(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	cli := c.Client((c.WaitLeader() + 1) % 3)
	const n = 50
	keys := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, rev, err := cairnclient.CreateSequential(ctx, cli, "q/job-", strconv.Itoa(i), 0)
			if err != nil {
				t.Error(err)
				return
			}
			if want := fmt.Sprintf("q/job-%020d", rev); k != want {
				t.Errorf("key %q, want %q", k, want)
			}
			keys[i] = k
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k] {
			t.Fatalf("duplicate sequential key %q", k)
		}
		seen[k] = true
	}
	r, err := cli.Get(ctx, "q/", clientv3.WithPrefix())
	if err != nil || len(r.Kvs) != n {
		t.Fatalf("%d keys stored, want %d (%v)", len(r.Kvs), n, err)
	}
	for i := 1; i < len(r.Kvs); i++ {
		if r.Kvs[i].CreateRevision <= r.Kvs[i-1].CreateRevision {
			t.Fatalf("key order and creation order differ at %q", r.Kvs[i].Key)
		}
	}

	// Ephemeral: gone with its lease; an unknown lease is refused.
	g, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	eph, _, err := cairnclient.CreateSequential(ctx, cli, "members/m-", "me", g.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Revoke(ctx, g.ID); err != nil {
		t.Fatal(err)
	}
	if r, err := cli.Get(ctx, eph); err != nil || len(r.Kvs) != 0 {
		t.Fatalf("ephemeral sequential key survived its lease: %v %v", r, err)
	}
	if _, _, err := cairnclient.CreateSequential(ctx, cli, "members/m-", "me", g.ID); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		t.Fatalf("sequential create with a revoked lease: %v", err)
	}
}

// A holder that lost its lock (its session expired while it was paused)
// cannot write with its old token; the new holder can.
func TestFencedWrites(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	cli := c.Client(0, 1, 2)

	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	m1 := concurrency.NewMutex(s1, "locks/db")
	if err := m1.Lock(ctx); err != nil {
		t.Fatal(err)
	}
	tok1, err := cairnclient.MutexToken(ctx, cli, m1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(cairnclient.WithFence(ctx, "locks/db", tok1), "db/config", "from-1"); err != nil {
		t.Fatalf("the holder's guarded write: %v", err)
	}

	// Holder 1 "pauses": its lease expires (revoked here, as expiry would),
	// and holder 2 takes the lock through the Lock service.
	if _, err := cli.Revoke(ctx, s1.Lease()); err != nil {
		t.Fatal(err)
	}
	g2, err := cli.Grant(ctx, 30)
	if err != nil {
		t.Fatal(err)
	}
	key2, tok2, err := cairnclient.Lock(ctx, cli, "locks/db", g2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tok2 <= tok1 || !strings.HasPrefix(key2, "locks/db/") {
		t.Fatalf("second holder: key %q token %d (first %d)", key2, tok2, tok1)
	}

	// The old holder wakes up and writes with its token: rejected, nothing changes.
	before, _ := cli.Get(ctx, "db/config")
	for name, write := range map[string]func(context.Context) error{
		"put": func(ctx context.Context) error { _, err := cli.Put(ctx, "db/config", "from-1-late"); return err },
		"del": func(ctx context.Context) error { _, err := cli.Delete(ctx, "db/config"); return err },
		"txn": func(ctx context.Context) error {
			_, err := cli.Txn(ctx).Then(clientv3.OpPut("db/config", "x"), clientv3.OpPut("db/other", "y")).Commit()
			return err
		},
	} {
		err := write(cairnclient.WithFence(ctx, "locks/db", tok1))
		if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "fencing token") {
			t.Fatalf("stale %s: %v, want FailedPrecondition", name, err)
		}
	}
	after, _ := cli.Get(ctx, "db/config")
	if after.Header.Revision != before.Header.Revision || string(after.Kvs[0].Value) != "from-1" {
		t.Fatalf("a rejected guarded write changed the store: %v -> %v", before, after)
	}
	if r, _ := cli.Get(ctx, "db/other"); len(r.Kvs) != 0 {
		t.Fatal("a rejected guarded txn was half-applied")
	}
	if _, err := cli.Put(cairnclient.WithFence(ctx, "locks/db", tok2), "db/config", "from-2"); err != nil {
		t.Fatalf("the new holder's guarded write: %v", err)
	}
	// Released: no token is current; a bad token is a client error.
	if _, err := cli.Delete(ctx, key2); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(cairnclient.WithFence(ctx, "locks/db", tok2), "db/config", "x"); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("guarded write after release: %v", err)
	}
	if _, err := cli.Put(cairnclient.WithFence(ctx, "locks/db", -1), "db/config", "x"); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("guarded write with a bad token: %v", err)
	}
}
