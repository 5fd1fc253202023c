package robustness

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/testutil"
)

// firstWrite retries a put through the given members until one succeeds
// and returns when it did.
func firstWrite(t *testing.T, pc *testutil.ProcCluster, ps []*testutil.Proc, deadline time.Duration) time.Time {
	t.Helper()
	cli := pc.Client(ps...)
	end := time.Now().Add(deadline)
	for i := 0; time.Now().Before(end); i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := cli.Put(ctx, "probe", fmt.Sprint(i))
		cancel()
		if err == nil {
			return time.Now()
		}
	}
	t.Fatalf("no write succeeded within %v", deadline)
	return time.Time{}
}

// TestUnavailabilityAfterLeaderKill measures, at the default timeouts
// (--heartbeat-interval 100, --election-timeout 1000), the time from a
// kill -9 of the leader to the first successful write, and the time for a
// cluster whose members were all killed to serve again.
func TestUnavailabilityAfterLeaderKill(t *testing.T) {
	pc := testutil.StartProcCluster(t, cairnBin, 3)
	const kills = 5
	var gaps []time.Duration
	for i := 0; i < kills; i++ {
		lead := pc.Leader()
		rest := others(pc, lead)
		firstWrite(t, pc, rest, 10*time.Second) // warm connections to the survivors
		killed := time.Now()
		lead.Kill()
		gaps = append(gaps, firstWrite(t, pc, rest, 20*time.Second).Sub(killed))
		lead.Start()
		pc.WaitReady(lead)
	}
	slices.Sort(gaps)
	p50, worst := gaps[len(gaps)/2], gaps[len(gaps)-1]
	t.Logf("leader kill -> first successful write, %d kills: p50 %v, max %v, all %v", kills, p50.Round(time.Millisecond), worst.Round(time.Millisecond), gaps)
	if worst > 2*time.Second {
		t.Errorf("writes resumed %v after a leader kill (bar: 2s)", worst)
	}

	for _, p := range pc.Procs {
		p.Kill()
	}
	start := time.Now()
	for _, p := range pc.Procs {
		p.Start()
	}
	d := firstWrite(t, pc, pc.Procs, 30*time.Second).Sub(start)
	t.Logf("all members killed and restarted -> first successful write after %v", d.Round(time.Millisecond))
	if d > 10*time.Second {
		t.Errorf("cluster served again only %v after a restart of every member (bar: 10s)", d)
	}
}
