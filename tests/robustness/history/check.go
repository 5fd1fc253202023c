package history

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// ErrInvalidHistory is returned (wrapped) by Check for a history it cannot
// interpret: foreign Input/Output types, a return before a call, a
// successful operation without a revision.
var ErrInvalidHistory = errors.New("history: invalid history")

// Options tunes CheckWithOptions. The zero value is strict checking with no
// timeout and visualizations in a fresh directory under os.TempDir.
type Options struct {
	// Timeout bounds the search; 0 means none. A search that runs out of
	// time returns porcupine.Unknown.
	Timeout time.Duration
	// OtherWriters declares that clients outside the history write other
	// keys of the same store, so the global revision may advance by more
	// than the recorded writes explain. Revisions are then only required to
	// be consistent and monotonic, not gap-free.
	OtherWriters bool
	// UnknownWindow, when positive, bounds how late a write with an unknown
	// outcome may take effect: no later than UnknownWindow after the client
	// saw its error (Response.ErrAt). Zero means no bound (exact for any
	// server, but the search grows quickly with the number of unknown
	// outcomes that no read resolves). Choose it above the longest time a
	// proposal can stay in flight (election timeout plus request timeout).
	UnknownWindow time.Duration
	// InitialRevision is the store revision before the first recorded
	// operation, when every recorded key is absent. 0 means 1: an empty
	// Cairn (or etcd) store is at revision 1 and its first write makes 2.
	// With OtherWriters it is only a lower bound.
	InitialRevision int64
	// VisualizationDir receives history-<n>.html when the history is
	// Illegal. Empty means a new directory made with os.MkdirTemp.
	VisualizationDir string
	// NoVisualization skips the second, verbose search that an Illegal
	// verdict otherwise triggers.
	NoVisualization bool
	// Observed, when set, is the complete write log of the recorded keys
	// (what a watch from the first revision delivered). It settles unknown
	// outcomes that no read settles; see Observation.
	Observed *Observation
}

// Observation is every write to the recorded keys that took effect before
// Until, in revision order: a watch on those keys from the first revision,
// read up to a write acknowledged at Until. With it, an unknown-outcome
// write is settled before the search:
//   - a put or CAS whose (key, value) no other write produces and that the
//     log holds was applied at the logged revision, before the log's first
//     observer saw it;
//   - a put or CAS absent from the log, and a delete on a key whose logged
//     deletions the acknowledged deletes all explain, had no effect (or, for
//     a delete, one that changes nothing), provided that UnknownWindow is set
//     and its window closed before Until; such a write is dropped.
//
// The log is evidence from the system under test, so check it on its own
// (order, no gaps, replay equals the final state) before passing it here;
// a log that contradicts the reads makes the history Illegal, not Ok.
type Observation struct {
	Events []ObservedEvent
	Until  time.Duration // on the Recorder's clock
}

// ObservedEvent is one logged write: a put of Value, or a deletion.
type ObservedEvent struct {
	Key, Value string
	Delete     bool
	Rev        int64
	SeenAt     time.Duration // when an observer first saw it (Recorder clock)
}

// Result is the verdict of a check.
type Result struct {
	Outcome porcupine.CheckResult // porcupine.Ok, Illegal or Unknown (timeout)
	Elapsed time.Duration         // time spent in the linearizability search
	// Operations is the number of operations searched: the input minus
	// failed reads.
	Operations int
	// Unknown counts writes with an unknown outcome left to the search;
	// Resolved counts those a read or the Observation proved applied, and
	// Dropped those the Observation proved had no effect.
	Unknown, Resolved, Dropped int
	// VisualizationPath is the porcupine HTML rendering of an Illegal
	// history (open it in a browser), or empty.
	VisualizationPath string
	// VisualizationErr reports a failure to write the visualization.
	VisualizationErr error
}

// Ok reports whether the history was found linearizable.
func (r Result) Ok() bool { return r.Outcome == porcupine.Ok }

func (r Result) String() string {
	s := fmt.Sprintf("%s: %d ops (%d unknown outcomes; %d proved applied, %d proved without effect) in %v",
		r.Outcome, r.Operations, r.Unknown, r.Resolved, r.Dropped, r.Elapsed.Round(time.Millisecond))
	if r.VisualizationPath != "" {
		s += ", visualization " + r.VisualizationPath
	}
	return s
}

// Check checks ops (as produced by Recorder.Operations) for
// linearizability against the etcd KV model with strict revisions.
func Check(ops []porcupine.Operation, timeout time.Duration) (Result, error) {
	return CheckWithOptions(ops, Options{Timeout: timeout})
}

