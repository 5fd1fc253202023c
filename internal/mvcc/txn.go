package mvcc

import "bytes"

// Txn evaluates and applies a transaction. It is the only call that writes keys.
//
// Like etcd 3.7, every Compare (including those of nested txns on the chosen path) is evaluated against the
// state before the txn, then the chosen ops are checked against that state, then they run in order. Reads inside
// the txn see the writes made before them in the same txn. If anything writes, the revision goes up by exactly
// one and every write shares it (in sub-revision order); a txn that writes nothing leaves the revision alone.
//
// Errors (the txn then has no effect at all): ErrLeaseNotFound (a put names a lease that leases does not know),
// ErrKeyNotFound (IgnoreValue or IgnoreLease on a missing key), ErrFutureRev/ErrCompacted (a range at a revision
// above the current one or below the compaction revision), ErrInvalidSortOption, ErrInvalidOp.
//
// The events describe every write in order. Txn takes ownership of the byte slices of r: they must not be
// modified afterwards.
func (s *Store) Txn(r *TxnRequest, leases LeaseChecker) (*TxnResult, []Event, error) {
	if r == nil {
		r = &TxnRequest{}
	}
	p := s.plan(r)
	var sim txnSim
	if err := s.check(p, leases, &sim); err != nil {
		return nil, nil, err
	}
	x := txnExec{s: s, rev: s.rev + 1}
	res := x.exec(p)
	if x.sub > 0 {
		s.rev++
	}
	return res, x.events, nil
}

// plan is the path a txn takes, decided before anything runs.
type plan struct {
	succeeded bool
	ops       []Op
	sub       []*plan // sub[i] is the plan of ops[i].Txn
}

func (s *Store) plan(r *TxnRequest) *plan {
	p := &plan{succeeded: s.compares(r.Compare)}
	p.ops = r.Failure
	if p.succeeded {
		p.ops = r.Success
	}
	for i, op := range p.ops {
		if op.Txn == nil {
			continue
		}
		if p.sub == nil {
			p.sub = make([]*plan, len(p.ops))
		}
		p.sub[i] = s.plan(op.Txn)
	}
	return p
}

func opCount(op *Op) int {
	n := 0
	if op.Range != nil {
		n++
	}
	if op.Put != nil {
		n++
	}
	if op.Delete != nil {
		n++
	}
	if op.Txn != nil {
		n++
	}
	return n
}

// check finds every error the plan would hit, before anything is written. Like etcd it checks against the state
// before the txn; sim additionally tracks the txn's own writes so that an IgnoreValue/IgnoreLease put after a
// delete of its key in the same txn fails cleanly (etcd would crash there; ValidateTxn rejects such txns).
func (s *Store) check(p *plan, leases LeaseChecker, sim *txnSim) error {
	for i := range p.ops {
		op := &p.ops[i]
		if opCount(op) > 1 {
			return ErrInvalidOp
		}
		switch {
		case op.Range != nil:
			r := op.Range
			if err := checkSort(r); err != nil {
				return err
			}
			switch {
			case r.Revision == 0:
			case r.Revision > s.rev:
				return ErrFutureRev
			case r.Revision < s.compactRev:
				return ErrCompacted
			}
		case op.Put != nil:
			pr := op.Put
			if pr.Lease != 0 && (leases == nil || !leases(pr.Lease)) {
				return ErrLeaseNotFound
			}
			if pr.IgnoreValue || pr.IgnoreLease {
				e := s.get(pr.Key)
				pre := e != nil && e.latest() != nil
				if !pre || !sim.exists(pr.Key, pre) {
					return ErrKeyNotFound
				}
			}
			sim.writes = append(sim.writes, simWrite{key: pr.Key, put: true})
		case op.Delete != nil:
			sim.writes = append(sim.writes, simWrite{key: op.Delete.Key, end: op.Delete.End})
		case op.Txn != nil:
			if err := s.check(p.sub[i], leases, sim); err != nil {
				return err
			}
		}
	}
	return nil
}

// txnSim records the writes a txn will make, to answer "does key exist at this point of the txn".
type txnSim struct{ writes []simWrite }

type simWrite struct {
	key, end []byte
	put      bool
}

func (t *txnSim) exists(key []byte, before bool) bool {
	for i := len(t.writes) - 1; i >= 0; i-- {
		w := &t.writes[i]
		if w.put {
			if bytes.Equal(w.key, key) {
				return true
			}
		} else if inInterval(key, w.key, w.end) {
			return false
		}
	}
	return before
}

// inInterval reports whether k is in the interval selected by key and end (see RangeRequest).
func inInterval(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(k, key)
	case isGte(end):
		return bytes.Compare(k, key) >= 0
	default:
		return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
	}
}

// txnExec applies a checked plan.
type txnExec struct {
	s      *Store
	rev    int64 // the revision every write of this txn gets
	sub    int64 // writes so far
	events []Event
}

