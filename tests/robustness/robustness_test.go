// Package robustness breaks a real 3-member cluster on purpose (kill -9,
// SIGSTOP, partitions, lossy and slow links, slow and failing disks, a full
// disk, a lagging member) while clients run a register workload and a set
// workload, then proves that nothing went wrong: the recorded history is
// linearizable (porcupine, against etcd's KV model with its global
// revision), every acknowledged insert is present, and every member reports
// the same HashKV. Mutants (deliberately broken servers) must be caught.
//
// The cairn binary is built with -tags failpoints (see internal/failpoint).
// Run: go test -tags failpoints ./tests/robustness/   (the short suite, CI)
// Long random schedule: ROBUSTNESS_DURATION=30m ROBUSTNESS_SEED=7 go test -tags failpoints -run Long -timeout 0 ./tests/robustness/
package robustness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-db/cairn/internal/failpoint"
	"github.com/cairn-db/cairn/internal/testutil"
	"github.com/cairn-db/cairn/tests/robustness/history"
)

var cairnBin string

func TestMain(m *testing.M) {
	if !failpoint.Enabled {
		fmt.Fprintln(os.Stderr, "robustness tests need -tags failpoints")
		os.Exit(1)
	}
	dir, err := os.MkdirTemp("", "cairn-robustness-bin")
	if err != nil {
		panic(err)
	}
	cairnBin, err = testutil.BuildCairn(dir, "failpoints")
	if err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func seed(t *testing.T) uint64 {
	if s := os.Getenv("ROBUSTNESS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// env is one scenario's cluster and workload.
type env struct {
	t    *testing.T
	pc   *testutil.ProcCluster
	w    *workload
	rnd  *rand.Rand
	long bool // the long random schedule: fault durations vary
	// window bounds how late after its client's error a write of unknown
	// outcome may still take effect: the longest fault plus settleMargin.
	window time.Duration
}

// A write whose client gave up may still be applied once the fault that
// held it ends: a paused leader resumes and commits what it had, a forwarded
// proposal leaves a peer's queue. settleMargin covers an election, a client
// timeout and a commit after the fault; fixed faults last up to 3 s.
const (
	settleMargin  = 5 * time.Second
	defaultWindow = 3*time.Second + settleMargin
)

// faultDuration is 3 s in the CI run and, in the long run, random in [lo, hi].
func (e *env) faultDuration(lo, hi time.Duration) time.Duration {
	d := 3 * time.Second
	if e.long {
		d = lo + time.Duration(e.rnd.Int64N(int64(hi-lo)+1))
	}
	e.window = max(e.window, d+settleMargin)
	return d
}

// setFailpoint sets (value "") or clears a failpoint on a running member.
func setFailpoint(t *testing.T, p *testutil.Proc, name, value string) {
	t.Helper()
	method := http.MethodPut
	if value == "" {
		method = http.MethodDelete
	}
	req, _ := http.NewRequest(method, p.Client+"/debug/failpoints/"+name, strings.NewReader(value))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Logf("failpoint %s=%s on %s: %v", name, value, p.Name, err)
		return
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("failpoint %s=%s on %s: HTTP %d", name, value, p.Name, resp.StatusCode)
	}
}

// memberID returns a member's ID (hex) from its Status.
func memberID(t *testing.T, pc *testutil.ProcCluster, p *testutil.Proc) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := pc.Client(p).Status(ctx, p.Client)
	if err != nil {
		t.Fatalf("status of %s: %v", p.Name, err)
	}
	return strconv.FormatUint(st.Header.MemberId, 16)
}

// partition cuts the links between the two groups, both ways.
func partition(t *testing.T, pc *testutil.ProcCluster, a, b []*testutil.Proc) {
	ids := map[*testutil.Proc]string{}
	for _, p := range pc.Procs {
		ids[p] = memberID(t, pc, p)
	}
	cut := func(from, to []*testutil.Proc) {
		for _, p := range from {
			var drop []string
			for _, q := range to {
				drop = append(drop, ids[q])
			}
			setFailpoint(t, p, "peer-drop", strings.Join(drop, ","))
		}
	}
	cut(a, b)
	cut(b, a)
}

func heal(t *testing.T, pc *testutil.ProcCluster) {
	for _, p := range pc.Procs {
		if p.Running() {
			for _, fp := range []string{"peer-drop", "peer-drop-rate", "peer-delay", "fsync-delay"} {
				setFailpoint(t, p, fp, "")
			}
		}
	}
}

func others(pc *testutil.ProcCluster, not *testutil.Proc) []*testutil.Proc {
	var out []*testutil.Proc
	for _, p := range pc.Procs {
		if p != not {
			out = append(out, p)
		}
	}
	return out
}

// scenario is one fault: inject runs while the workload runs and must leave
// every member able to restart (recover undoes what inject did).
type scenario struct {
	name  string
	flags []string // extra serve flags
	env   string   // CAIRN_FAILPOINTS for every member at start
	run   func(e *env)
}

func pause(d time.Duration) { time.Sleep(d) } // fault durations, not correctness

var scenarios = []scenario{
	{name: "kill-leader", run: func(e *env) {
		l := e.pc.Leader()
		l.Kill()
		pause(2 * time.Second)
		l.Start()
	}},
	{name: "kill-follower", run: func(e *env) {
		f := others(e.pc, e.pc.Leader())[0]
		f.Kill()
		pause(2 * time.Second)
		f.Start()
	}},
	{name: "kill-all", run: func(e *env) {
		for _, p := range e.pc.Procs {
			p.Kill()
		}
		pause(500 * time.Millisecond)
		for _, p := range e.pc.Procs {
			p.Start()
		}
	}},
	{name: "pause-leader", run: func(e *env) {
		l := e.pc.Leader()
		l.Pause()
		pause(e.faultDuration(2*time.Second, 15*time.Second))
		l.Resume()
	}},
	{name: "isolate-leader", run: func(e *env) {
		l := e.pc.Leader()
		partition(e.t, e.pc, []*testutil.Proc{l}, others(e.pc, l))
		pause(e.faultDuration(time.Second, 10*time.Second))
		heal(e.t, e.pc)
	}},
	{name: "isolate-follower", run: func(e *env) {
		f := others(e.pc, e.pc.Leader())[0]
		partition(e.t, e.pc, []*testutil.Proc{f}, others(e.pc, f))
		pause(3 * time.Second)
		heal(e.t, e.pc)
	}},
	{name: "bridge", run: func(e *env) {
		// p0 and p2 cannot talk; p1 talks to both.
		partition(e.t, e.pc, []*testutil.Proc{e.pc.Procs[0]}, []*testutil.Proc{e.pc.Procs[2]})
		pause(3 * time.Second)
		heal(e.t, e.pc)
	}},
	{name: "lossy-slow-links", run: func(e *env) {
		for _, p := range e.pc.Procs {
			setFailpoint(e.t, p, "peer-drop-rate", "0.2")
			setFailpoint(e.t, p, "peer-delay", "30ms")
		}
		pause(3 * time.Second)
		heal(e.t, e.pc)
	}},
	{name: "slow-fsync-leader", run: func(e *env) {
		setFailpoint(e.t, e.pc.Leader(), "fsync-delay", "200ms")
		pause(3 * time.Second)
		heal(e.t, e.pc)
	}},
	{name: "disk-full-follower", run: func(e *env) {
		f := others(e.pc, e.pc.Leader())[0]
		setFailpoint(e.t, f, "disk-full", "1")
		if _, exited := f.WaitExit(10 * time.Second); !exited {
			e.t.Errorf("%s kept running with a full disk", f.Name)
			f.Kill()
		}
		f.Start()
	}},
	{name: "fsync-error-leader", run: func(e *env) {
		l := e.pc.Leader()
		setFailpoint(e.t, l, "fsync-error", "1")
		if _, exited := l.WaitExit(10 * time.Second); !exited {
			e.t.Errorf("%s kept running after a failed fsync", l.Name)
			l.Kill()
		}
		l.Start()
	}},
	{name: "replace-leader", run: replaceLeader},
	{name: "lagging-follower-snapshot", flags: []string{"--snapshot-count", "300", "--snapshot-catchup-entries", "30"}, run: func(e *env) {
		f := others(e.pc, e.pc.Leader())[0]
		f.Kill()
		pause(3 * time.Second)
		f.Start()
		pause(time.Second)
		if !strings.Contains(f.Output(), "installed snapshot from leader") {
			e.t.Errorf("%s caught up without a snapshot: the scenario did not exercise snapshot catch-up", f.Name)
		}
	}},
}

// runScenario runs one fault under load and checks everything.
func runScenario(t *testing.T, sc scenario, sd uint64, wantViolation bool) {
	runScenarioWatch(t, sc, sd, wantViolation, false)
}

// runScenarioWatch is runScenario for a server expected (or not) to break
// the watch guarantees.
func runScenarioWatch(t *testing.T, sc scenario, sd uint64, wantViolation, wantWatchViolation bool) {
	t.Logf("scenario %s, seed %d (rerun with ROBUSTNESS_SEED=%d)", sc.name, sd, sd)
	pc := testutil.StartProcClusterEnv(t, cairnBin, 3, envList(sc.env), append([]string{"--heartbeat-interval", "50", "--election-timeout", "500"}, sc.flags...)...)
	w := newWorkload(sd)
	var watchers []*watcher
	for i := 0; i < 3; i++ {
		wt, err := startWatcher(pc.Endpoints(), w.now)
		if err != nil {
			t.Fatal(err)
		}
		defer wt.stop()
		watchers = append(watchers, wt)
	}
	if err := w.run(pc.Endpoints(), 8, 3); err != nil {
		t.Fatal(err)
	}
	locks, err := startLocks(pc.Endpoints(), 3, "lk/lock", "lk/counter", false, w.stop)
	if err != nil {
		t.Fatal(err)
	}
	elections, err := startLocks(pc.Endpoints(), 3, "el/election", "el/counter", true, w.stop)
	if err != nil {
		t.Fatal(err)
	}
	leases, err := startLeases(pc.Endpoints(), 6, w.stop)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, pc: pc, w: w, rnd: rand.New(rand.NewPCG(sd, 1)), long: os.Getenv("ROBUSTNESS_DURATION") != "", window: defaultWindow}
	pause(time.Second)
	sc.run(e)
	pause(time.Second)
	w.halt()
	locks.wait()
	elections.wait()
	leases.wait()

	// Recovery: every member up and serving within 10 s of the fault's end.
	healStart := time.Now()
	for _, p := range pc.Procs {
		if !p.Running() {
			p.Start()
		}
	}
	pc.WaitReady(pc.Procs...)
	if d := time.Since(healStart); d > 10*time.Second {
		t.Errorf("cluster took %v to serve again after the fault ended (bar: 10s)", d)
	}

	missing, acked, err := w.checkSet(pc.Client())
	if err != nil {
		t.Fatalf("set check: %v", err)
	}
	if len(missing) > 0 {
		t.Errorf("LOST %d of %d acknowledged inserts, e.g. %v", len(missing), acked, missing[:min(5, len(missing))])
	}
	for name, l := range map[string]*lockWorkload{"lock": locks, "election": elections} {
		if summary, err := l.check(pc.Client()); err != nil {
			t.Errorf("%s workload: %v", name, err)
		} else {
			t.Logf("%s workload: %s", name, summary)
		}
	}
	if summary, err := leases.check(); err != nil {
		t.Errorf("lease workload: %v", err)
	} else {
		t.Logf("lease workload: %s", summary)
	}
	checkHashes(t, pc)
	// The watchers' log must run past the end of every unknown write's
	// window to prove that write never took effect.
	ops := w.rec.Operations()
	var lastErr time.Duration
	for _, op := range ops {
		lastErr = max(lastErr, op.Output.(history.Response).ErrAt)
	}
	pause(lastErr + e.window - w.now())
	obs, err := checkWatchEvents(pc, w, watchers)
	if err != nil {
		if wantWatchViolation {
			t.Logf("watch check failed as the mutant requires: %v", err)
		} else {
			t.Errorf("watch guarantees violated: %v", err)
		}
		obs = nil // a log that failed its own checks settles nothing
	} else if wantWatchViolation {
		t.Errorf("the watch mutant was NOT caught: every watch check passed")
	}

	// The set workload's inserts share the global revision but are not in
	// the register history: revision gaps from other writers are allowed.
	// An unknown write may take effect at most e.window after its client
	// gave up. The watchers' log of the register keys settles most unknown
	// outcomes before the search.
	res, err := history.CheckWithOptions(ops, history.Options{Timeout: 3 * time.Minute, OtherWriters: true,
		UnknownWindow: e.window, Observed: obs, VisualizationDir: t.TempDir()})
	if err != nil {
		t.Fatalf("linearizability check: %v", err)
	}
	t.Logf("%d register ops (%d acknowledged writes), %d acknowledged inserts: %v", len(ops), w.writes, acked, res)
	switch {
	case wantViolation && res.Ok():
		t.Errorf("the mutant was NOT caught: history is linearizable")
	case !wantViolation && !res.Ok():
		t.Errorf("history is NOT linearizable: %s", res)
	}
}

