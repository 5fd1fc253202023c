package history

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// testSeed returns the seed of a randomized test: HISTORY_SEED when set,
// otherwise def. It is logged so that a failure can be replayed.
func testSeed(t testing.TB, def uint64) uint64 {
	seed := def
	if s := os.Getenv("HISTORY_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("HISTORY_SEED=%q: %v", s, err)
		}
		seed = v
	}
	t.Logf("seed %d (override with HISTORY_SEED)", seed)
	return seed
}

type simConfig struct {
	clients, keys, ops int
	unknownProb        float64 // probability that a write's outcome is unknown
	readErrProb        float64 // probability that a read fails
	valuePool          int     // 0: unique values; n: values drawn from n names
	otherWriters       bool    // unrecorded writes advance the revision
}

// simOp is one client operation of a simulated linearizable store: it takes
// effect at lin (if applied), the client sees its result at ret.
type simOp struct {
	client     int
	req        Request
	resp       Response
	call, lin  int64
	ret        int64
	unknown    bool
	applied    bool
	readFailed bool
}

type simCell struct {
	value  string
	exists bool
	modRev int64
	at     int64 // when the write that made this state took effect
}

// simulate runs a seeded simulation of clients against an in-memory store
// that applies every operation atomically at a random point inside its
// interval, so the history it returns is linearizable by construction.
// Writes with an unknown outcome report an error at a random moment that
// may come before their effect (a client timeout) or they never apply.
func simulate(seed uint64, cfg simConfig) ([]simOp, map[string][]simCell) {
	rnd := rand.New(rand.NewPCG(seed, 0x5eed))
	keys := make([]string, cfg.keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	clock := make([]int64, cfg.clients)
	for i := range clock {
		clock[i] = rnd.Int64N(50)
	}
	written := map[string][]string{}
	seq := make([]int, cfg.clients)
	ops := make([]simOp, 0, cfg.ops)
	for len(ops) < cfg.ops {
		c := 0
		for i := range clock {
			if clock[i] < clock[c] {
				c = i
			}
		}
		op := simOp{client: c}
		op.call = clock[c] + rnd.Int64N(30)
		op.lin = op.call + 1 + rnd.Int64N(100)
		op.ret = op.lin + 1 + rnd.Int64N(100)
		key := keys[rnd.IntN(len(keys))]
		value := func() string {
			seq[c]++
			if cfg.valuePool > 0 {
				return fmt.Sprintf("v%d", rnd.IntN(cfg.valuePool))
			}
			return fmt.Sprintf("c%d-%d", c, seq[c])
		}
		switch n := rnd.IntN(100); {
		case n < 45:
			op.req = Request{Kind: OpGet, Key: key}
			op.readFailed = rnd.Float64() < cfg.readErrProb
		case n < 70:
			op.req = Request{Kind: OpPut, Key: key, Value: value()}
		case n < 87:
			expect := ""
			if w := written[key]; len(w) > 0 && rnd.IntN(5) > 0 {
				expect = w[max(0, len(w)-1-rnd.IntN(3))]
			}
			op.req = Request{Kind: OpCAS, Key: key, Value: value(), Expect: expect}
		default:
			op.req = Request{Kind: OpDelete, Key: key}
		}
		if op.req.Kind == OpPut || op.req.Kind == OpCAS {
			written[key] = append(written[key], op.req.Value)
		}
		op.applied = true
		if op.req.Kind != OpGet && rnd.Float64() < cfg.unknownProb {
			op.unknown = true
			op.applied = rnd.IntN(2) == 0
			op.ret = op.call + 1 + rnd.Int64N(150) // may precede lin
		}
		clock[c] = op.ret
		ops = append(ops, op)
	}

	// Apply in linearization order.
	order := make([]int, len(ops))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(ops[a].lin, ops[b].lin) })
	rev := int64(1) // an empty store
	store := map[string]simCell{}
	timeline := map[string][]simCell{} // per key, every state it had
	set := func(k string, c simCell) {
		store[k] = c
		timeline[k] = append(timeline[k], c)
	}
	for _, i := range order {
		op := &ops[i]
		if !op.applied || op.readFailed {
			continue
		}
		now := op.lin
		if cfg.otherWriters && rnd.IntN(5) == 0 {
			rev += 1 + rnd.Int64N(3)
		}
		cur := store[op.req.Key]
		switch op.req.Kind {
		case OpGet:
			op.resp = Response{Value: cur.value, Exists: cur.exists, ModRev: cur.modRev}
		case OpPut:
			rev++
			set(op.req.Key, simCell{op.req.Value, true, rev, now})
		case OpDelete:
			if cur.exists {
				rev++
				set(op.req.Key, simCell{modRev: rev, at: now})
				op.resp.Deleted = 1
			}
		case OpCAS:
			if (op.req.Expect == "" && !cur.exists) || (cur.exists && cur.value == op.req.Expect) {
				rev++
				set(op.req.Key, simCell{op.req.Value, true, rev, now})
				op.resp.Succeeded = true
			}
		}
		op.resp.Rev = rev
	}
	return ops, timeline
}

