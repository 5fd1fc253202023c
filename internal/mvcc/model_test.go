package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The model is deliberately naive: a full map per revision, txns applied to a copy of the map.

type mkv struct {
	create, mod, ver, lease int64
	value                   []byte
}

type model struct {
	states     []map[string]mkv // states[rev]; states[0] unused
	compactRev int64
}

func newModel() *model { return &model{states: []map[string]mkv{nil, {}}, compactRev: -1} }

func (m *model) rev() int64 { return int64(len(m.states) - 1) }

func (m *model) liveKeys(st map[string]mkv, key, end []byte) []string {
	var ks []string
	for k := range st {
		if inInterval([]byte(k), key, end) {
			ks = append(ks, k)
		}
	}
	sort.Strings(ks)
	return ks
}

func mToKV(k string, v mkv) *KeyValue {
	return &KeyValue{Key: []byte(k), CreateRevision: v.create, ModRevision: v.mod, Version: v.ver, Value: v.value, Lease: v.lease}
}

// rangeMap answers r on one state with etcd's rules, written as plainly as possible.
func (m *model) rangeMap(st map[string]mkv, r *RangeRequest) *RangeResult {
	ks := m.liveKeys(st, r.Key, r.End)
	res := &RangeResult{Count: int64(len(ks))}
	if r.CountOnly {
		return res
	}
	// etcd quirk: the fetch is cut at Limit+1 keys when the *requested* order is the index order, which
	// includes SortOrder NONE with a target other than the key (sorted ascending afterwards).
	if r.Limit > 0 && (r.SortOrder == SortNone || (r.SortOrder == SortAscend && r.SortTarget == SortByKey)) &&
		r.MinModRevision == 0 && r.MaxModRevision == 0 && r.MinCreateRevision == 0 && r.MaxCreateRevision == 0 &&
		int64(len(ks)) > r.Limit+1 {
		ks = ks[:r.Limit+1]
	}
	var kvs []*KeyValue
	for _, k := range ks {
		kv := mToKV(k, st[k])
		if r.KeysOnly && r.SortTarget != SortByValue {
			kv.Lease = 0
		}
		ok := (r.MaxModRevision == 0 || kv.ModRevision <= r.MaxModRevision) &&
			(r.MinModRevision == 0 || kv.ModRevision >= r.MinModRevision) &&
			(r.MaxCreateRevision == 0 || kv.CreateRevision <= r.MaxCreateRevision) &&
			(r.MinCreateRevision == 0 || kv.CreateRevision >= r.MinCreateRevision)
		if ok {
			kvs = append(kvs, kv)
		}
	}
	order := r.SortOrder
	if r.SortTarget != SortByKey && order == SortNone {
		order = SortAscend
	}
	if !(order == SortNone || (order == SortAscend && r.SortTarget == SortByKey)) {
		less := func(i, j int) bool {
			a, b := kvs[i], kvs[j]
			switch r.SortTarget {
			case SortByKey:
				return string(a.Key) < string(b.Key)
			case SortByVersion:
				return a.Version < b.Version
			case SortByCreate:
				return a.CreateRevision < b.CreateRevision
			case SortByMod:
				return a.ModRevision < b.ModRevision
			default:
				return string(a.Value) < string(b.Value)
			}
		}
		var si sort.Interface = funcSorter{kvs, less}
		if order == SortDescend {
			si = sort.Reverse(si)
		}
		sort.Sort(si) // same algorithm as etcd, so ties come out alike
	}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		res.More = true
	}
	for _, kv := range kvs {
		if r.KeysOnly {
			kv.Value = nil
		}
	}
	res.KVs = kvs
	return res
}

type funcSorter struct {
	kvs  []*KeyValue
	less func(i, j int) bool
}

func (f funcSorter) Len() int           { return len(f.kvs) }
func (f funcSorter) Swap(i, j int)      { f.kvs[i], f.kvs[j] = f.kvs[j], f.kvs[i] }
func (f funcSorter) Less(i, j int) bool { return f.less(i, j) }

func (m *model) Range(r *RangeRequest) (*RangeResult, error) {
	rev := r.Revision
	if rev > m.rev() {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = m.rev()
	}
	if rev < m.compactRev {
		return nil, ErrCompacted
	}
	return m.rangeMap(m.states[rev], r), nil
}

