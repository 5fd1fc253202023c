package mvcc

import (
	"bytes"
	"math"
	"sort"
)

// Range reads keys at r.Revision (0: the current revision; the result's header revision is s.Rev()).
// It fails with ErrFutureRev above the current revision, ErrCompacted below the compaction revision (reading at
// the compaction revision itself is allowed) and ErrInvalidSortOption on an unknown sort order or target.
//
// Count, More and Limit follow etcd 3.7's server: Count is the number of keys in the interval at that revision
// (ignoring Limit and the revision filters); filters then sort are applied to the fetched KVs, and More reports
// that Limit cut what remained.
func (s *Store) Range(r *RangeRequest) (*RangeResult, error) {
	if err := checkSort(r); err != nil {
		return nil, err
	}
	return s.rangeKeys(r, s.rev)
}

func checkSort(r *RangeRequest) error {
	if r.SortOrder < SortNone || r.SortOrder > SortDescend || r.SortTarget < SortByKey || r.SortTarget > SortByValue {
		return ErrInvalidSortOption
	}
	return nil
}

// isDefaultOrdering reports whether the order is the index's own (key ascending).
func isDefaultOrdering(t SortTarget, o SortOrder) bool {
	return o == SortNone || (t == SortByKey && o == SortAscend)
}

func hasRevisionFilters(r *RangeRequest) bool {
	return r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0
}

// rangeKeys executes r reading at curRev when r.Revision is 0 (or negative).
func (s *Store) rangeKeys(r *RangeRequest, curRev int64) (*RangeResult, error) {
	rev := r.Revision
	if rev > curRev {
		return nil, ErrFutureRev
	}
	if rev <= 0 {
		rev = curRev
	}
	if rev < s.compactRev {
		return nil, ErrCompacted
	}
	if r.CountOnly {
		var n int64
		s.visit(r.Key, r.End, func(e *keyEntry) bool {
			if e.at(rev) != nil {
				n++
			}
			return true
		})
		return &RangeResult{Count: n}, nil
	}

	// Like etcd, fetch limit+1 KVs when the index order is the answer's order, everything otherwise.
	limit := r.Limit
	if !isDefaultOrdering(r.SortTarget, r.SortOrder) || hasRevisionFilters(r) {
		limit = 0
	}
	if limit > 0 && limit < math.MaxInt64 {
		limit++
	}
	fastKeysOnly := r.KeysOnly && r.SortTarget != SortByValue

	var (
		count int64
		slab  []KeyValue
	)
	s.visit(r.Key, r.End, func(e *keyEntry) bool {
		v := e.at(rev)
		if v == nil {
			return true
		}
		count++
		if limit <= 0 || int64(len(slab)) < limit {
			kv := e.kv(v)
			if fastKeysOnly {
				kv.Value, kv.Lease = nil, 0 // etcd 3.7 serves these from the index, which has no lease
			}
			slab = append(slab, kv)
		}
		return true
	})
	kvs := make([]*KeyValue, len(slab))
	for i := range slab {
		kvs[i] = &slab[i]
	}

	kvs = filterKVs(kvs, r)
	sortKVs(kvs, r)

	res := &RangeResult{Count: count}
	if r.Limit > 0 && int64(len(kvs)) > r.Limit {
		kvs = kvs[:r.Limit]
		res.More = true
	}
	if r.KeysOnly {
		for _, kv := range kvs {
			kv.Value = nil
		}
	}
	if len(kvs) > 0 {
		res.KVs = kvs
	}
	return res, nil
}

func filterKVs(kvs []*KeyValue, r *RangeRequest) []*KeyValue {
	if !hasRevisionFilters(r) {
		return kvs
	}
	j := 0
	for _, kv := range kvs {
		switch {
		case r.MaxModRevision != 0 && kv.ModRevision > r.MaxModRevision:
		case r.MinModRevision != 0 && kv.ModRevision < r.MinModRevision:
		case r.MaxCreateRevision != 0 && kv.CreateRevision > r.MaxCreateRevision:
		case r.MinCreateRevision != 0 && kv.CreateRevision < r.MinCreateRevision:
		default:
			kvs[j] = kv
			j++
		}
	}
	return kvs[:j]
}

// sortKVs sorts like etcd: a target other than the key with no order means ascending. It uses sort.Sort (not a
// stable sort) on the key-ordered input, as etcd does, so that ties come out in the same order.
func sortKVs(kvs []*KeyValue, r *RangeRequest) {
	order := r.SortOrder
	if r.SortTarget != SortByKey && order == SortNone {
		order = SortAscend
	}
	if isDefaultOrdering(r.SortTarget, order) {
		return
	}
	var sorter sort.Interface
	switch r.SortTarget {
	case SortByKey:
		sorter = byKey{kvs}
	case SortByVersion:
		sorter = byVersion{kvs}
	case SortByCreate:
		sorter = byCreate{kvs}
	case SortByMod:
		sorter = byMod{kvs}
	case SortByValue:
		sorter = byValue{kvs}
	default:
		return
	}
	switch order {
	case SortAscend:
		sort.Sort(sorter)
	case SortDescend:
		sort.Sort(sort.Reverse(sorter))
	}
}

type kvSlice []*KeyValue

func (s kvSlice) Len() int      { return len(s) }
func (s kvSlice) Swap(i, j int) { s[i], s[j] = s[j], s[i] }

type byKey struct{ kvSlice }

func (s byKey) Less(i, j int) bool { return bytes.Compare(s.kvSlice[i].Key, s.kvSlice[j].Key) < 0 }

type byVersion struct{ kvSlice }

func (s byVersion) Less(i, j int) bool { return s.kvSlice[i].Version < s.kvSlice[j].Version }

type byCreate struct{ kvSlice }

func (s byCreate) Less(i, j int) bool {
	return s.kvSlice[i].CreateRevision < s.kvSlice[j].CreateRevision
}

type byMod struct{ kvSlice }

func (s byMod) Less(i, j int) bool { return s.kvSlice[i].ModRevision < s.kvSlice[j].ModRevision }

type byValue struct{ kvSlice }

func (s byValue) Less(i, j int) bool {
	return bytes.Compare(s.kvSlice[i].Value, s.kvSlice[j].Value) < 0
}