// record feeds simulated operations to a Recorder and returns its history.
func record(ops []simOp) []porcupine.Operation {
	r := NewRecorder()
	errTimeout := fmt.Errorf("simulated: %w", context.DeadlineExceeded)
	for _, op := range ops {
		var err error
		if op.unknown || op.readFailed {
			err = errTimeout
		}
		call, ret := time.Duration(op.call), time.Duration(op.ret)
		switch op.req.Kind {
		case OpGet:
			r.Get(op.client, op.req.Key, call, ret,
				GetResult{Value: op.resp.Value, Exists: op.resp.Exists, ModRev: op.resp.ModRev, Rev: op.resp.Rev}, err)
		case OpPut:
			r.Put(op.client, op.req.Key, op.req.Value, call, ret, op.resp.Rev, err)
		case OpDelete:
			r.Delete(op.client, op.req.Key, call, ret, op.resp.Deleted, op.resp.Rev, err)
		case OpCAS:
			r.CAS(op.client, op.req.Key, op.req.Expect, op.req.Value, call, ret, op.resp.Succeeded, op.resp.Rev, err)
		}
	}
	return r.Operations()
}

// makeStale turns one successful read into a stale one: it returns the
// state of the store just before the write that produced the value it saw,
// although that write had returned before the read was called.
func makeStale(ops []simOp, timeline map[string][]simCell) (int, bool) {
	writerOf := map[int64]int{} // revision -> index of the known write that made it
	for i, op := range ops {
		if !op.unknown && op.req.Kind != OpGet && op.resp.Rev > 0 {
			writerOf[op.resp.Rev] = i
		}
	}
	for k := range ops {
		i := (len(ops)/2 + k) % len(ops) // prefer the middle of the history
		r := &ops[i]
		if r.req.Kind != OpGet || r.readFailed || !r.resp.Exists {
			continue
		}
		w, ok := writerOf[r.resp.ModRev]
		if !ok || ops[w].ret >= r.call {
			continue
		}
		// The key's state before revision ModRev.
		var prev simCell
		for _, c := range timeline[r.req.Key] {
			if c.modRev < r.resp.ModRev {
				prev = c
			}
		}
		if !prev.exists || prev.value == r.resp.Value {
			continue
		}
		r.resp = Response{Value: prev.value, Exists: true, ModRev: prev.modRev, Rev: r.resp.ModRev - 1}
		return i, true
	}
	return 0, false
}

// observe returns the simulated store's write log, as a watch that sees
// each write up to 20 time units after it took effect would deliver it,
// read to a moment after every simulated operation and window.
func observe(seed uint64, ops []simOp, timeline map[string][]simCell, window int64) *Observation {
	rnd := rand.New(rand.NewPCG(seed, 0x0b5))
	obs := &Observation{}
	var end int64
	for _, op := range ops {
		end = max(end, op.ret, op.lin)
	}
	obs.Until = time.Duration(end + window + 1)
	for key, cells := range timeline {
		for _, c := range cells {
			obs.Events = append(obs.Events, ObservedEvent{Key: key, Value: c.value, Delete: !c.exists,
				Rev: c.modRev, SeenAt: time.Duration(c.at + rnd.Int64N(20))})
		}
	}
	slices.SortFunc(obs.Events, func(a, b ObservedEvent) int { return cmp.Compare(a.Rev, b.Rev) })
	return obs
}
