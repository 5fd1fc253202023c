package history

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/anishathalye/porcupine"
)

// The model works on interned data: keys and values are small integers so
// that a state is a few flat slices, cheap to copy, hash and compare.
const (
	valAbsent     int32 = -1 // the key does not exist
	valUnobserved int32 = 0  // a value that no read returns and no CAS expects
)

// cell is one key of the store.
type cell struct {
	val    int32
	modRev int64 // the exact mod revision, or its upper bound when lo > 0
	lo     int64 // when > 0 the mod revision is only known to be in [lo, modRev]
}

// shape is an unknown-outcome write with its key and values interned. Two
// pending writes of the same shape have the same effect, so the pending set
// is a multiset of shapes rather than of operations.
type shape struct {
	kind        OpKind
	key         int32
	val, expect int32
}

// state is immutable once built; transitions copy the slices they change.
type state struct {
	rev      int64
	cells    []cell  // indexed by key id
	pending  []int32 // sorted multiset of shape ids that may still take effect
	cellHash uint64  // xor of cellHashOf over cells
	pendHash uint64  // sum of shape hashes over pending
}

// opExpire is the internal kind of a synthetic operation that ends the
// window in which an unknown-outcome write may still take effect.
const opExpire OpKind = 100

// input and output are what the checker sees as porcupine's Input and Output.
type input struct {
	kind        OpKind
	key         int32
	val, expect int32
	shape       int32 // for unknown outcomes
	req         Request
}

type output struct {
	unknown   bool
	exists    bool
	val       int32
	modRev    int64
	rev       int64
	deleted   int64
	succeeded bool
	resolved  bool // an unknown outcome resolved from a read that observed it
	resp      Response
}