func (m *model) compare(st map[string]mkv, c *Compare) bool {
	ks := m.liveKeys(st, c.Key, c.End)
	if len(ks) == 0 {
		if c.Target == CompareValue {
			return false
		}
		return compareOne(c, &KeyValue{})
	}
	for _, k := range ks {
		if !compareOne(c, mToKV(k, st[k])) {
			return false
		}
	}
	return true
}

func compareOne(c *Compare, kv *KeyValue) bool {
	var a, b int64
	switch c.Target {
	case CompareVersion:
		a, b = kv.Version, c.Version
	case CompareCreate:
		a, b = kv.CreateRevision, c.CreateRevision
	case CompareMod:
		a, b = kv.ModRevision, c.ModRevision
	case CompareLease:
		a, b = kv.Lease, c.Lease
	case CompareValue:
		a, b = int64(bytes.Compare(kv.Value, c.Value)), 0
	}
	switch c.Result {
	case CompareEqual:
		return a == b
	case CompareNotEqual:
		return a != b
	case CompareGreater:
		return a > b
	case CompareLess:
		return a < b
	}
	return true
}

type mtxn struct {
	m       *model
	pre     map[string]mkv
	work    map[string]mkv
	newRev  int64
	changed bool
	leases  LeaseChecker
	events  []Event
}

func (m *model) Txn(r *TxnRequest, leases LeaseChecker) (*TxnResult, []Event, error) {
	pre := m.states[m.rev()]
	work := make(map[string]mkv, len(pre))
	for k, v := range pre {
		work[k] = v
	}
	t := &mtxn{m: m, pre: pre, work: work, newRev: m.rev() + 1, leases: leases}
	res, err := t.run(r)
	if err != nil {
		return nil, nil, err
	}
	if t.changed {
		m.states = append(m.states, work)
	}
	return res, t.events, nil
}

func (t *mtxn) run(r *TxnRequest) (*TxnResult, error) {
	ok := true
	for i := range r.Compare {
		if !t.m.compare(t.pre, &r.Compare[i]) { // compares see the state before the txn
			ok = false
			break
		}
	}
	ops := r.Failure
	if ok {
		ops = r.Success
	}
	res := &TxnResult{Succeeded: ok, Results: make([]OpResult, len(ops))}
	for i, op := range ops {
		switch {
		case op.Range != nil:
			rr := op.Range
			if rr.SortOrder < 0 || rr.SortOrder > 2 || rr.SortTarget < 0 || rr.SortTarget > 4 {
				return nil, ErrInvalidSortOption
			}
			// etcd's checkRange, then its rangeKeys: 0 (or a negative revision that passed the check) reads
			// the txn's own writes.
			switch {
			case rr.Revision > t.m.rev():
				return nil, ErrFutureRev
			case rr.Revision != 0 && rr.Revision < t.m.compactRev:
				return nil, ErrCompacted
			case rr.Revision <= 0:
				st := t.pre
				if t.changed {
					st = t.work
				}
				res.Results[i].Range = t.m.rangeMap(st, rr)
			default:
				res.Results[i].Range = t.m.rangeMap(t.m.states[rr.Revision], rr)
			}
		case op.Put != nil:
			p := op.Put
			if p.Lease != 0 && (t.leases == nil || !t.leases(p.Lease)) {
				return nil, ErrLeaseNotFound
			}
			k := string(p.Key)
			prev, had := t.work[k]
			if p.IgnoreValue || p.IgnoreLease {
				if _, inPre := t.pre[k]; !inPre || !had {
					return nil, ErrKeyNotFound
				}
			}
			nv := mkv{create: t.newRev, mod: t.newRev, ver: 1, lease: p.Lease, value: p.Value}
			if had {
				nv.create, nv.ver = prev.create, prev.ver+1
			}
			if p.IgnoreValue {
				nv.value = prev.value
			}
			if p.IgnoreLease {
				nv.lease = prev.lease
			}
			t.work[k] = nv
			t.changed = true
			ev := Event{Type: EventPut, KV: mToKV(k, nv)}
			pr := &PutResult{}
			if had {
				ev.PrevKV = mToKV(k, prev)
				if p.PrevKV {
					pr.PrevKV = mToKV(k, prev)
				}
			}
			t.events = append(t.events, ev)
			res.Results[i].Put = pr
		case op.Delete != nil:
			d := op.Delete
			ks := t.m.liveKeys(t.work, d.Key, d.End)
			dr := &DeleteResult{Deleted: int64(len(ks))}
			for _, k := range ks {
				prev := t.work[k]
				if d.PrevKV {
					dr.PrevKVs = append(dr.PrevKVs, mToKV(k, prev))
				}
				delete(t.work, k)
				t.changed = true
				t.events = append(t.events, Event{Type: EventDelete, KV: &KeyValue{Key: []byte(k), ModRevision: t.newRev}, PrevKV: mToKV(k, prev)})
			}
			res.Results[i].Delete = dr
		case op.Txn != nil:
			sub, err := t.run(op.Txn)
			if err != nil {
				return nil, err
			}
			res.Results[i].Txn = sub
		}
	}
	return res, nil
}