// CheckWithOptions is Check with every knob.
func CheckWithOptions(ops []porcupine.Operation, opts Options) (Result, error) {
	prepared, m, res, err := prepare(ops, opts.UnknownWindow, opts.Observed)
	if err != nil {
		return Result{}, err
	}
	m.gaps = opts.OtherWriters
	m.initRev = opts.InitialRevision
	if m.initRev == 0 {
		m.initRev = 1
	}
	nm := m.nondeterministic()
	model := nm.ToModel()
	start := time.Now()
	res.Outcome = porcupine.CheckOperationsTimeout(model, prepared, opts.Timeout)
	res.Elapsed = time.Since(start)
	if res.Outcome != porcupine.Illegal || opts.NoVisualization {
		return res, nil
	}
	_, info := porcupine.CheckOperationsVerbose(model, prepared, opts.Timeout)
	res.VisualizationPath, res.VisualizationErr = writeVisualization(model, info, opts.VisualizationDir)
	return res, nil
}

func writeVisualization(model porcupine.Model, info porcupine.LinearizationInfo, dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "cairn-history-")
		if err != nil {
			return "", err
		}
		dir = d
	}
	f, err := os.CreateTemp(dir, "history-*.html")
	if err != nil {
		return "", err
	}
	if err := porcupine.Visualize(model, info, f); err != nil {
		f.Close()
		return f.Name(), err
	}
	return filepath.Clean(f.Name()), f.Close()
}

type keyValue struct{ key, value string }

