package history

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/anishathalye/porcupine"
)

// refLinearizable decides linearizability of a small history by brute
// force, straight from the definition: pick which unknown-outcome writes
// took effect, then search every order of the chosen operations that
// respects real time, replaying a plain map-based store.
func refLinearizable(ops []porcupine.Operation) bool {
	var known, unknown []int
	for i, op := range ops {
		if op.Output.(Response).Unknown {
			unknown = append(unknown, i)
		} else {
			known = append(known, i)
		}
	}
	for mask := 0; mask < 1<<len(unknown); mask++ {
		var chosen []int
		chosen = append(chosen, known...)
		for b, i := range unknown {
			if mask&(1<<b) != 0 {
				chosen = append(chosen, i)
			}
		}
		if refSearch(ops, chosen, make([]bool, len(chosen)), 1, map[string]simCell{}) {
			return true
		}
	}
	return false
}

func refSearch(ops []porcupine.Operation, chosen []int, placed []bool, rev int64, store map[string]simCell) bool {
	done := true
	for ci, i := range chosen {
		if placed[ci] {
			continue
		}
		done = false
		op := ops[i]
		// Every known operation that returned before this call must come first.
		ready := true
		for cj, j := range chosen {
			if !placed[cj] && cj != ci && !ops[j].Output.(Response).Unknown && ops[j].Return < op.Call {
				ready = false
				break
			}
		}
		if !ready {
			continue
		}
		nrev, nstore, ok := refStep(op.Input.(Request), op.Output.(Response), rev, store)
		if !ok {
			continue
		}
		placed[ci] = true
		found := refSearch(ops, chosen, placed, nrev, nstore)
		placed[ci] = false
		if found {
			return true
		}
	}
	return done
}

func refStep(req Request, resp Response, rev int64, store map[string]simCell) (int64, map[string]simCell, bool) {
	cur := store[req.Key]
	write := func(c simCell) map[string]simCell {
		n := make(map[string]simCell, len(store)+1)
		for k, v := range store {
			n[k] = v
		}
		n[req.Key] = c
		return n
	}
	var nrev = rev
	var nstore = store
	switch req.Kind {
	case OpGet:
		if resp.Exists != cur.exists || (cur.exists && (resp.Value != cur.value || resp.ModRev != cur.modRev)) {
			return 0, nil, false
		}
	case OpPut:
		nrev++
		nstore = write(simCell{value: req.Value, exists: true, modRev: nrev})
		if !resp.Unknown && resp.Rev != nrev {
			return 0, nil, false
		}
	case OpDelete:
		if cur.exists {
			nrev++
			nstore = write(simCell{})
		}
		if !resp.Unknown && (resp.Deleted == 1) != cur.exists {
			return 0, nil, false
		}
	case OpCAS:
		holds := (req.Expect == "" && !cur.exists) || (cur.exists && cur.value == req.Expect)
		if holds {
			nrev++
			nstore = write(simCell{value: req.Value, exists: true, modRev: nrev})
		}
		if !resp.Unknown && resp.Succeeded != holds {
			return 0, nil, false
		}
	}
	if !resp.Unknown && resp.Rev != nrev {
		return 0, nil, false
	}
	return nrev, nstore, true
}

// smallHistory makes a history of a few operations: a simulated
// linearizable one (duplicate values, many unknown outcomes), then, half
// of the time, one field of one response corrupted.
func smallHistory(rnd *rand.Rand) []porcupine.Operation {
	cfg := simConfig{clients: 1 + rnd.IntN(3), keys: 1 + rnd.IntN(2), ops: 2 + rnd.IntN(5),
		unknownProb: 0.35, readErrProb: 0.1, valuePool: 1 + rnd.IntN(3)}
	ops, _ := simulate(rnd.Uint64(), cfg)
	var healthy []int
	for i, op := range ops {
		if !op.unknown && !op.readFailed {
			healthy = append(healthy, i)
		}
	}
	if len(healthy) > 0 && rnd.IntN(2) == 0 {
		op := &ops[healthy[rnd.IntN(len(healthy))]]
		switch rnd.IntN(7) {
		case 6: // move the interval: a read may now precede what it saw
			shift := rnd.Int64N(401) - 200
			op.call = max(0, op.call+shift)
			op.ret = max(op.call, op.ret+shift)
		case 0:
			op.resp.Rev += int64(1 - 2*rnd.IntN(2))
		case 1:
			op.resp.Exists = !op.resp.Exists
			op.resp.ModRev = max(op.resp.ModRev, 1+rnd.Int64N(3))
		case 2:
			op.resp.Value = []string{"v0", "v1", "v2"}[rnd.IntN(3)]
		case 3:
			op.resp.ModRev += int64(1 - 2*rnd.IntN(2))
		case 4:
			op.resp.Succeeded = !op.resp.Succeeded
		case 5:
			op.resp.Deleted = 1 - op.resp.Deleted
		}
	}
	return record(ops)
}

func compareWithReference(t *testing.T, hist []porcupine.Operation) (ok, checked bool) {
	t.Helper()
	res, err := CheckWithOptions(hist, Options{NoVisualization: true})
	if err != nil {
		return false, false // a corrupted revision of 0: rejected as invalid
	}
	want := refLinearizable(hist)
	if res.Ok() != want {
		for _, op := range hist {
			t.Logf("  c%d [%d, %d] %s", op.ClientId, op.Call, op.Return, DescribeOperation(op.Input.(Request), op.Output.(Response)))
		}
		t.Fatalf("checker says %v, brute force says linearizable=%v", res, want)
	}
	return want, true
}

func TestMatchesReference(t *testing.T) {
	seed := testSeed(t, 7)
	rnd := rand.New(rand.NewPCG(seed, 0))
	var ok, bad int
	for range 3000 {
		lin, checked := compareWithReference(t, smallHistory(rnd))
		switch {
		case !checked:
		case lin:
			ok++
		default:
			bad++
		}
	}
	t.Logf("%d linearizable and %d illegal histories agree with brute force", ok, bad)
	if ok < 500 || bad < 300 {
		t.Fatalf("generator is unbalanced: %d ok, %d illegal", ok, bad)
	}
}

func FuzzMatchesReference(f *testing.F) {
	for i := range 8 {
		f.Add(uint64(i) * 7919)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], seed)
		rnd := rand.New(rand.NewPCG(seed, binary.LittleEndian.Uint64(b[:])^0xabcdef))
		compareWithReference(t, smallHistory(rnd))
	})
}