func (m *model) Compact(rev int64) error {
	if rev <= m.compactRev {
		return ErrCompacted
	}
	if rev > m.rev() {
		return ErrFutureRev
	}
	m.compactRev = rev
	return nil
}

// ---- rendering results canonically (nil and empty alike) ----

func dumpKV(b *strings.Builder, kv *KeyValue) {
	if kv == nil {
		b.WriteString("<nil>")
		return
	}
	fmt.Fprintf(b, "{%q c=%d m=%d v=%d l=%d %q}", kv.Key, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease, kv.Value)
}

func dumpRange(b *strings.Builder, r *RangeResult) {
	fmt.Fprintf(b, "range(count=%d more=%v [", r.Count, r.More)
	for _, kv := range r.KVs {
		dumpKV(b, kv)
	}
	b.WriteString("])")
}

func dumpTxn(b *strings.Builder, r *TxnResult) {
	fmt.Fprintf(b, "txn(ok=%v [", r.Succeeded)
	for _, o := range r.Results {
		switch {
		case o.Range != nil:
			dumpRange(b, o.Range)
		case o.Put != nil:
			b.WriteString("put(")
			dumpKV(b, o.Put.PrevKV)
			b.WriteString(")")
		case o.Delete != nil:
			fmt.Fprintf(b, "del(%d [", o.Delete.Deleted)
			for _, kv := range o.Delete.PrevKVs {
				dumpKV(b, kv)
			}
			b.WriteString("])")
		case o.Txn != nil:
			dumpTxn(b, o.Txn)
		default:
			b.WriteString("empty")
		}
		b.WriteString(" ")
	}
	b.WriteString("])")
}

func dumpEvents(b *strings.Builder, evs []Event) {
	for _, e := range evs {
		fmt.Fprintf(b, " ev%d:", e.Type)
		dumpKV(b, e.KV)
		dumpKV(b, e.PrevKV)
	}
}

func renderTxn(r *TxnResult, evs []Event, err error) string {
	var b strings.Builder
	if err != nil {
		return "error: " + err.Error()
	}
	dumpTxn(&b, r)
	dumpEvents(&b, evs)
	return b.String()
}

func renderRange(r *RangeResult, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	dumpRange(&b, r)
	return b.String()
}

// ---- random requests ----

var (
	genKeys   = []string{"\x00", "a", "aa", "ab", "b", "ba", "c", "d", "e", "f", "\xff"}
	genValues = []string{"", "v1", "v2", "x", "yy", "zzz"}
)

type gen struct {
	rnd *rand.Rand
	m   *model
}

func (g *gen) key() []byte { return []byte(genKeys[g.rnd.Intn(len(genKeys))]) }

func (g *gen) end() []byte {
	switch g.rnd.Intn(5) {
	case 0, 1:
		return nil
	case 2:
		return []byte{0}
	default:
		return g.key()
	}
}

func (g *gen) rev() int64 {
	r := g.m.rev()
	lo := max(g.m.compactRev, 0) - 2
	return lo + g.rnd.Int63n(r-lo+3)
}

func (g *gen) small() int64 { return g.rnd.Int63n(g.m.rev() + 2) }