// prepare validates ops and turns them into the model's interned form:
//   - failed reads (unknown-outcome gets) are dropped;
//   - an unknown-outcome write becomes a point [call, call]: it enters the
//     model's set of writes that may take effect at any later moment;
//   - an unknown-outcome put or CAS whose (key, value) no other write
//     produces and that some read returned is resolved: it was applied at
//     the mod revision the read saw, before that read returned;
//   - an unknown-outcome write that obs settles is resolved or dropped (see
//     Observation);
//   - values that no read returns and no CAS expects (for their key)
//     collapse into one placeholder, which keeps equivalent states equal.
func prepare(ops []porcupine.Operation, window time.Duration, obs *Observation) ([]porcupine.Operation, *kvModel, Result, error) {
	type rec struct {
		op   porcupine.Operation
		req  Request
		resp Response
	}
	recs := make([]rec, 0, len(ops))
	for i, op := range ops {
		req, ok1 := op.Input.(Request)
		resp, ok2 := op.Output.(Response)
		if !ok1 || !ok2 {
			return nil, nil, Result{}, fmt.Errorf("%w: operation %d: Input %T, Output %T (want Request, Response)",
				ErrInvalidHistory, i, op.Input, op.Output)
		}
		if req.Kind < OpGet || req.Kind > OpCAS {
			return nil, nil, Result{}, fmt.Errorf("%w: operation %d: kind %d", ErrInvalidHistory, i, req.Kind)
		}
		if op.ClientId < 0 {
			return nil, nil, Result{}, fmt.Errorf("%w: operation %d: client %d", ErrInvalidHistory, i, op.ClientId)
		}
		if resp.Unknown {
			if req.Kind == OpGet {
				continue
			}
		} else {
			if op.Return < op.Call {
				return nil, nil, Result{}, fmt.Errorf("%w: operation %d (%s): returns at %d before its call at %d",
					ErrInvalidHistory, i, DescribeOperation(req, resp), op.Return, op.Call)
			}
			if resp.Rev <= 0 || (req.Kind == OpGet && resp.Exists && resp.ModRev <= 0) || resp.Deleted < 0 || resp.Deleted > 1 {
				return nil, nil, Result{}, fmt.Errorf("%w: operation %d (%s): missing or impossible revision or count",
					ErrInvalidHistory, i, DescribeOperation(req, resp))
			}
		}
		recs = append(recs, rec{op, req, resp})
	}

	// Which (key, value) pairs are ever compared against, and who writes them.
	observed := map[keyValue]bool{}
	writers := map[keyValue]int{}
	type observation struct {
		modRev int64
		ret    int64
	}
	firstSeen := map[keyValue]observation{}
	for _, r := range recs {
		switch r.req.Kind {
		case OpGet:
			if r.resp.Exists {
				kv := keyValue{r.req.Key, r.resp.Value}
				observed[kv] = true
				if o, ok := firstSeen[kv]; !ok || r.op.Return < o.ret {
					firstSeen[kv] = observation{r.resp.ModRev, r.op.Return}
				}
			}
		case OpCAS:
			if r.req.Expect != "" {
				observed[keyValue{r.req.Key, r.req.Expect}] = true
			}
			writers[keyValue{r.req.Key, r.req.Value}]++
		case OpPut:
			writers[keyValue{r.req.Key, r.req.Value}]++
		}
	}

	settle := newSettler(obs, window)
	for _, r := range recs {
		if r.resp.Unknown {
			continue
		}
		settle.acknowledged(r.op.Call, r.op.Return, r.resp.Rev)
		if r.req.Kind == OpDelete && r.resp.Deleted == 1 {
			settle.explained[keyRev{r.req.Key, r.resp.Rev}] = true
		}
	}
	settle.sortBounds()

	m := &kvModel{values: []string{"<unobserved>"}}
	keyID := map[string]int32{}
	valID := map[string]int32{}
	shapeID := map[shape]int32{}
	internKey := func(k string) int32 {
		id, ok := keyID[k]
		if !ok {
			id = int32(len(m.keys))
			keyID[k] = id
			m.keys = append(m.keys, k)
		}
		return id
	}
	internVal := func(k, v string) int32 {
		if !observed[keyValue{k, v}] {
			return valUnobserved
		}
		id, ok := valID[v]
		if !ok {
			id = int32(len(m.values))
			valID[v] = id
			m.values = append(m.values, v)
		}
		return id
	}
	// Intern keys in sorted order so that state descriptions are stable.
	var keys []string
	for _, r := range recs {
		keys = append(keys, r.req.Key)
	}
	slices.Sort(keys)
	for _, k := range slices.Compact(keys) {
		internKey(k)
	}

	res := Result{Operations: len(recs)}
	out := make([]porcupine.Operation, 0, len(recs))
	for _, r := range recs {
		in := &input{kind: r.req.Kind, key: keyID[r.req.Key], val: valAbsent, expect: valAbsent, req: r.req}
		switch r.req.Kind {
		case OpPut:
			in.val = internVal(r.req.Key, r.req.Value)
		case OpCAS:
			in.val = internVal(r.req.Key, r.req.Value)
			if r.req.Expect != "" {
				in.expect = internVal(r.req.Key, r.req.Expect)
			}
		}
		o := &output{unknown: r.resp.Unknown, exists: r.resp.Exists, val: valAbsent, modRev: r.resp.ModRev,
			rev: r.resp.Rev, deleted: r.resp.Deleted, succeeded: r.resp.Succeeded, resp: r.resp}
		if r.req.Kind == OpGet && r.resp.Exists {
			o.val = internVal(r.req.Key, r.resp.Value)
		}
		op := porcupine.Operation{ClientId: r.op.ClientId, Input: in, Call: r.op.Call, Output: o, Return: r.op.Return}
		if o.unknown {
			kv := keyValue{r.req.Key, r.req.Value}
			seen, readSaw := firstSeen[kv]
			unique := r.req.Kind != OpDelete && writers[kv] == 1
			logged, inLog := settle.logged(kv)
			switch {
			case unique && inLog:
				// Resolved: the log holds the value only this write produces.
				*o = output{rev: logged.Rev, succeeded: true, resolved: true, resp: r.resp}
				op.Return = int64(logged.SeenAt)
				if readSaw {
					op.Return = min(op.Return, seen.ret)
				}
				op.Return = max(op.Return, op.Call)
				res.Resolved++
			case settle.withoutEffect(r.req, r.resp, r.op.Call, unique):
				// Before the read rule: a read of a write the log says
				// never happened must stay unexplained (Illegal).
				res.Dropped++
				continue
			case unique && readSaw:
				// Resolved: a read saw the value only this write produces.
				*o = output{rev: seen.modRev, succeeded: true, resolved: true, resp: r.resp}
				op.Return = max(seen.ret, op.Call)
				res.Resolved++
			default:
				sh := shape{kind: r.req.Kind, key: in.key, val: in.val, expect: in.expect}
				if r.req.Kind == OpDelete {
					sh.val, sh.expect = valAbsent, valAbsent
				}
				id, ok := shapeID[sh]
				if !ok {
					id = int32(len(m.shapes))
					shapeID[sh] = id
					m.shapes = append(m.shapes, sh)
					m.shapeH = append(m.shapeH, splitmix(uint64(id)*0x2545f4914f6cdd1d+1))
				}
				in.shape = id
				op.Return = op.Call // see the package doc: a point, effect deferred
				res.Unknown++
				if window > 0 {
					at := max(op.Call, int64(r.resp.ErrAt)) + int64(window)
					out = append(out, porcupine.Operation{ClientId: op.ClientId,
						Input: &input{kind: opExpire, shape: id, req: r.req}, Call: at,
						Output: &output{resp: r.resp}, Return: at})
				}
			}
		}
		out = append(out, op)
	}
	res.Operations -= res.Dropped
	return out, m, res, nil
}

