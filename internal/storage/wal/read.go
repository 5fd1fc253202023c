package wal

import (
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// segment names one segment file: <seq:016x>-<first:016x>.wal.
type segment struct {
	seq   uint64 // position in the log, contiguous from the oldest kept segment
	first uint64 // lastIndex+1 when the segment was cut; no live entry of an older segment is >= first
}

const (
	segmentSuffix = ".wal"
	tmpSuffix     = ".tmp"
	lockName      = "wal.lock"
)

func (s segment) name() string { return fmt.Sprintf("%016x-%016x%s", s.seq, s.first, segmentSuffix) }

func parseSegmentName(name string) (segment, bool) {
	base, ok := strings.CutSuffix(name, segmentSuffix)
	if !ok || len(base) != 33 || base[16] != '-' {
		return segment{}, false
	}
	seq, err1 := strconv.ParseUint(base[:16], 16, 64)
	first, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return segment{}, false
	}
	return segment{seq: seq, first: first}, true
}

// listSegments returns the segments of dir in order and the names of stale
// temporary files left by an interrupted cut.
func listSegments(fs vfs.FS, dir string) (segs []segment, tmps []string, err error) {
	names, err := fs.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names { // sorted, and the fixed-width hex names sort by seq
		if s, ok := parseSegmentName(n); ok {
			segs = append(segs, s)
		} else if strings.HasSuffix(n, segmentSuffix+tmpSuffix) {
			tmps = append(tmps, n)
		}
	}
	return segs, tmps, nil
}

// replayer folds records, in log order, into a State.
type replayer struct {
	st       State
	last     uint64 // index of the last entry in the log (or of the snapshot, if later)
	sawEntry bool
	haveMeta bool
}

func (r *replayer) apply(seg segment, rec record, off int) error {
	corrupt := func(format string, args ...any) error {
		return &CorruptError{File: seg.name(), Offset: int64(off), Reason: fmt.Sprintf(format, args...)}
	}
	switch rec.typ {
	case recSegment:
		h, err := decodeSegmentHeader(rec.payload)
		if err != nil {
			return corrupt("%v", err)
		}
		if h.seq != seg.seq || h.first != seg.first {
			return corrupt("segment header says seq %d first index %d, file name says seq %d first index %d",
				h.seq, h.first, seg.seq, seg.first)
		}
	case recMetadata:
		if !r.haveMeta {
			r.st.Metadata = append([]byte{}, rec.payload...)
			r.haveMeta = true
		} else if string(rec.payload) != string(r.st.Metadata) {
			return corrupt("metadata differs from the first segment's")
		}
	case recSnapshot:
		m, err := decodeMarker(rec.payload)
		if err != nil {
			return corrupt("%v", err)
		}
		r.st.Snapshot = m
		r.last = max(r.last, m.Index)
		ents := r.st.Entries
		k := 0
		for k < len(ents) && ents[k].GetIndex() <= m.Index {
			k++
		}
		if k > 0 {
			r.st.Entries = append([]*raftpb.Entry(nil), ents[k:]...)
		}
	case recHardState:
		hs := &raftpb.HardState{}
		if err := proto.Unmarshal(rec.payload, hs); err != nil {
			return corrupt("hardstate: %v", err)
		}
		r.st.HardState = hs
	case recEntry:
		e := &raftpb.Entry{}
		if err := proto.Unmarshal(rec.payload, e); err != nil {
			return corrupt("entry: %v", err)
		}
		idx := e.GetIndex()
		if idx == 0 {
			return corrupt("entry with index 0")
		}
		// The first entry read may start anywhere (older segments may have
		// been released); after that the log must be contiguous.
		if r.sawEntry && idx > r.last+1 {
			return corrupt("entry %d leaves a gap after %d", idx, r.last)
		}
		// Keep Entries contiguous: a rewrite drops idx and everything after
		// it; a jump past a snapshot marker drops entries it covers.
		ents := r.st.Entries
		if n := len(ents); n > 0 {
			first, lastEnt := ents[0].GetIndex(), ents[n-1].GetIndex()
			switch {
			case idx < first || idx > lastEnt+1:
				ents = ents[:0]
			case idx <= lastEnt:
				ents = ents[:idx-first]
			}
		}
		r.st.Entries = append(ents, e)
		r.last = max(idx, r.st.Snapshot.Index)
		r.sawEntry = true
	}
	return nil
}