func (g *gen) rangeReq() *RangeRequest {
	r := &RangeRequest{Key: g.key(), End: g.end()}
	if g.rnd.Intn(3) == 0 {
		r.Limit = g.rnd.Int63n(4) - 1
	}
	if g.rnd.Intn(3) == 0 {
		r.Revision = g.rev()
	}
	if g.rnd.Intn(2) == 0 {
		r.SortOrder = SortOrder(g.rnd.Intn(3))
		r.SortTarget = SortTarget(g.rnd.Intn(5))
	}
	if g.rnd.Intn(50) == 0 {
		r.SortTarget = 7
	}
	r.KeysOnly = g.rnd.Intn(5) == 0
	r.CountOnly = g.rnd.Intn(8) == 0
	if g.rnd.Intn(4) == 0 {
		switch g.rnd.Intn(4) {
		case 0:
			r.MinModRevision = g.small()
		case 1:
			r.MaxModRevision = g.small()
		case 2:
			r.MinCreateRevision = g.small()
		default:
			r.MaxCreateRevision = g.small()
		}
	}
	return r
}

func (g *gen) putReq() *PutRequest {
	p := &PutRequest{Key: g.key(), Value: []byte(genValues[g.rnd.Intn(len(genValues))])}
	if g.rnd.Intn(3) == 0 {
		p.Lease = int64(g.rnd.Intn(3)) // lease 2 does not exist
		if g.rnd.Intn(4) != 0 && p.Lease == 2 {
			p.Lease = 1
		}
	}
	p.PrevKV = g.rnd.Intn(2) == 0
	if g.rnd.Intn(10) == 0 {
		p.IgnoreValue, p.Value = true, nil
	}
	if g.rnd.Intn(10) == 0 {
		p.IgnoreLease, p.Lease = true, 0
	}
	return p
}

func (g *gen) deleteReq() *DeleteRequest {
	return &DeleteRequest{Key: g.key(), End: g.end(), PrevKV: g.rnd.Intn(2) == 0}
}

func (g *gen) compare() Compare {
	c := Compare{Target: CompareTarget(g.rnd.Intn(5)), Result: CompareResult(g.rnd.Intn(4)), Key: g.key()}
	if g.rnd.Intn(4) == 0 {
		c.End = g.end()
	}
	switch c.Target {
	case CompareVersion:
		c.Version = g.rnd.Int63n(4)
	case CompareCreate:
		c.CreateRevision = g.small()
	case CompareMod:
		c.ModRevision = g.small()
	case CompareLease:
		c.Lease = g.rnd.Int63n(3)
	case CompareValue:
		c.Value = []byte(genValues[g.rnd.Intn(len(genValues))])
	}
	return c
}

func (g *gen) op(depth int) Op {
	switch n := g.rnd.Intn(10); {
	case n < 3:
		return Op{Range: g.rangeReq()}
	case n < 7:
		return Op{Put: g.putReq()}
	case n < 9 || depth >= 2:
		return Op{Delete: g.deleteReq()}
	default:
		return Op{Txn: g.txn(depth + 1)}
	}
}

func (g *gen) txn(depth int) *TxnRequest {
	t := &TxnRequest{}
	for range g.rnd.Intn(3) {
		t.Compare = append(t.Compare, g.compare())
	}
	for range g.rnd.Intn(4) {
		t.Success = append(t.Success, g.op(depth))
	}
	for range g.rnd.Intn(3) {
		t.Failure = append(t.Failure, g.op(depth))
	}
	if g.rnd.Intn(30) == 0 {
		t.Success = append(t.Success, Op{}) // empty op: skipped
	}
	return t
}

func testSeed(t *testing.T, def int64) int64 {
	if s := os.Getenv("MVCC_SEED"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("MVCC_SEED: %v", err)
		}
		return v
	}
	return def
}

func testSteps(def int) int {
	if s := os.Getenv("MVCC_STEPS"); s != "" {
		if v, err := strconv.Atoi(s); err == nil {
			return v
		}
	}
	return def
}

type clonePoint struct {
	c    *Store
	rev  int64
	hash uint32
}

type hashPoint struct {
	rev, compactRev int64
	hash            uint32
}