type keyRev struct {
	key string
	rev int64
}

// settler answers what an Observation proves about unknown outcomes.
type settler struct {
	obs       *Observation
	window    time.Duration
	byValue   map[keyValue]ObservedEvent
	ambiguous map[keyValue]bool // (key, value) logged more than once
	deletions map[string][]ObservedEvent
	explained map[keyRev]bool // deletions an acknowledged delete made
	// Acknowledged operations as (time, revision) bounds: byReturn sorted
	// by return time with the running maximum revision, byCall sorted by
	// call time with the minimum revision of it and every later call.
	byReturn, byCall []timeRev
}

type timeRev struct{ at, rev int64 }

// acknowledged adds a known operation: its effect (or its read) lies
// between call and ret, at revision rev.
func (s *settler) acknowledged(call, ret, rev int64) {
	s.byReturn = append(s.byReturn, timeRev{ret, rev})
	s.byCall = append(s.byCall, timeRev{call, rev})
}

func (s *settler) sortBounds() {
	slices.SortFunc(s.byReturn, func(a, b timeRev) int { return cmp.Compare(a.at, b.at) })
	for i := 1; i < len(s.byReturn); i++ {
		s.byReturn[i].rev = max(s.byReturn[i].rev, s.byReturn[i-1].rev)
	}
	slices.SortFunc(s.byCall, func(a, b timeRev) int { return cmp.Compare(a.at, b.at) })
	for i := len(s.byCall) - 2; i >= 0; i-- {
		s.byCall[i].rev = min(s.byCall[i].rev, s.byCall[i+1].rev)
	}
}

// revisionsBetween bounds the revision of a write that took effect between
// times from and to: above lo, the largest revision an operation reported
// before returning by from, and at most hi, the smallest revision an
// operation called at or after to reported.
func (s *settler) revisionsBetween(from, to int64) (lo, hi int64) {
	lo, hi = 0, math.MaxInt64
	if i, _ := slices.BinarySearchFunc(s.byReturn, from+1, func(e timeRev, t int64) int { return cmp.Compare(e.at, t) }); i > 0 {
		lo = s.byReturn[i-1].rev
	}
	if i, _ := slices.BinarySearchFunc(s.byCall, to, func(e timeRev, t int64) int { return cmp.Compare(e.at, t) }); i < len(s.byCall) {
		hi = s.byCall[i].rev
	}
	return lo, hi
}

func newSettler(obs *Observation, window time.Duration) *settler {
	s := &settler{obs: obs, window: window, byValue: map[keyValue]ObservedEvent{},
		ambiguous: map[keyValue]bool{}, deletions: map[string][]ObservedEvent{}, explained: map[keyRev]bool{}}
	if obs == nil {
		return s
	}
	for _, ev := range obs.Events {
		if ev.Delete {
			s.deletions[ev.Key] = append(s.deletions[ev.Key], ev)
			continue
		}
		kv := keyValue{ev.Key, ev.Value}
		if _, dup := s.byValue[kv]; dup {
			s.ambiguous[kv] = true
		}
		s.byValue[kv] = ev
	}
	return s
}

// logged returns the log's only write of kv.
func (s *settler) logged(kv keyValue) (ObservedEvent, bool) {
	ev, ok := s.byValue[kv]
	return ev, ok && !s.ambiguous[kv]
}

// withoutEffect reports whether the log proves that an unknown-outcome
// write changed nothing: its window closed before the log ends, and either
// it is a unique put or CAS the log lacks, or it is a delete and every
// logged deletion of its key that it could have made (seen after its call,
// at a revision the acknowledged operations allow between its call and the
// end of its window) was made by an acknowledged delete.
func (s *settler) withoutEffect(req Request, resp Response, call int64, unique bool) bool {
	if s.obs == nil || s.window <= 0 || resp.ErrAt+s.window > s.obs.Until {
		return false
	}
	switch req.Kind {
	case OpPut, OpCAS:
		_, present := s.byValue[keyValue{req.Key, req.Value}]
		return unique && !present
	case OpDelete:
		end := int64(max(resp.ErrAt, time.Duration(call)) + s.window)
		lo, hi := s.revisionsBetween(call, end)
		for _, ev := range s.deletions[req.Key] {
			possible := int64(ev.SeenAt) >= call && ev.Rev > lo && ev.Rev <= hi
			if possible && !s.explained[keyRev{req.Key, ev.Rev}] {
				return false
			}
		}
		return true
	}
	return false
}
