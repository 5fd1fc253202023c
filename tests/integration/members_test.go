package integration

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-db/cairn/internal/testutil"
)

// Membership under load: while a client keeps writing and reading, a
// learner is added and catches up, is promoted, and the old leader is
// removed. The client sees no error it would not also get from etcd (a
// leader change may time out a request; nothing else), every acknowledged
// write is readable at the end, and the new member holds the same state.
func TestMembershipChangesUnderLoad(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var mu sync.Mutex
	acked := map[string]bool{}
	var badErr error
	load := c.Client(0, 1, 2)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			k := fmt.Sprintf("load/%05d", i)
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			_, err := load.Put(cctx, k, "v")
			if err == nil {
				_, err = load.Get(cctx, k)
			}
			cancel()
			mu.Lock()
			switch {
			case err == nil:
				acked[k] = true
			case errors.Is(err, context.DeadlineExceeded), errors.Is(err, rpctypes.ErrTimeout),
				errors.Is(err, rpctypes.ErrLeaderChanged), errors.Is(err, rpctypes.ErrNoLeader),
				errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail):
				// what etcd also answers around a leader change
			default:
				if badErr == nil {
					badErr = fmt.Errorf("%s: %w", k, err)
				}
			}
			mu.Unlock()
		}
	}()

	cli := c.Client(0, 1, 2)
	// Bad requests get etcd's errors.
	if _, err := cli.MemberAdd(ctx, []string{c.Members[0].PeerURL}); !errors.Is(err, rpctypes.ErrPeerURLExist) {
		t.Fatalf("member add of a used peer URL: %v", err)
	}
	if _, err := cli.MemberRemove(ctx, 12345); !errors.Is(err, rpctypes.ErrMemberNotFound) {
		t.Fatalf("member remove of a stranger: %v", err)
	}

	learner := c.AddMember(true)
	ml, err := cli.MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var learnerID uint64
	for _, m := range ml.Members {
		if m.IsLearner {
			learnerID = m.ID
		}
	}
	if learnerID == 0 || len(ml.Members) != 4 {
		t.Fatalf("after adding a learner: %v", ml.Members)
	}
	if _, err := cli.MemberAddAsLearner(ctx, []string{"http://127.0.0.1:1"}); !errors.Is(err, rpctypes.ErrTooManyLearners) {
		t.Fatalf("a second learner: %v", err)
	}
	if _, err := c.Client(learner).Put(ctx, "to-learner", "x"); err != nil {
		t.Fatalf("a write through the learner (forwarded): %v", err)
	}
	// Promote once it caught up (refused with LearnerNotReady until then).
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := cli.MemberPromote(ctx, learnerID)
		if err == nil {
			break
		}
		if !errors.Is(err, rpctypes.ErrMemberLearnerNotReady) || time.Now().After(deadline) {
			t.Fatalf("promote: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cli.MemberPromote(ctx, learnerID); !errors.Is(err, rpctypes.ErrMemberNotLearner) {
		t.Fatalf("promoting a voter: %v", err)
	}

	// Remove the old leader.
	lead := c.WaitLeader()
	st, err := cli.Status(ctx, c.Members[lead].ClientURL)
	if err != nil {
		t.Fatal(err)
	}
	others := []int{}
	for i := range c.Members {
		if i != lead {
			others = append(others, i)
		}
	}
	if _, err := c.Client(others...).MemberRemove(ctx, st.Header.MemberId); err != nil {
		t.Fatalf("removing the leader: %v", err)
	}
	select {
	case err := <-c.Members[lead].D.Err():
		t.Logf("removed leader stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the removed leader kept running")
	}
	c.Members[lead].D.Stop()
	c.Members[lead].D = nil

	time.Sleep(time.Second) // keep the load going across the change
	stop.Store(true)
	wg.Wait()
	if badErr != nil {
		t.Fatalf("the client got an error etcd would not give: %v", badErr)
	}

	final := c.Client(others...)
	ml, err = final.MemberList(ctx)
	if err != nil || len(ml.Members) != 3 {
		t.Fatalf("members at the end: %v %v", ml, err)
	}
	r, err := final.Get(ctx, "load/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, kv := range r.Kvs {
		have[string(kv.Key)] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for k := range acked {
		if !have[k] {
			t.Fatalf("acknowledged write %s lost", k)
		}
	}
	t.Logf("%d acknowledged writes under load, all present; members now %d", len(acked), len(ml.Members))
	// The new member (now a voter) holds the same state.
	rev := r.Header.Revision
	var first uint32
	for n, i := range others {
		h, err := final.HashKV(ctx, c.Members[i].ClientURL, rev)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			first = h.Hash
		} else if h.Hash != first {
			t.Fatalf("member %s diverged at revision %d", c.Members[i].Name, rev)
		}
	}
}