// TestModel drives the store and the model with the same seeded random stream and compares every answer.
func TestModel(t *testing.T) {
	for i := range int64(4) {
		seed := testSeed(t, 1000+i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (rerun with MVCC_SEED=%d)", seed, seed)
			runModel(t, seed, testSteps(2500))
		})
		if os.Getenv("MVCC_SEED") != "" {
			break
		}
	}
}

func runModel(t *testing.T, seed int64, steps int) {
	rnd := rand.New(rand.NewSource(seed))
	m := newModel()
	s := New()
	g := &gen{rnd: rnd, m: m}
	leases := func(id int64) bool { return id == 1 }
	type logged struct {
		txn     *TxnRequest
		leases  bool
		compact int64
	}
	var (
		log    []logged
		clones []clonePoint
		hashes []hashPoint
	)
	for step := range steps {
		var what string
		switch n := rnd.Intn(100); {
		case n < 30:
			req := &TxnRequest{Success: []Op{{Put: g.putReq()}}}
			what = "put"
			lc := leases
			if rnd.Intn(20) == 0 {
				lc = nil
			}
			a := renderTxn(s.Txn(req, lc))
			b := renderTxn(m.Txn(req, lc))
			if a != b {
				t.Fatalf("step %d %s %+v:\nstore %s\nmodel %s", step, what, req.Success[0].Put, a, b)
			}
			log = append(log, logged{txn: req, leases: lc != nil})
		case n < 40:
			req := &TxnRequest{Success: []Op{{Delete: g.deleteReq()}}}
			what = "delete"
			a := renderTxn(s.Txn(req, leases))
			b := renderTxn(m.Txn(req, leases))
			if a != b {
				t.Fatalf("step %d %s %+v:\nstore %s\nmodel %s", step, what, req.Success[0].Delete, a, b)
			}
			log = append(log, logged{txn: req, leases: true})
		case n < 65:
			req := g.txn(0)
			what = "txn"
			a := renderTxn(s.Txn(req, leases))
			b := renderTxn(m.Txn(req, leases))
			if a != b {
				t.Fatalf("step %d %s:\nstore %s\nmodel %s", step, what, a, b)
			}
			log = append(log, logged{txn: req, leases: true})
		case n < 85:
			r := g.rangeReq()
			if r.SortTarget > 4 {
				r.SortTarget = 0
			}
			if rnd.Intn(5) == 0 {
				r.Revision = -1 - rnd.Int63n(3)
			}
			a := renderRange(s.Range(r))
			b := renderRange(m.Range(r))
			if a != b {
				t.Fatalf("step %d range %+v:\nstore %s\nmodel %s", step, r, a, b)
			}
		case n < 87:
			rev := g.rev()
			if rnd.Intn(2) == 0 {
				rev = max(rev, m.compactRev+1)
			}
			e1, e2 := s.Compact(rev), m.Compact(rev)
			if !errors.Is(e1, e2) {
				t.Fatalf("step %d compact %d: store %v model %v", step, rev, e1, e2)
			}
			if e1 == nil {
				hashes = nil // hashes change with the compaction revision
			}
			log = append(log, logged{compact: rev})
		case n < 91:
			clones = append(clones, clonePoint{c: s.Clone(), rev: m.rev(), hash: s.Hash()})
			if len(clones) > 3 {
				clones = clones[1:]
			}
		case n < 94:
			var buf bytes.Buffer
			if _, err := s.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			r, err := Restore(&buf)
			if err != nil {
				t.Fatalf("step %d restore: %v", step, err)
			}
			checkSame(t, s, r, m)
			s = r // carry on with the restored store
		case n < 97:
			rev := g.rev()
			if rnd.Intn(3) == 0 {
				rev = 0
			}
			h, hr, cr, err := s.HashKV(rev)
			var want error
			switch {
			case rev > m.rev():
				want = ErrFutureRev
			case rev != 0 && rev < m.compactRev:
				want = ErrCompacted
			}
			if !errors.Is(err, want) {
				t.Fatalf("step %d hashkv %d: %v want %v", step, rev, err, want)
			}
			if err == nil {
				if cr != m.compactRev || (rev != 0 && hr != rev) || (rev == 0 && hr != m.rev()) {
					t.Fatalf("step %d hashkv %d: hashRev %d compactRev %d", step, rev, hr, cr)
				}
				hashes = append(hashes, hashPoint{rev: hr, compactRev: cr, hash: h})
			}
		default:
			// Every recorded HashKV must still hold: writes above a revision never change its hash.
			for _, hp := range hashes {
				h, _, _, err := s.HashKV(hp.rev)
				if err != nil || h != hp.hash {
					t.Fatalf("step %d: HashKV(%d) changed: %v", step, hp.rev, err)
				}
			}
		}
		if s.Rev() != m.rev() || s.CompactRev() != max(m.compactRev, 0) {
			t.Fatalf("step %d (%s): rev %d/%d compact %d/%d", step, what, s.Rev(), m.rev(), s.CompactRev(), m.compactRev)
		}
		if s.KeyCount() != len(m.states[m.rev()]) {
			t.Fatalf("step %d (%s): key count %d want %d", step, what, s.KeyCount(), len(m.states[m.rev()]))
		}
		for _, cp := range clones {
			if cp.c.Rev() != cp.rev || cp.c.Hash() != cp.hash {
				t.Fatalf("step %d: a clone changed (rev %d want %d)", step, cp.c.Rev(), cp.rev)
			}
		}
	}
	// Clones still read the state they were taken at.
	for _, cp := range clones {
		all := &RangeRequest{Key: []byte{0}, End: []byte{0}}
		a := renderRange(cp.c.Range(all))
		b := renderRange(m.rangeMap(m.states[cp.rev], all), nil)
		if a != b {
			t.Fatalf("clone at %d:\nclone %s\nmodel %s", cp.rev, a, b)
		}
	}
	// Replaying the same calls on a fresh store gives the same hashes: determinism.
	r := New()
	for _, l := range log {
		if l.txn != nil {
			lc := leases
			if !l.leases {
				lc = nil
			}
			_, _, _ = r.Txn(l.txn, lc)
		} else {
			_ = r.Compact(l.compact)
		}
	}
	if r.Hash() != s.Hash() {
		t.Fatalf("replay: hash %x want %x", r.Hash(), s.Hash())
	}
	checkSame(t, s, r, m)
	t.Logf("final rev %d, compact rev %d, %d keys", s.Rev(), s.CompactRev(), s.KeyCount())
}