// finish checks the folded log continues from the snapshot marker.
func (r *replayer) finish(firstSeg segment) (*State, error) {
	st := &r.st
	k := 0
	for k < len(st.Entries) && st.Entries[k].GetIndex() <= st.Snapshot.Index {
		k++
	}
	st.Entries = st.Entries[k:]
	if len(st.Entries) > 0 && st.Entries[0].GetIndex() != st.Snapshot.Index+1 {
		return nil, &CorruptError{File: firstSeg.name(), Offset: 0, Reason: fmt.Sprintf(
			"log starts at entry %d but the snapshot marker is at %d (missing segments?)",
			st.Entries[0].GetIndex(), st.Snapshot.Index)}
	}
	if st.HardState == nil {
		st.HardState = &raftpb.HardState{}
	}
	if len(st.Entries) == 0 {
		st.Entries = nil
	}
	return st, nil
}

// scanResult describes where the valid records of a segment end.
type scanResult struct {
	end    int    // offset just past the last valid record
	torn   bool   // the bytes from end on are not all zero and must be cleared
	reason string // why the record at end is invalid, if torn
}

// scanSegment feeds every valid record of data (one whole segment file) to
// r and classifies what follows the last one. In a sealed (non-last)
// segment anything but zeros after the last record is corruption. In the
// last segment an invalid record followed only by zeros or garbage is a torn
// tail; an invalid record followed by any valid record is corruption.
func scanSegment(data []byte, seg segment, last bool, r *replayer) (scanResult, error) {
	name := seg.name()
	off := 0
	var bad error
	for {
		rec, n, err := decodeRecord(data, off)
		if err == errEndOfLog {
			break
		}
		if err != nil {
			bad = err
			break
		}
		if (off == 0) != (rec.typ == recSegment) {
			return scanResult{}, &CorruptError{File: name, Offset: int64(off), Reason: "segment header misplaced"}
		}
		if err := r.apply(seg, rec, off); err != nil {
			return scanResult{}, err
		}
		off += n
	}
	if off == 0 {
		reason := "missing segment header"
		if bad != nil {
			reason += ": " + bad.Error()
		}
		return scanResult{}, &CorruptError{File: name, Offset: 0, Reason: reason}
	}
	reason := "non-zero bytes after the end of the log"
	if bad != nil {
		reason = bad.Error()
	}
	if !last {
		if bad != nil || !allZero(data[off:]) {
			return scanResult{}, &CorruptError{File: name, Offset: int64(off), Reason: reason + " (in a sealed segment)"}
		}
		return scanResult{end: off}, nil
	}
	if p := findValidRecord(data, off+recordAlign); p >= 0 {
		return scanResult{}, &CorruptError{File: name, Offset: int64(off),
			Reason: fmt.Sprintf("%s, followed by a valid record at offset %d", reason, p)}
	}
	if bad == nil && allZero(data[off:]) {
		return scanResult{end: off}, nil
	}
	return scanResult{end: off, torn: true, reason: reason}, nil
}

// findValidRecord returns the first aligned offset >= from holding a valid
// frame, or -1.
func findValidRecord(data []byte, from int) int {
	p := from
	for p+recordHeaderSize <= len(data) {
		// A valid record has a non-zero length, so it starts at most 3 bytes
		// before a non-zero byte: jump over zero runs.
		nz := firstNonZero(data[p:])
		if nz < 0 {
			return -1
		}
		if nz >= recordAlign {
			p += (nz - 3 + recordAlign - 1) &^ (recordAlign - 1)
			continue
		}
		if _, _, err := decodeRecord(data, p); err == nil {
			return p
		}
		p += recordAlign
	}
	return -1
}

// readAll reads the whole file into buf (reused when large enough).
func readAll(f vfs.File, buf []byte) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil {
		return buf, err
	}
	size := int(fi.Size())
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	n, err := f.ReadAt(buf, 0)
	if n == size {
		err = nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return buf, err
}

func segPath(dir string, s segment) string { return filepath.Join(dir, s.name()) }
