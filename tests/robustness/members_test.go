package robustness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/cairn-db/cairn/internal/testutil"
)

// replaceLeader is the member-change fault: under the full workload, a new
// member joins as a learner, catches up, is promoted, and the leader is
// removed (it must stop by itself). The new member takes the old leader's
// place in e.pc, so every check after the fault (hashes, the set, the
// watchers' fence) covers it.
func replaceLeader(e *env) {
	t, pc := e.t, e.pc
	cli := pc.Client()
	p := pc.NewProc(fmt.Sprintf("p%d", len(pc.Procs)))
	var learnerID uint64
	memberCall(e, "member add (learner)", nil, func(ctx context.Context) error {
		resp, err := cli.MemberAddAsLearner(ctx, []string{p.Peer})
		if err == nil {
			learnerID = resp.Member.ID
			return nil
		}
		if errors.Is(err, rpctypes.ErrPeerURLExist) {
			// An earlier attempt that timed out was applied after all.
			ml, lerr := cli.MemberList(ctx)
			if lerr != nil {
				return lerr
			}
			for _, m := range ml.Members {
				if slices.Contains(m.PeerURLs, p.Peer) {
					learnerID = m.ID
					return nil
				}
			}
		}
		return err
	})
	p.Start()
	pc.Procs = append(pc.Procs, p) // killed at cleanup with the others
	// Refused with "learner not ready" until it caught up.
	memberCall(e, "member promote", rpctypes.ErrMemberLearnerNotReady, func(ctx context.Context) error {
		_, err := cli.MemberPromote(ctx, learnerID)
		return err
	})

	old := pc.Leader()
	oldID, err := strconv.ParseUint(memberID(t, pc, old), 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	rest := pc.Client(others(pc, old)...)
	memberCall(e, "member remove (the leader)", rpctypes.ErrUnhealthy, func(ctx context.Context) error {
		_, err := rest.MemberRemove(ctx, oldID)
		return err
	})
	if _, exited := old.WaitExit(10 * time.Second); !exited {
		t.Errorf("%s kept running after it was removed", old.Name)
	}
	old.Kill()
	pc.Procs = slices.DeleteFunc(pc.Procs, func(q *testutil.Proc) bool { return q == old })
	t.Logf("replaced leader %s (%x) by %s (%x)", old.Name, oldID, p.Name, learnerID)
}

// memberCall retries a membership call for up to 30 s while it fails with
// wait (the cluster is not ready for it yet) or with an error of a leader
// change, as an operator would.
func memberCall(e *env, what string, wait error, call func(ctx context.Context) error) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := call(ctx)
		cancel()
		if err == nil {
			return
		}
		transient := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, rpctypes.ErrTimeout) ||
			errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrNoLeader) ||
			errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) || wait != nil && errors.Is(err, wait)
		if !transient || time.Now().After(deadline) {
			e.t.Fatalf("%s: %v", what, err)
		}
		pause(100 * time.Millisecond)
	}
}