// checkSame checks that b answers like a: hashes, and every full read at every readable revision.
func checkSame(t *testing.T, a, b *Store, m *model) {
	t.Helper()
	if a.Hash() != b.Hash() || a.Rev() != b.Rev() || a.CompactRev() != b.CompactRev() || a.KeyCount() != b.KeyCount() {
		t.Fatalf("stores differ: hash %x/%x rev %d/%d", a.Hash(), b.Hash(), a.Rev(), b.Rev())
	}
	// The running size estimate equals a recount, and survives restore and clone alike.
	for _, s := range []*Store{a, b} {
		got := s.Size()
		s.recomputeSize()
		if got != s.Size() {
			t.Fatalf("Size() %d, a recount gives %d", got, s.Size())
		}
	}
	for rev := max(a.compactRev, 1); rev <= a.Rev(); rev++ {
		h1, _, _, e1 := a.HashKV(rev)
		h2, _, _, e2 := b.HashKV(rev)
		if h1 != h2 || e1 != nil || e2 != nil {
			t.Fatalf("HashKV(%d) differs: %x/%x %v %v", rev, h1, h2, e1, e2)
		}
		all := &RangeRequest{Key: []byte{0}, End: []byte{0}, Revision: rev}
		ra, rb := renderRange(a.Range(all)), renderRange(b.Range(all))
		if ra != rb {
			t.Fatalf("range at %d differs:\n%s\n%s", rev, ra, rb)
		}
		if m != nil {
			if rm := renderRange(m.Range(all)); rm != ra {
				t.Fatalf("range at %d differs from model:\n%s\n%s", rev, ra, rm)
			}
		}
	}
}

// FuzzModel is the model test as a native fuzz target: the fuzzer picks the
// seed of the random operation stream (run with -fuzz=FuzzModel; the seed
// corpus runs as an ordinary test).
func FuzzModel(f *testing.F) {
	for _, seed := range []int64{1, 2, 42, 1 << 40} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		runModel(t, seed, 300)
	})
}
