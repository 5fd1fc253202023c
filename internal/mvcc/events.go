package mvcc

import (
	"cmp"
	"slices"
	"sort"
)

// CompactedError is the error Events returns when the history it was asked for has been compacted away.
// errors.Is(err, ErrCompacted) holds for it; errors.As gives the compaction revision, which a watch needs for
// its cancel response.
type CompactedError struct {
	CompactRev int64 // the store's compaction revision when the read failed
}

func (e *CompactedError) Error() string { return ErrCompacted.Error() }

// Unwrap makes errors.Is(err, ErrCompacted) hold.
func (e *CompactedError) Unwrap() error { return ErrCompacted }

// Events returns every change to the keys in [key, end) (end as in RangeRequest: nil or empty is the single key
// key, "\x00" is every key >= key) with a revision in [from, to], ordered by (revision, sub-revision): exactly the
// events the Txns that made them returned, in the same order. A delete event's KV holds Key and ModRevision (the
// delete's revision). With prevKV each event carries the key's previous live version (nil if the key had none,
// or if that version was compacted away, which can only happen to events at the compaction revision itself, as
// in etcd where the previous version is read at ModRevision-1); without it PrevKV is nil.
//
// Errors: ErrFutureRev when to is above Rev(); a *CompactedError (errors.Is ErrCompacted) when the store was
// compacted and from is below CompactRev(). Like etcd's watchable store, from equal to the compaction revision is
// served: compaction keeps every version written at that revision. from below 1 reads from revision 1; from > to
// returns nothing.
//
// limit > 0 caps the number of distinct revisions returned (a revision's events are never split); more reports
// that events of later revisions in the window were left out. Read them with from = the last returned
// revision + 1.
//
// The byte slices of the returned KeyValues are shared with the store: treat them as read-only.
//
// Cost: O(log n + k·log v + e·log e) for k keys in the interval (each with up to v retained versions), e of
// whose versions fall in the window; a key with no write at or after from costs O(1) after the tree walk, so
// a watcher a few revisions behind on a prefix pays one short step per key of the prefix plus its events.
func (s *Store) Events(key, end []byte, from, to int64, prevKV bool, limit int) (evs []Event, more bool, err error) {
	if to > s.rev {
		return nil, false, ErrFutureRev
	}
	if s.compactRev > 0 && from < s.compactRev {
		return nil, false, &CompactedError{CompactRev: s.compactRev}
	}
	from = max(from, 1)
	if from > to {
		return nil, false, nil
	}

	type ref struct {
		e *keyEntry
		i int // index into e.revs
	}
	var refs []ref
	s.visit(key, end, func(e *keyEntry) bool {
		n := len(e.revs)
		if n == 0 || e.revs[n-1].mod < from {
			return true
		}
		i := sort.Search(n, func(i int) bool { return e.revs[i].mod >= from })
		for ; i < n && e.revs[i].mod <= to; i++ {
			refs = append(refs, ref{e, i})
		}
		return true
	})
	if len(refs) == 0 {
		return nil, false, nil
	}
	slices.SortFunc(refs, func(a, b ref) int {
		va, vb := &a.e.revs[a.i], &b.e.revs[b.i]
		if c := cmp.Compare(va.mod, vb.mod); c != 0 {
			return c
		}
		return cmp.Compare(va.sub, vb.sub)
	})
	if limit > 0 {
		revs := 0
		last := int64(0)
		for j, r := range refs {
			if mod := r.e.revs[r.i].mod; mod != last {
				if revs == limit {
					refs, more = refs[:j], true
					break
				}
				revs++
				last = mod
			}
		}
	}

	evs = make([]Event, len(refs))
	kvs := make([]KeyValue, 0, 2*len(refs)) // one slab for KVs and PrevKVs; never grows past its capacity
	for j, r := range refs {
		v := &r.e.revs[r.i]
		ev := &evs[j]
		if v.tomb {
			ev.Type = EventDelete
			kvs = append(kvs, KeyValue{Key: r.e.key, ModRevision: v.mod})
		} else {
			ev.Type = EventPut
			kvs = append(kvs, r.e.kv(v))
		}
		ev.KV = &kvs[len(kvs)-1]
		if prevKV && r.i > 0 {
			if p := &r.e.revs[r.i-1]; !p.tomb {
				kvs = append(kvs, r.e.kv(p))
				ev.PrevKV = &kvs[len(kvs)-1]
			}
		}
	}
	return evs, more, nil
}
