package mvcc

import (
	"encoding/binary"
	"hash"
	"hash/crc32"
)

// Compact discards every version that no read at a revision >= rev needs. It fails with ErrCompacted when rev is
// not above the last compaction revision and ErrFutureRev when rev is above the current revision.
//
// Per key it follows etcd 3.7's key index: the newest version at or below rev is kept, except a tombstone below
// rev, which goes with everything older; a tombstone exactly at rev is kept (a watcher starting at the compaction
// revision still sees the delete). Keys left with no version leave the index. Cost: O(keys).
func (s *Store) Compact(rev int64) error {
	if rev <= s.compactRev {
		return ErrCompacted
	}
	if rev > s.rev {
		return ErrFutureRev
	}
	s.compactRev = rev
	var (
		drop    []*keyEntry
		replace []*keyEntry
	)
	s.tree.Ascend(func(e *keyEntry) bool {
		keep := compactFrom(e.revs, rev)
		switch {
		case keep == 0:
		case keep == len(e.revs):
			drop = append(drop, e)
			s.size -= entrySize(e)
		default:
			for i := range e.revs[:keep] {
				s.size -= versionSize(&e.revs[i])
			}
			ne := &keyEntry{key: e.key, revs: make([]version, len(e.revs)-keep), cow: s.cow}
			copy(ne.revs, e.revs[keep:])
			replace = append(replace, ne)
		}
		return true
	})
	for _, e := range drop {
		s.tree.Delete(e)
	}
	for _, e := range replace {
		s.tree.ReplaceOrInsert(e)
	}
	return nil
}

// compactFrom returns the index of the first version of revs that a compaction at rev keeps.
//
// The versions form generations, each ended by a tombstone (the last one may be open). The generation that stays
// is the first whose tombstone is at or above rev (or the open one); within it, the newest version at or below
// rev and everything after stay.
func compactFrom(revs []version, rev int64) int {
	g0 := 0 // first index of the chosen generation
	end := len(revs)
	for i := range revs {
		if !revs[i].tomb {
			continue
		}
		if revs[i].mod >= rev {
			end = i + 1
			break
		}
		g0 = i + 1
	}
	keep := g0
	for i := g0; i < end && revs[i].mod <= rev; i++ {
		keep = i
	}
	return keep
}

// Hash returns a CRC-32C of the whole state: the current and compaction revisions and every retained version of
// every key. Replicas that applied the same calls have the same Hash.
func (s *Store) Hash() uint32 {
	h := newHasher(s.rev, s.compactRev)
	s.tree.Ascend(func(e *keyEntry) bool {
		for i := range e.revs {
			h.version(e.key, &e.revs[i])
		}
		return true
	})
	return h.Sum32()
}

// HashKV returns a CRC-32C over the compaction revision and every retained version with a revision at or below
// rev (0: the current revision), in key then revision order; hashRev is the revision hashed and compactRev the
// compaction revision (-1 if the store was never compacted, as etcd reports it). It fails with ErrFutureRev above
// the current revision and ErrCompacted below the compaction revision.
func (s *Store) HashKV(rev int64) (hash uint32, hashRev int64, compactRev int64, err error) {
	if rev == 0 {
		rev = s.rev
	}
	if rev > s.rev {
		return 0, 0, 0, ErrFutureRev
	}
	if rev < s.compactRev {
		return 0, 0, 0, ErrCompacted
	}
	h := newHasher(rev, s.compactRev)
	s.tree.Ascend(func(e *keyEntry) bool {
		for i := range e.revs {
			if e.revs[i].mod > rev {
				break
			}
			h.version(e.key, &e.revs[i])
		}
		return true
	})
	return h.Sum32(), rev, s.compactRev, nil
}

type hasher struct {
	hash.Hash32
	buf []byte
}

func newHasher(rev, compactRev int64) *hasher {
	h := &hasher{Hash32: crc32.New(crc32.MakeTable(crc32.Castagnoli)), buf: make([]byte, 0, 64)}
	h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(rev))
	h.buf = binary.BigEndian.AppendUint64(h.buf, uint64(compactRev))
	_, _ = h.Write(h.buf)
	return h
}

func (h *hasher) version(key []byte, v *version) {
	b := h.buf[:0]
	b = binary.BigEndian.AppendUint32(b, uint32(len(key)))
	_, _ = h.Write(b)
	_, _ = h.Write(key)
	b = b[:0]
	var flags byte
	if v.tomb {
		flags = 1
	}
	b = append(b, flags)
	b = binary.BigEndian.AppendUint64(b, uint64(v.mod))
	b = binary.BigEndian.AppendUint64(b, uint64(v.sub))
	b = binary.BigEndian.AppendUint64(b, uint64(v.create))
	b = binary.BigEndian.AppendUint64(b, uint64(v.ver))
	b = binary.BigEndian.AppendUint64(b, uint64(v.lease))
	b = binary.BigEndian.AppendUint32(b, uint32(len(v.value)))
	_, _ = h.Write(b)
	_, _ = h.Write(v.value)
	h.buf = b
}
