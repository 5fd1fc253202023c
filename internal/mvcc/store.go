package mvcc

import (
	"bytes"
	"sort"

	"github.com/google/btree"
)

// btreeDegree is the degree of the key index. 32 keeps nodes a few cache lines wide and the tree shallow.
const btreeDegree = 32

// Store is the in-memory MVCC key-value store. It is a pure state machine: no I/O except through the
// io.Reader/io.Writer handed to it, no goroutines, no clock, no randomness.
//
// A Store is not safe for concurrent use. The caller serializes every mutating call (Txn, Compact) and may run
// read-only calls (Range, Rev, CompactRev, KeyCount, Size, Hash, HashKV, WriteTo, and Txn on a request without
// puts or deletes, which changes nothing) concurrently with each other only while holding a read lock that
// excludes the writer. A Clone is independent: it may be read in another goroutine
// while the original keeps taking writes.
type Store struct {
	tree *btree.BTreeG[*keyEntry]
	// cow identifies the entries this Store may mutate in place; entries created before a Clone belong to no
	// live store and are copied before they change.
	cow *cowToken

	rev        int64 // current revision; 1 for an empty store
	compactRev int64 // revision of the last compaction; -1 if never compacted (as in etcd)
	keyCount   int   // live keys at rev
	size       int64 // Size's estimate, kept up to date by every change
}

// Size accounting: each key costs its length plus entryOverhead, each
// retained version its value's length plus versionOverhead (about what the
// index node, the version record and the slices' headers take).
const (
	entryOverhead   = 96
	versionOverhead = 64
)

// Size estimates the memory the store's data takes, in bytes: every key and
// every retained version (history up to the last compaction included). It
// is what the space quota (--quota-backend-bytes) measures.
func (s *Store) Size() int64 { return s.size }

func entrySize(e *keyEntry) int64 {
	n := int64(entryOverhead + len(e.key))
	for i := range e.revs {
		n += versionSize(&e.revs[i])
	}
	return n
}

func versionSize(v *version) int64 { return int64(versionOverhead + len(v.value)) }

// recomputeSize sets size from the data (after a restore).
func (s *Store) recomputeSize() {
	s.size = 0
	s.tree.Ascend(func(e *keyEntry) bool {
		s.size += entrySize(e)
		return true
	})
}

// cowToken is a unique identity (non-zero size so that two tokens never share an address).
type cowToken struct{ _ byte }

// keyEntry holds every retained version of one key, oldest first, ordered by (mod, sub). An entry whose cow is
// not the owning Store's is shared with a clone and must be copied before it is changed; versions already in
// revs are never modified in place.
type keyEntry struct {
	key  []byte
	revs []version
	cow  *cowToken
}

// version is one write of a key. A tombstone records a delete and carries only mod and sub.
type version struct {
	mod    int64 // main revision of the write
	sub    int64 // order of the write within its txn
	create int64
	ver    int64
	lease  int64
	value  []byte
	tomb   bool
}

func entryLess(a, b *keyEntry) bool { return bytes.Compare(a.key, b.key) < 0 }

// New returns an empty store at revision 1.
func New() *Store {
	return &Store{
		tree:       btree.NewG(btreeDegree, entryLess),
		cow:        new(cowToken),
		rev:        1,
		compactRev: -1,
	}
}

// Rev returns the current revision. An empty store is at revision 1; every txn that writes adds one.
func (s *Store) Rev() int64 { return s.rev }

// CompactRev returns the revision of the last compaction, 0 if there was none.
func (s *Store) CompactRev() int64 { return max(s.compactRev, 0) }

// KeyCount returns the number of live keys at the current revision.
func (s *Store) KeyCount() int { return s.keyCount }

// Clone returns an independent copy of the store in O(1): the key index is shared copy-on-write, and neither
// copy changes data the other can see. The clone may be read (for example serialized with WriteTo) in another
// goroutine while the original keeps taking writes. Clone itself is a mutating call for locking purposes.
func (s *Store) Clone() *Store {
	c := &Store{
		tree:       s.tree.Clone(),
		cow:        new(cowToken),
		rev:        s.rev,
		compactRev: s.compactRev,
		keyCount:   s.keyCount,
		size:       s.size,
	}
	s.cow = new(cowToken) // every entry is now shared: copy before changing it
	return c
}

// get returns the entry of key, or nil.
func (s *Store) get(key []byte) *keyEntry {
	e, ok := s.tree.Get(&keyEntry{key: key})
	if !ok {
		return nil
	}
	return e
}

// mutable returns the entry of key that this store may append to, creating it (and inserting it) if needed.
func (s *Store) mutable(key []byte) *keyEntry {
	e := s.get(key)
	if e != nil && e.cow == s.cow {
		return e
	}
	ne := &keyEntry{key: key, cow: s.cow}
	if e != nil {
		ne.key = e.key
		ne.revs = make([]version, len(e.revs), len(e.revs)+1)
		copy(ne.revs, e.revs)
	} else {
		s.size += entryOverhead + int64(len(key))
	}
	s.tree.ReplaceOrInsert(ne)
	return ne
}

// latest returns the newest version of the entry if it is live, else nil.
func (e *keyEntry) latest() *version {
	if n := len(e.revs); n > 0 && !e.revs[n-1].tomb {
		return &e.revs[n-1]
	}
	return nil
}

// at returns the version of the entry visible at rev (the newest with mod <= rev) if it is live, else nil.
func (e *keyEntry) at(rev int64) *version {
	n := len(e.revs)
	if n == 0 {
		return nil
	}
	var v *version
	if e.revs[n-1].mod <= rev {
		v = &e.revs[n-1]
	} else {
		i := sort.Search(n, func(i int) bool { return e.revs[i].mod > rev }) - 1
		if i < 0 {
			return nil
		}
		v = &e.revs[i]
	}
	if v.tomb {
		return nil
	}
	return v
}

func (e *keyEntry) kv(v *version) KeyValue {
	return KeyValue{Key: e.key, CreateRevision: v.create, ModRevision: v.mod, Version: v.ver, Value: v.value, Lease: v.lease}
}

// isGte reports whether end means "every key >= key" (etcd encodes it as a single zero byte).
func isGte(end []byte) bool { return len(end) == 1 && end[0] == 0 }

// visit calls f, in key order, for each entry in the interval selected by key and end (see RangeRequest) until f
// returns false.
func (s *Store) visit(key, end []byte, f func(e *keyEntry) bool) {
	if len(end) == 0 {
		if e := s.get(key); e != nil {
			f(e)
		}
		return
	}
	gte := isGte(end)
	s.tree.AscendGreaterOrEqual(&keyEntry{key: key}, func(e *keyEntry) bool {
		if !gte && bytes.Compare(e.key, end) >= 0 {
			return false
		}
		return f(e)
	})
}
