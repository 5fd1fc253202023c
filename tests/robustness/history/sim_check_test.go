package history

import (
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// bigSim is the size the robustness suite produces: a few thousand
// operations from a dozen clients on a handful of hot keys.
var bigSim = simConfig{clients: 12, keys: 4, ops: 2000, unknownProb: 0.03, readErrProb: 0.03}

// simWindow bounds how late a simulated unknown write takes effect after
// its client gave up (at most 99 time units later).
const simWindow = 300

func checkSim(t *testing.T, ops []simOp, opts Options, want porcupine.CheckResult) Result {
	t.Helper()
	opts.Timeout = 20 * time.Second
	opts.VisualizationDir = t.TempDir()
	res, err := CheckWithOptions(record(ops), opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != want {
		t.Fatalf("want %s, got %v", want, res)
	}
	return res
}

func TestRandomizedLinearizable(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  simConfig
		opts Options
	}{
		{"window", bigSim, Options{UnknownWindow: simWindow}},
		{"other writers", func() simConfig { c := bigSim; c.ops = 1000; c.otherWriters = true; return c }(),
			Options{UnknownWindow: simWindow, OtherWriters: true}},
		{"no window", func() simConfig { c := bigSim; c.ops = 1000; c.unknownProb = 0.02; return c }(), Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := testSeed(t, 1)
			ops, timeline := simulate(seed, tc.cfg)
			res := checkSim(t, ops, tc.opts, porcupine.Ok)
			t.Logf("linearizable history: %v", res)

			i, ok := makeStale(ops, timeline)
			if !ok {
				t.Fatal("no read to make stale")
			}
			t.Logf("made read %d stale: %s", i, DescribeOperation(ops[i].req, ops[i].resp))
			res = checkSim(t, ops, tc.opts, porcupine.Illegal)
			t.Logf("stale history: %v", res)
		})
	}
}

// TestObservationSettlesUnknowns: a history with many unknown outcomes and
// unrecorded writers is slow to search; the store's write log settles
// almost all of them, and a stale read or a log that hides an applied
// write is still found.
func TestObservationSettlesUnknowns(t *testing.T) {
	seed := testSeed(t, 3)
	cfg := bigSim
	cfg.unknownProb, cfg.otherWriters = 0.25, true
	ops, timeline := simulate(seed, cfg)
	opts := Options{UnknownWindow: simWindow, OtherWriters: true, Observed: observe(seed, ops, timeline, simWindow)}
	res := checkSim(t, ops, opts, porcupine.Ok)
	t.Logf("with the write log: %v", res)
	// Only deletes can stay unsettled: the log cannot tell which of several
	// unknown deletes of a key made a deletion.
	unsettledMax := 0
	for _, op := range ops {
		if op.unknown && op.req.Kind == OpDelete {
			unsettledMax++
		}
	}
	if res.Resolved == 0 || res.Dropped == 0 || res.Unknown > unsettledMax/2 {
		t.Fatalf("the log settled too little (%d unknown deletes): %v", unsettledMax, res)
	}

	// Hide from the log an applied unknown write that a read later saw:
	// the checker drops the write, and the read is then unexplained.
	hidden := false
	for _, w := range ops {
		if !w.unknown || !w.applied || w.req.Kind == OpDelete || w.req.Kind == OpCAS && !w.resp.Succeeded {
			continue
		}
		for _, r := range ops {
			if r.req.Kind == OpGet && !r.readFailed && r.resp.Exists && r.req.Key == w.req.Key && r.resp.Value == w.req.Value {
				lying := *opts.Observed
				lying.Events = slices.DeleteFunc(slices.Clone(lying.Events), func(ev ObservedEvent) bool {
					return ev.Key == w.req.Key && ev.Value == w.req.Value
				})
				lyingOpts := opts
				lyingOpts.Observed = &lying
				res := checkSim(t, ops, lyingOpts, porcupine.Illegal)
				t.Logf("log without %s: %v", DescribeOperation(w.req, w.resp), res)
				hidden = true
				break
			}
		}
		if hidden {
			break
		}
	}
	if !hidden {
		t.Fatal("no applied unknown write that a read saw")
	}

	i, ok := makeStale(ops, timeline)
	if !ok {
		t.Fatal("no read to make stale")
	}
	t.Logf("made read %d stale: %s", i, DescribeOperation(ops[i].req, ops[i].resp))
	res = checkSim(t, ops, opts, porcupine.Illegal)
	t.Logf("stale history: %v", res)
}

func BenchmarkCheck2000(b *testing.B) {
	ops, _ := simulate(1, bigSim)
	hist := record(ops)
	for b.Loop() {
		res, err := CheckWithOptions(hist, Options{NoVisualization: true, UnknownWindow: simWindow})
		if err != nil || !res.Ok() {
			b.Fatal(res, err)
		}
	}
}
