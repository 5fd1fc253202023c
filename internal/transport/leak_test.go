package transport

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// After Stop (and the servers' Close) no goroutine of ours is left: the count
// returns to the baseline. Stop is idempotent and the API is inert afterwards.
func TestStopLeaksNothing(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		nodes := []*node{startNode(t, 1, ""), startNode(t, 2, ""), startNode(t, 3, "")}
		for _, a := range nodes {
			for _, b := range nodes {
				if a != b {
					a.tr.AddPeer(b.id, []string{b.url})
				}
			}
			a.tr.AddPeer(4, []string{"http://" + freeAddr(t)}) // down peer
		}
		nodes[0].tr.Send([]*raftpb.Message{snapMsg(1, 2, make([]byte, 1<<20)), msg(raftpb.MsgApp, 1, 3, 1)})
		for i := uint64(1); i <= 100; i++ {
			nodes[1].tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 2, 1, i), msg(raftpb.MsgApp, 2, 3, i), msg(raftpb.MsgApp, 2, 4, i)})
		}
		waitFor(t, "traffic", func() bool { return nodes[0].raft.count() == 100 && len(nodes[0].raft.snapshots()) == 1 })
		for _, n := range nodes {
			n.stop()
			n.tr.Stop() // idempotent
			n.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, n.id, 1, 1)})
			n.tr.AddPeer(7, []string{"http://127.0.0.1:1"})
			if n.tr.ActivePeers() != 0 {
				t.Error("peers left after Stop")
			}
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d now, %d before\n%s", runtime.NumGoroutine(), base, filterStacks(string(buf)))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("goroutines: %d before, %d after", base, runtime.NumGoroutine())
}

func filterStacks(s string) string {
	var out []string
	for _, g := range strings.Split(s, "\n\n") {
		if !strings.Contains(g, "TestStopLeaksNothing") && !strings.Contains(g, "testing.tRunner") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}