// checkWatchEvents writes a fence, reads the final register state and
// checks every watcher against it and against the acknowledged writes. It
// returns what the watchers saw as the register keys' write log.
func checkWatchEvents(pc *testutil.ProcCluster, w *workload, ws []*watcher) (*history.Observation, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cli := pc.Client()
	fence, err := cli.Put(ctx, "reg/zz-fence", "fence")
	if err != nil {
		return nil, fmt.Errorf("fence write: %v", err)
	}
	until := w.now()
	// The final state is read at the fence's revision (what the watchers
	// are checked up to). A member that has not applied it yet answers
	// "future revision": ask again. (Reading the latest state instead would
	// make a stale-read server fail the watch check too, not only the
	// linearizability check.)
	var resp *clientv3.GetResponse
	for {
		resp, err = cli.Get(ctx, "reg/", clientv3.WithPrefix(), clientv3.WithRev(fence.Header.Revision))
		if err == nil || !errors.Is(err, rpctypes.ErrFutureRev) || ctx.Err() != nil {
			break
		}
		pause(20 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("final read: %v", err)
	}
	final := map[string]string{}
	for _, kv := range resp.Kvs {
		final[string(kv.Key)] = string(kv.Value)
	}
	w.mu.Lock()
	acked := make(map[string]int64, len(w.ackedWrites)+1)
	for v, r := range w.ackedWrites {
		acked[v] = r
	}
	w.mu.Unlock()
	acked["fence"] = fence.Header.Revision
	events, err := checkWatchers(ws, fence.Header.Revision, final, acked)
	if err != nil {
		return nil, err
	}
	obs := &history.Observation{Until: until}
	for _, e := range events {
		obs.Events = append(obs.Events, history.ObservedEvent{Key: e.key, Value: e.value, Delete: e.delete, Rev: e.rev, SeenAt: e.seen})
	}
	return obs, nil
}

func envList(spec string) []string {
	if spec == "" {
		return nil
	}
	return []string{"CAIRN_FAILPOINTS=" + spec}
}

func checkHashes(t *testing.T, pc *testutil.ProcCluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	put, err := pc.Client().Put(ctx, "hash-barrier", "x")
	if err != nil {
		t.Fatalf("barrier write: %v", err)
	}
	rev := put.Header.Revision
	for _, p := range pc.Procs {
		if _, err := pc.Client(p).Get(ctx, "hash-barrier"); err != nil {
			t.Fatalf("barrier read on %s: %v", p.Name, err)
		}
	}
	hashes := pc.HashKVs(rev)
	var first uint32
	for i, p := range pc.Procs {
		if i == 0 {
			first = hashes[p.Name]
		} else if hashes[p.Name] != first {
			t.Errorf("members diverged: HashKV at %d = %v", rev, hashes)
			return
		}
	}
}

// TestFaults runs every scenario once (the CI suite).
func TestFaults(t *testing.T) {
	sd := seed(t)
	for i, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runScenario(t, sc, sd+uint64(i), false) })
	}
}

// TestLong runs a random schedule of the scenarios for ROBUSTNESS_DURATION
// (skipped when unset): `make robustness-long SEED=7 DURATION=30m`.
func TestLong(t *testing.T) {
	dur, err := time.ParseDuration(os.Getenv("ROBUSTNESS_DURATION"))
	if err != nil || dur <= 0 {
		t.Skip("set ROBUSTNESS_DURATION (e.g. 30m) to run the long random schedule")
	}
	sd := seed(t)
	rnd := rand.New(rand.NewPCG(sd, 0))
	t.Logf("long run: %v, seed %d", dur, sd)
	end := time.Now().Add(dur)
	for i := 0; time.Now().Before(end); i++ {
		sc := scenarios[rnd.IntN(len(scenarios))]
		t.Run(fmt.Sprintf("%03d-%s", i, sc.name), func(t *testing.T) { runScenario(t, sc, sd+uint64(i), false) })
	}
}