// readRev is the revision a range with Revision 0 reads at: it includes the txn's own writes.
func (x *txnExec) readRev() int64 {
	if x.sub > 0 {
		return x.rev
	}
	return x.rev - 1
}

func (x *txnExec) exec(p *plan) *TxnResult {
	res := &TxnResult{Succeeded: p.succeeded, Results: make([]OpResult, len(p.ops))}
	for i := range p.ops {
		op := &p.ops[i]
		switch {
		case op.Range != nil:
			rr, err := x.s.rangeKeys(op.Range, x.readRev())
			assert(err == nil, "range failed after check")
			res.Results[i].Range = rr
		case op.Put != nil:
			res.Results[i].Put = x.put(op.Put)
		case op.Delete != nil:
			res.Results[i].Delete = x.del(op.Delete)
		case op.Txn != nil:
			res.Results[i].Txn = x.exec(p.sub[i])
		}
	}
	return res
}

func (x *txnExec) put(p *PutRequest) *PutResult {
	s := x.s
	var prev *version
	var prevKV *KeyValue
	if e := s.get(p.Key); e != nil {
		if prev = e.latest(); prev != nil {
			kv := e.kv(prev)
			prevKV = &kv
		}
	}
	val, lease := p.Value, p.Lease
	if p.IgnoreValue || p.IgnoreLease {
		assert(prev != nil, "ignore_value/ignore_lease put of a missing key after check")
		if p.IgnoreValue {
			val = prev.value
		}
		if p.IgnoreLease {
			lease = prev.lease
		}
	}
	v := version{mod: x.rev, sub: x.sub, create: x.rev, ver: 1, lease: lease, value: val}
	if prev != nil {
		v.create, v.ver = prev.create, prev.ver+1
	} else {
		s.keyCount++
	}
	e := s.mutable(p.Key)
	e.revs = append(e.revs, v)
	s.size += versionSize(&v)
	x.sub++
	kv := e.kv(&v)
	x.events = append(x.events, Event{Type: EventPut, KV: &kv, PrevKV: prevKV})
	res := &PutResult{}
	if p.PrevKV {
		res.PrevKV = prevKV
	}
	return res
}

func (x *txnExec) del(d *DeleteRequest) *DeleteResult {
	s := x.s
	var live []*keyEntry
	s.visit(d.Key, d.End, func(e *keyEntry) bool {
		if e.latest() != nil {
			live = append(live, e)
		}
		return true
	})
	res := &DeleteResult{Deleted: int64(len(live))}
	if d.PrevKV {
		res.PrevKVs = make([]*KeyValue, 0, len(live))
	}
	for _, e := range live {
		kv := e.kv(e.latest())
		prevKV := &kv
		if d.PrevKV {
			res.PrevKVs = append(res.PrevKVs, prevKV)
		}
		me := s.mutable(e.key)
		me.revs = append(me.revs, version{mod: x.rev, sub: x.sub, tomb: true})
		s.size += versionOverhead
		x.sub++
		s.keyCount--
		x.events = append(x.events, Event{
			Type:   EventDelete,
			KV:     &KeyValue{Key: me.key, ModRevision: x.rev},
			PrevKV: prevKV,
		})
	}
	return res
}

// compares reports whether every compare holds at the current revision.
func (s *Store) compares(cmps []Compare) bool {
	for i := range cmps {
		if !s.compare(&cmps[i]) {
			return false
		}
	}
	return true
}

// compare follows etcd's applyCompare: it holds when it holds for every live key of its interval; with no live
// key it compares a zero KeyValue, except for CompareValue which then fails.
func (s *Store) compare(c *Compare) bool {
	found, ok := false, true
	s.visit(c.Key, c.End, func(e *keyEntry) bool {
		v := e.latest()
		if v == nil {
			return true
		}
		found = true
		kv := e.kv(v)
		if !compareKV(c, &kv) {
			ok = false
			return false
		}
		return true
	})
	if !found {
		if c.Target == CompareValue {
			return false
		}
		return compareKV(c, &KeyValue{})
	}
	return ok
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareKV(c *Compare, kv *KeyValue) bool {
	var r int
	switch c.Target {
	case CompareValue:
		r = bytes.Compare(kv.Value, c.Value)
	case CompareCreate:
		r = cmpInt64(kv.CreateRevision, c.CreateRevision)
	case CompareMod:
		r = cmpInt64(kv.ModRevision, c.ModRevision)
	case CompareVersion:
		r = cmpInt64(kv.Version, c.Version)
	case CompareLease:
		r = cmpInt64(kv.Lease, c.Lease)
	}
	switch c.Result {
	case CompareEqual:
		return r == 0
	case CompareNotEqual:
		return r != 0
	case CompareGreater:
		return r > 0
	case CompareLess:
		return r < 0
	}
	return true
}

// assert panics on a broken invariant of the store (never on bad input).
func assert(cond bool, msg string) {
	if !cond {
		panic("mvcc: invariant violated: " + msg)
	}
}