// kvModel holds the interning tables of one check.
type kvModel struct {
	keys    []string
	values  []string // by value id; values[0] is the unobserved placeholder
	shapes  []shape
	shapeH  []uint64
	gaps    bool  // writers outside the history may advance the revision
	initRev int64 // revision of the initial, empty state
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func cellHashOf(key int, c cell) uint64 {
	return splitmix(uint64(key)<<32 ^ uint64(uint32(c.val)) ^ splitmix(uint64(c.modRev)^splitmix(uint64(c.lo))))
}

func (s *state) hash() uint64 { return splitmix(uint64(s.rev)) ^ s.cellHash ^ s.pendHash }

func (s *state) equal(o *state) bool {
	return s == o || (s.rev == o.rev && s.cellHash == o.cellHash && s.pendHash == o.pendHash &&
		slices.Equal(s.cells, o.cells) && slices.Equal(s.pending, o.pending))
}

func (m *kvModel) initState() *state {
	s := &state{rev: m.initRev, cells: make([]cell, len(m.keys))}
	for i := range s.cells {
		s.cells[i] = cell{val: valAbsent}
		s.cellHash ^= cellHashOf(i, s.cells[i])
	}
	return s
}

// withCell returns a copy of s with key set to c and the revision set to rev.
func withCell(s *state, key int32, c cell, rev int64) *state {
	if c.val == valUnobserved || c.val == valAbsent {
		c.modRev, c.lo = 0, 0 // unobservable: keep states canonical
	} else if c.lo == c.modRev {
		c.lo = 0
	}
	ns := *s
	ns.rev = rev
	ns.cells = slices.Clone(s.cells)
	ns.cells[key] = c
	ns.cellHash ^= cellHashOf(int(key), s.cells[key]) ^ cellHashOf(int(key), c)
	return &ns
}

func (m *kvModel) withPending(s *state, id int32) *state {
	ns := *s
	i, _ := slices.BinarySearch(s.pending, id)
	ns.pending = slices.Insert(slices.Clone(s.pending), i, id)
	ns.pendHash += m.shapeH[id]
	return &ns
}

func (m *kvModel) withoutPending(s *state, i int) *state {
	ns := *s
	ns.pending = slices.Delete(slices.Clone(s.pending), i, i+1)
	ns.pendHash -= m.shapeH[s.pending[i]]
	return &ns
}

// applyPending lets the pending write at index i take effect with a mod
// revision in [lo, hi], leaving the state revision at rev. It reports false
// when the write would change nothing (a delete of an absent key, a CAS
// whose comparison fails): such an application is the same as never
// applying it, which keeping it pending already covers.
func (m *kvModel) applyPending(s *state, i int, lo, hi, rev int64) (*state, bool) {
	sh := m.shapes[s.pending[i]]
	c := s.cells[sh.key]
	switch sh.kind {
	case OpPut:
	case OpDelete:
		if c.val == valAbsent {
			return nil, false
		}
		return withCell(m.withoutPending(s, i), sh.key, cell{val: valAbsent}, rev), true
	case OpCAS:
		if !casHolds(c, sh.expect) {
			return nil, false
		}
	default:
		return nil, false
	}
	nc := cell{val: sh.val, modRev: hi}
	if lo < hi {
		nc.lo = lo
	}
	return withCell(m.withoutPending(s, i), sh.key, nc, rev), true
}

func casHolds(c cell, expect int32) bool {
	if expect == valAbsent {
		return c.val == valAbsent
	}
	return c.val == expect
}

// addUnique appends s to set unless an equal state is already there.
func addUnique(set []*state, s *state) []*state {
	h := s.hash()
	for _, o := range set {
		if o.hash() == h && o.equal(s) {
			return set
		}
	}
	return append(set, s)
}

// closure returns the states reachable from s by letting pending writes take
// effect before a known operation that needs the store at revision target.
// Without gaps exactly target-s.rev pending writes must fill the revisions
// in between; with gaps any number up to that may, the rest being writes
// outside the history.
func (m *kvModel) closure(s *state, target int64) []*state {
	need := target - s.rev
	if need < 0 || (!m.gaps && need > int64(len(s.pending))) {
		return nil
	}
	if need == 0 {
		return []*state{s}
	}
	base := s.rev
	frontier := []*state{s}
	var all []*state
	if m.gaps {
		all = []*state{s}
	}
	for step := int64(0); step < need && len(frontier) > 0; step++ {
		var next []*state
		for _, f := range frontier {
			for i := range f.pending {
				if i > 0 && f.pending[i] == f.pending[i-1] {
					continue // same shape, same effect
				}
				var ns *state
				var ok bool
				if m.gaps {
					ns, ok = m.applyPending(f, i, base+1, target, f.rev)
				} else {
					ns, ok = m.applyPending(f, i, f.rev+1, f.rev+1, f.rev+1)
				}
				if ok {
					next = addUnique(next, ns)
				}
			}
		}
		frontier = next
		if m.gaps {
			for _, ns := range next {
				all = addUnique(all, ns)
			}
		}
	}
	if !m.gaps {
		return frontier
	}
	for i, a := range all {
		if a.rev != target {
			ns := *a
			ns.rev = target
			all[i] = &ns
		}
	}
	return all
}

// bump is how much the operation itself advances the revision.
func bump(in *input, out *output) int64 {
	switch in.kind {
	case OpPut:
		return 1
	case OpDelete:
		if out.deleted > 0 {
			return 1
		}
	case OpCAS:
		if out.succeeded {
			return 1
		}
	}
	return 0
}

// step is the NondeterministicModel step function.
func (m *kvModel) step(st, in0, out0 any) []any {
	s, in, out := st.(*state), in0.(*input), out0.(*output)
	if in.kind == opExpire {
		// Drop one pending instance of the shape, if any is left. When a gap
		// consumed "one of" several same-shape writes, it was the one that
		// expires first: that keeps the most futures open.
		if i, ok := slices.BinarySearch(s.pending, in.shape); ok {
			return []any{m.withoutPending(s, i)}
		}
		return []any{s}
	}
	if out.unknown {
		return []any{m.withPending(s, in.shape)}
	}
	target := out.rev - bump(in, out)
	var res []any
	for _, f := range m.closure(s, target) {
		if ns := m.apply(f, in, out); ns != nil {
			res = append(res, ns)
		}
	}
	return res
}

// apply performs a known operation on a state already at revision
// out.rev - bump; it returns nil when the output is impossible.
func (m *kvModel) apply(s *state, in *input, out *output) *state {
	c := s.cells[in.key]
	switch in.kind {
	case OpGet:
		if !out.exists {
			if c.val != valAbsent {
				return nil
			}
			return s
		}
		if c.val != out.val {
			return nil
		}
		if c.lo == 0 {
			if c.modRev != out.modRev {
				return nil
			}
			return s
		}
		if out.modRev < c.lo || out.modRev > c.modRev {
			return nil
		}
		return withCell(s, in.key, cell{val: c.val, modRev: out.modRev}, s.rev)
	case OpPut:
		return withCell(s, in.key, cell{val: in.val, modRev: out.rev}, out.rev)
	case OpDelete:
		if (out.deleted > 0) != (c.val != valAbsent) {
			return nil
		}
		if out.deleted == 0 {
			return s
		}
		return withCell(s, in.key, cell{val: valAbsent}, out.rev)
	case OpCAS:
		if casHolds(c, in.expect) != out.succeeded {
			return nil
		}
		if !out.succeeded {
			return s
		}
		return withCell(s, in.key, cell{val: in.val, modRev: out.rev}, out.rev)
	}
	return nil
}

func (m *kvModel) nondeterministic() porcupine.NondeterministicModel {
	return porcupine.NondeterministicModel{
		Init:              func() []any { return []any{m.initState()} },
		Step:              m.step,
		Equal:             func(a, b any) bool { return a.(*state).equal(b.(*state)) },
		Hash:              func(a any) uint64 { return a.(*state).hash() },
		DescribeOperation: describeOperation,
		DescribeState:     func(a any) string { return m.describeState(a.(*state)) },
	}
}

func (m *kvModel) describeValue(v int32) string {
	if v == valUnobserved {
		return "?"
	}
	return strconv.Quote(m.values[v])
}

func (m *kvModel) describeState(s *state) string {
	var b strings.Builder
	fmt.Fprintf(&b, "rev=%d {", s.rev)
	for i, c := range s.cells {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(m.keys[i])
		b.WriteString("=")
		switch {
		case c.val == valAbsent:
			b.WriteString("absent")
		case c.lo > 0:
			fmt.Fprintf(&b, "%s@%d..%d", m.describeValue(c.val), c.lo, c.modRev)
		case c.val == valUnobserved:
			b.WriteString("?")
		default:
			fmt.Fprintf(&b, "%s@%d", m.describeValue(c.val), c.modRev)
		}
	}
	b.WriteString("}")
	if len(s.pending) > 0 {
		b.WriteString(" maybe-later[")
		for i, id := range s.pending {
			if i > 0 {
				b.WriteString(" ")
			}
			sh := m.shapes[id]
			switch sh.kind {
			case OpPut:
				fmt.Fprintf(&b, "put(%s,%s)", m.keys[sh.key], m.describeValue(sh.val))
			case OpDelete:
				fmt.Fprintf(&b, "delete(%s)", m.keys[sh.key])
			case OpCAS:
				exp := "absent"
				if sh.expect != valAbsent {
					exp = m.describeValue(sh.expect)
				}
				fmt.Fprintf(&b, "cas(%s,%s->%s)", m.keys[sh.key], exp, m.describeValue(sh.val))
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

func describeOperation(in0, out0 any) string {
	in, out := in0.(*input), out0.(*output)
	if in.kind == opExpire {
		return "window closes for " + DescribeOperation(in.req, out.resp)
	}
	return DescribeOperation(in.req, out.resp) + describeResolution(out)
}

func describeResolution(out *output) string {
	if out.resolved {
		return fmt.Sprintf(" [resolved by a read: applied at rev %d]", out.rev)
	}
	return ""
}

// DescribeOperation renders a recorded operation for people, for example
// `put("a", "c1-3") -> rev 12` or `get("a") -> "c1-3" mod 12, rev 15`.
func DescribeOperation(req Request, resp Response) string {
	var call string
	switch req.Kind {
	case OpGet:
		call = fmt.Sprintf("get(%q)", req.Key)
	case OpPut:
		call = fmt.Sprintf("put(%q, %q)", req.Key, req.Value)
	case OpDelete:
		call = fmt.Sprintf("delete(%q)", req.Key)
	case OpCAS:
		exp := "absent"
		if req.Expect != "" {
			exp = strconv.Quote(req.Expect)
		}
		call = fmt.Sprintf("cas(%q, if %s then %q)", req.Key, exp, req.Value)
	default:
		call = fmt.Sprintf("invalid(%q)", req.Key)
	}
	if resp.Unknown {
		return fmt.Sprintf("%s -> unknown outcome (%s at %v)", call, resp.Err, resp.ErrAt)
	}
	switch req.Kind {
	case OpGet:
		if !resp.Exists {
			return fmt.Sprintf("%s -> absent, rev %d", call, resp.Rev)
		}
		return fmt.Sprintf("%s -> %q mod %d, rev %d", call, resp.Value, resp.ModRev, resp.Rev)
	case OpDelete:
		return fmt.Sprintf("%s -> deleted %d, rev %d", call, resp.Deleted, resp.Rev)
	case OpCAS:
		if resp.Succeeded {
			return fmt.Sprintf("%s -> succeeded, rev %d", call, resp.Rev)
		}
		return fmt.Sprintf("%s -> failed, rev %d", call, resp.Rev)
	}
	return fmt.Sprintf("%s -> rev %d", call, resp.Rev)
}
