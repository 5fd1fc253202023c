package history

import (
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
