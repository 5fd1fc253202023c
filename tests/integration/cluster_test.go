// Package integration drives in-process Cairn clusters (in-memory file
// systems that drop unsynced data on a simulated crash) with clientv3.
package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/testutil"
)

func TestWritesThroughAnyMemberReadEverywhere(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	for i := range c.Members {
		cli := c.Client(i)
		if _, err := cli.Put(ctx, fmt.Sprintf("from/%d", i), "v"); err != nil {
			t.Fatalf("put via member %d: %v", i, err)
		}
	}
	// Linearizable reads on every member see every write.
	for i := range c.Members {
		resp, err := c.Client(i).Get(ctx, "from/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count != 3 {
			t.Fatalf("member %d sees %d of 3 keys", i, resp.Count)
		}
	}
	// Serializable reads are served locally and eventually agree.
	resp, err := c.Client(0).Get(ctx, "from/", clientv3.WithPrefix(), clientv3.WithSerializable())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count > 3 {
		t.Fatalf("serializable read saw %d keys", resp.Count)
	}
}

// TestLinearizableReadAfterWriteOnFollower checks read-your-writes across
// members many times concurrently: a value acknowledged through one member
// is seen by a linearizable read started afterwards on another member.
func TestLinearizableReadAfterWriteOnFollower(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	clis := []*clientv3.Client{c.Client(0), c.Client(1), c.Client(2)}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 30; i++ {
				k := fmt.Sprintf("rw/%d", w)
				v := fmt.Sprint(i)
				if _, err := clis[i%3].Put(ctx, k, v); err != nil {
					errc <- err
					return
				}
				resp, err := clis[(i+1)%3].Get(ctx, k)
				if err != nil {
					errc <- err
					return
				}
				if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != v {
					errc <- fmt.Errorf("stale read of %s: got %v want %s", k, resp.Kvs, v)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func TestCrashAllMembersKeepsAcknowledgedWrites(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{SnapshotCount: 50, CatchUpEntries: 10})
	ctx := testutil.Ctx(t)
	cli := c.Client()
	for i := 0; i < 200; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("k/%03d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range c.Members {
		c.Crash(i) // drops every byte not fsynced
	}
	for i := range c.Members {
		c.Start(i)
	}
	c.WaitLeader()
	cli2 := c.Client()
	resp, err := cli2.Get(ctx, "k/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 200 {
		t.Fatalf("after crash of all members %d of 200 acknowledged keys remain", resp.Count)
	}
	for i, kv := range resp.Kvs {
		if string(kv.Value) != fmt.Sprint(i) {
			t.Fatalf("key %s has value %s, want %d", kv.Key, kv.Value, i)
		}
	}
}

func TestFollowerRestartCatchesUpBySnapshot(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{SnapshotCount: 100, CatchUpEntries: 10})
	ctx := testutil.Ctx(t)
	lead := c.WaitLeader()
	f := (lead + 1) % 3
	c.StopMember(f)
	cli := c.Client(lead)
	for i := 0; i < 500; i++ {
		if _, err := cli.Put(ctx, fmt.Sprintf("s/%03d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	c.Start(f)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Client(f).Get(ctx, "s/", clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count == 500 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("follower did not catch up: %v %v", resp, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	assertSameHash(t, c)
}

func assertSameHash(t *testing.T, c *testutil.Cluster) {
	t.Helper()
	ctx := testutil.Ctx(t)
	put, err := c.Client().Put(ctx, "barrier", "x")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	var hashes []uint32
	for i := range c.Members {
		cli := c.Client(i)
		if _, err := cli.Get(ctx, "barrier"); err != nil {
			t.Fatal(err)
		}
		resp, err := cli.HashKV(ctx, c.Members[i].ClientURL, rev)
		if err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, resp.Hash)
	}
	for _, h := range hashes[1:] {
		if h != hashes[0] {
			t.Fatalf("HashKV at %d differs: %x", rev, hashes)
		}
	}
}

func TestLeaderStopElectsNewLeaderAndWritesContinue(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	lead := c.WaitLeader()
	c.StopMember(lead)
	others := []int{(lead + 1) % 3, (lead + 2) % 3}
	cli := c.Client(others...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Put(cctx, "after", "x")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write after leader stop: %v", err)
		}
	}
	c.Start(lead)
	resp, err := c.Client(lead).Get(ctx, "after")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("restarted old leader misses the write: %v %v", resp, err)
	}
	assertSameHash(t, c)
}

func TestMemberListAndStatus(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	cli := c.Client(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ml, err := cli.MemberList(ctx)
		if err != nil {
			t.Fatal(err)
		}
		published := 0
		for _, m := range ml.Members {
			if len(m.ClientURLs) == 1 && m.Name != "" {
				published++
			}
		}
		if len(ml.Members) == 3 && published == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member list: %v", ml.Members)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range c.Members {
		st, err := cli.Status(ctx, c.Members[i].ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == 0 || st.RaftIndex == 0 || st.Header.MemberId == 0 {
			t.Fatalf("status of member %d: %+v", i, st)
		}
	}
}

// Maintenance.MoveLeader: only the leader accepts it; leadership moves to
// the target, which must be a member.
func TestMoveLeader(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	lead := c.WaitLeader()
	target := (lead + 1) % 3
	cli := c.Client(lead)
	st, err := cli.Status(ctx, c.Members[target].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	targetID := st.Header.MemberId
	if _, err := c.Client(target).MoveLeader(ctx, targetID); !errors.Is(err, rpctypes.ErrNotLeader) {
		t.Fatalf("move-leader on a follower: %v, want %v", err, rpctypes.ErrNotLeader)
	}
	if _, err := cli.MoveLeader(ctx, 12345); !errors.Is(err, rpctypes.ErrBadLeaderTransferee) {
		t.Fatalf("move-leader to a stranger: %v", err)
	}
	if _, err := cli.MoveLeader(ctx, targetID); err != nil {
		t.Fatal(err)
	}
	if got := c.WaitLeader(); got != target {
		t.Fatalf("leader is member %d, want %d", got, target)
	}
	if _, err := c.Client(target).Put(ctx, "after-move", "x"); err != nil {
		t.Fatal(err)
	}
}

// The space quota: past --quota-backend-bytes, writes that add data are
// refused with etcd's NOSPACE error and the alarm is listed; reads, deletes
// and compaction go on; after making room, disarming lets writes in again.
func TestSpaceQuota(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{Mutate: func(cfg *daemon.Config) { cfg.QuotaBackendBytes = 64 << 10 }})
	ctx := testutil.Ctx(t)
	cli := c.Client(0, 1, 2)
	value := strings.Repeat("x", 1024)
	var err error
	n := 0
	for ; n < 1000; n++ {
		if _, err = cli.Put(ctx, fmt.Sprintf("q/%04d", n), value); err != nil {
			break
		}
	}
	if !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("after %d puts: %v, want %v", n, err, rpctypes.ErrNoSpace)
	}
	t.Logf("NOSPACE after %d puts of 1 KiB (quota 64 KiB)", n)
	alarms, err := cli.AlarmList(ctx)
	if err != nil || len(alarms.Alarms) != 1 || alarms.Alarms[0].Alarm != pb.AlarmType_NOSPACE {
		t.Fatalf("alarm list: %v %v", alarms, err)
	}
	for i := range c.Members { // every member refuses, whoever receives the write
		if _, err := c.Client(i).Put(ctx, "q/more", "v"); !errors.Is(err, rpctypes.ErrNoSpace) {
			t.Fatalf("member %d took a put under NOSPACE: %v", i, err)
		}
	}
	if _, err := cli.Grant(ctx, 60); !errors.Is(err, rpctypes.ErrNoSpace) {
		t.Fatalf("lease grant under NOSPACE: %v", err)
	}
	if r, err := cli.Get(ctx, "q/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || r.Count != int64(n) {
		t.Fatalf("read under NOSPACE: %v %v", r, err)
	}
	del, err := cli.Delete(ctx, "q/", clientv3.WithPrefix())
	if err != nil {
		t.Fatalf("delete under NOSPACE: %v", err)
	}
	if _, err := cli.Compact(ctx, del.Header.Revision); err != nil {
		t.Fatalf("compaction under NOSPACE: %v", err)
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: alarms.Alarms[0].MemberID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "q/after", "v"); err != nil {
		t.Fatalf("put after making room and disarming: %v", err)
	}
}
