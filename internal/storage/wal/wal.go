package wal

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// DefaultSegmentSize is the preallocated size of a segment file.
const DefaultSegmentSize = 64 << 20

// slowSync is the fsync duration above which a Warn is logged.
const slowSync = time.Second

var (
	// ErrCorrupt means the log holds a record that is not a torn tail. Open
	// returns it wrapped in a *CorruptError naming the file and offset.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrExist is returned by Create when dir already holds a WAL.
	ErrExist = errors.New("wal: directory already holds a WAL")
	// ErrNoWAL is returned by Open when dir holds no WAL.
	ErrNoWAL = errors.New("wal: no WAL in directory")
	// ErrFailed is returned by every write after an earlier write or fsync
	// failed: the state of the file is unknown, so the WAL stops.
	ErrFailed = errors.New("wal: stopped after an earlier I/O error")
	// ErrClosed is returned by methods called after Close.
	ErrClosed = errors.New("wal: closed")
	// ErrOutOfOrder is returned by Save for entries that do not continue the
	// log (a gap, or not consecutive) and by SaveSnapshot for a marker older
	// than the last one. Nothing is written.
	ErrOutOfOrder = errors.New("wal: out of order")
	// ErrTooLarge is returned by Save for an entry too large for one record.
	ErrTooLarge = errors.New("wal: record too large")
)

// CorruptError locates a corrupt record. errors.Is(err, ErrCorrupt) holds.
type CorruptError struct {
	File   string // segment file name (no directory)
	Offset int64  // byte offset of the bad record in File
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt record in %s at offset %d: %s", e.File, e.Offset, e.Reason)
}

func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// Options configures a WAL. The zero value is usable.
type Options struct {
	// SegmentSize is the preallocated size of each segment file in bytes
	// (default DefaultSegmentSize). A new segment is cut when a write would
	// pass it; a single write larger than a segment grows its segment.
	SegmentSize int64
	// Logger receives torn-tail repairs and slow fsyncs (default: discard).
	Logger *slog.Logger

	now func() time.Time // tests only; default time.Now
}

func (o Options) withDefaults() (Options, error) {
	if o.SegmentSize < 0 {
		return o, fmt.Errorf("wal: SegmentSize %d is negative", o.SegmentSize)
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.now == nil {
		o.now = time.Now
	}
	return o, nil
}

// Marker records the snapshot the log continues from.
type Marker struct {
	Index, Term uint64
}

// State is what Open recovered.
type State struct {
	Metadata []byte
	// HardState is the last one saved; never nil (empty if none was saved).
	HardState *raftpb.HardState
	// Snapshot is the last marker saved (zero if none).
	Snapshot Marker
	// Entries holds every entry after Snapshot.Index in log order, a later
	// write of an index having replaced the earlier one and everything after
	// it. Entries[0].Index == Snapshot.Index+1 when non-empty.
	Entries []*raftpb.Entry
}

// WAL is an open write-ahead log. Its methods are safe for concurrent use,
// but raft's Ready loop is expected to be the only writer.
type WAL struct {
	fs     vfs.FS
	dir    string
	opts   Options
	logger *slog.Logger

	mu           sync.Mutex // protects the fields below
	lock         io.Closer  // the directory lock
	failed       error      // sticky: first write or fsync error
	closed       bool
	metadata     []byte
	segs         []segment // oldest first; the last is open as f
	f            vfs.File
	off          int64 // end of the records in f
	segHeaderLen int64 // size of f's header block; 0 if unknown (opened)
	unsynced     bool  // f has writes not yet fsynced
	lastIndex    uint64
	marker       Marker
	hs           *raftpb.HardState // last saved, never nil
	buf          []byte            // reused encode buffer
}

// Exists reports whether dir holds a WAL segment.
func Exists(fs vfs.FS, dir string) bool {
	segs, _, err := listSegments(fs, dir)
	return err == nil && len(segs) > 0
}

// Create makes a new WAL in dir (created if missing), whose every segment
// carries metadata. dir must not hold a WAL. The first segment is durable
// when Create returns.
func Create(fs vfs.FS, dir string, metadata []byte, opts Options) (*WAL, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := vfs.MkdirAllSync(fs, dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	lock, err := fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	segs, tmps, err := listSegments(fs, dir)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	if len(segs) > 0 {
		lock.Close()
		return nil, fmt.Errorf("%w: %s", ErrExist, dir)
	}
	w := &WAL{
		fs: fs, dir: dir, opts: opts, logger: opts.Logger,
		lock:     lock,
		metadata: append([]byte{}, metadata...),
		hs:       &raftpb.HardState{},
	}
	w.removeTmps(tmps)
	if err := w.cutLocked(); err != nil {
		lock.Close()
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	return w, nil
}

// Open reads the WAL in dir and returns it ready for appending, with the
// recovered State. A torn tail of the last segment is repaired (logged at
// Warn); any other damage is a *CorruptError (ErrCorrupt).
func Open(fs vfs.FS, dir string, opts Options) (*WAL, *State, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, nil, err
	}
	if _, err := fs.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("%w: %s", ErrNoWAL, dir)
		}
		return nil, nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	lock, err := fs.Lock(filepath.Join(dir, lockName))
	if err != nil {
		return nil, nil, fmt.Errorf("wal: lock %s: %w", dir, err)
	}
	w, st, err := open(fs, dir, opts, lock)
	if err != nil {
		lock.Close()
		return nil, nil, err
	}
	return w, st, nil
}

func open(fs vfs.FS, dir string, opts Options, lock io.Closer) (*WAL, *State, error) {
	segs, tmps, err := listSegments(fs, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	if len(segs) == 0 {
		return nil, nil, fmt.Errorf("%w: %s", ErrNoWAL, dir)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].seq != segs[i-1].seq+1 {
			return nil, nil, &CorruptError{File: segs[i].name(), Offset: 0,
				Reason: fmt.Sprintf("segment sequence jumps from %d to %d (segments missing)", segs[i-1].seq, segs[i].seq)}
		}
	}
	w := &WAL{fs: fs, dir: dir, opts: opts, logger: opts.Logger, lock: lock, segs: segs}
	w.removeTmps(tmps)

	var r replayer
	var buf []byte
	for i, s := range segs {
		last := i == len(segs)-1
		flag := os.O_RDONLY
		if last {
			flag = os.O_RDWR
		}
		f, err := fs.OpenFile(segPath(dir, s), flag, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("wal: open %s: %w", s.name(), err)
		}
		buf, err = readAll(f, buf)
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("wal: read %s: %w", s.name(), err)
		}
		res, err := scanSegment(buf, s, last, &r)
		if err != nil {
			f.Close()
			return nil, nil, err
		}
		if !last {
			f.Close()
			continue
		}
		if res.torn {
			if err := repairTail(f, int64(res.end), int64(len(buf))); err != nil {
				f.Close()
				return nil, nil, fmt.Errorf("wal: repair torn tail of %s: %w", s.name(), err)
			}
			w.logger.Warn("wal: repaired torn tail", "file", s.name(), "offset", res.end,
				"dropped_bytes", len(buf)-res.end, "reason", res.reason)
		}
		if _, err := f.Seek(int64(res.end), io.SeekStart); err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("wal: open %s: %w", s.name(), err)
		}
		w.f, w.off = f, int64(res.end)
	}
	st, err := r.finish(segs[0])
	if err != nil {
		w.f.Close()
		return nil, nil, err
	}
	w.metadata = st.Metadata
	w.lastIndex = r.last
	w.marker = st.Snapshot
	w.hs = proto.CloneOf(st.HardState)
	return w, st, nil
}

// repairTail zeroes the file from end to size and makes that durable.
func repairTail(f vfs.File, end, size int64) error {
	if err := f.Truncate(end); err != nil {
		return err
	}
	if err := vfs.Preallocate(f, size); err != nil {
		return err
	}
	return f.Sync()
}

func (w *WAL) removeTmps(tmps []string) {
	for _, t := range tmps {
		if err := w.fs.Remove(filepath.Join(w.dir, t)); err != nil {
			w.logger.Warn("wal: cannot remove stale temporary segment", "file", t, "err", err)
		}
	}
}

func (w *WAL) checkLocked() error {
	if w.closed {
		return ErrClosed
	}
	if w.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, w.failed)
	}
	return nil
}

// failLocked makes err sticky and returns it.
func (w *WAL) failLocked(err error) error {
	if w.failed == nil {
		w.failed = err
	}
	return err
}

func hsEmpty(hs *raftpb.HardState) bool {
	return hs.GetTerm() == 0 && hs.GetVote() == 0 && hs.GetCommit() == 0
}

func hsEqual(a, b *raftpb.HardState) bool {
	return a.GetTerm() == b.GetTerm() && a.GetVote() == b.GetVote() && a.GetCommit() == b.GetCommit()
}

// Save appends ents and, if it is non-empty and changed, hs, in one write,
// then fsyncs once if sync is set. ents must be consecutive and the first
// must be at most one past the last saved index (or the snapshot marker);
// an index at or below the last one rewrites the log from there. hs may be
// nil. Any write or fsync error is sticky: later calls fail with ErrFailed.
func (w *WAL) Save(hs *raftpb.HardState, ents []*raftpb.Entry, sync bool) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkLocked(); err != nil {
		return err
	}
	if len(ents) > 0 {
		if first := ents[0].GetIndex(); first == 0 || first > w.lastIndex+1 {
			return fmt.Errorf("%w: entry %d does not follow last index %d", ErrOutOfOrder, first, w.lastIndex)
		}
		for i := 1; i < len(ents); i++ {
			if ents[i].GetIndex() != ents[i-1].GetIndex()+1 {
				return fmt.Errorf("%w: entry %d follows entry %d", ErrOutOfOrder, ents[i].GetIndex(), ents[i-1].GetIndex())
			}
		}
	}
	buf := w.buf[:0]
	var err error
	for _, e := range ents {
		if buf, err = appendEntryRecord(buf, e); err != nil {
			return fmt.Errorf("wal: encode entry %d: %w", e.GetIndex(), err)
		}
	}
	writeHS := hs != nil && !hsEmpty(hs) && !hsEqual(hs, w.hs)
	if writeHS {
		if buf, err = appendHardStateRecord(buf, hs); err != nil {
			return fmt.Errorf("wal: encode hardstate: %w", err)
		}
	}
	w.buf = buf
	if len(buf) > 0 {
		if err := w.writeLocked(buf); err != nil {
			return err
		}
		if len(ents) > 0 {
			w.lastIndex = max(ents[len(ents)-1].GetIndex(), w.marker.Index)
		}
		if writeHS {
			w.hs = proto.CloneOf(hs)
		}
	}
	if sync {
		return w.syncLocked()
	}
	return nil
}

// SaveSnapshot appends a snapshot marker and fsyncs. Save the marker before
// the entries that follow the snapshot; markers must not go backwards.
func (w *WAL) SaveSnapshot(m Marker) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.checkLocked(); err != nil {
		return err
	}
	if m.Index < w.marker.Index {
		return fmt.Errorf("%w: snapshot marker %d is older than %d", ErrOutOfOrder, m.Index, w.marker.Index)
	}
	w.buf = appendSnapshotRecord(w.buf[:0], m)
	if err := w.writeLocked(w.buf); err != nil {
		return err
	}
	w.marker = m
	w.lastIndex = max(w.lastIndex, m.Index)
	return w.syncLocked()
}

// writeLocked appends buf to the current segment, cutting a new segment
// first if buf would pass the segment size.
func (w *WAL) writeLocked(buf []byte) error {
	if w.off+int64(len(buf)) > w.opts.SegmentSize && w.off > w.segHeaderLen {
		if err := w.cutLocked(); err != nil {
			return w.failLocked(fmt.Errorf("wal: cut segment: %w", err))
		}
	}
	n, err := w.f.Write(buf)
	if err == nil && n < len(buf) {
		err = io.ErrShortWrite
	}
	w.off += int64(n)
	if n > 0 {
		w.unsynced = true
	}
	if err != nil {
		return w.failLocked(fmt.Errorf("wal: write %s: %w", w.f.Name(), err))
	}
	return nil
}

func (w *WAL) syncLocked() error {
	if !w.unsynced {
		return nil
	}
	start := w.opts.now()
	err := w.f.Sync()
	if d := w.opts.now().Sub(start); d > slowSync {
		w.logger.Warn("wal: slow fsync", "file", w.f.Name(), "duration", d)
	}
	if err != nil {
		return w.failLocked(fmt.Errorf("wal: fsync %s: %w", w.f.Name(), err))
	}
	w.unsynced = false
	return nil
}

// cutLocked seals the current segment (fsync) and starts the next one: it
// is written as a temporary file (header, metadata, snapshot marker,
// hardstate), preallocated, fsynced, renamed into place and the directory
// fsynced, so a visible segment always has a valid header.
func (w *WAL) cutLocked() error {
	if w.f != nil {
		if err := w.syncLocked(); err != nil {
			return err
		}
	}
	s := segment{seq: 0, first: w.lastIndex + 1}
	if n := len(w.segs); n > 0 {
		s.seq = w.segs[n-1].seq + 1
	}
	path := segPath(w.dir, s)
	tmp := path + tmpSuffix
	f, err := w.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	hdr := appendSegmentRecord(nil, s.seq, s.first)
	hdr = appendRawRecord(hdr, recMetadata, w.metadata)
	hdr = appendSnapshotRecord(hdr, w.marker)
	if !hsEmpty(w.hs) {
		if hdr, err = appendHardStateRecord(hdr, w.hs); err != nil {
			f.Close()
			return err
		}
	}
	err = writeFull(f, hdr)
	if err == nil {
		err = vfs.Preallocate(f, w.opts.SegmentSize)
	}
	if err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = w.fs.Rename(tmp, path)
	}
	if err == nil {
		err = w.fs.SyncDir(w.dir)
	}
	if err != nil {
		f.Close()
		return err
	}
	if w.f != nil {
		if err := w.f.Close(); err != nil {
			w.logger.Warn("wal: close sealed segment", "file", w.f.Name(), "err", err)
		}
	}
	w.f = f
	w.off = int64(len(hdr))
	w.segHeaderLen = w.off
	w.unsynced = false
	w.segs = append(w.segs, s)
	return nil
}

func writeFull(f vfs.File, b []byte) error {
	n, err := f.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// ReleaseTo removes whole segments that hold no live entry at or above
// index, oldest first, always keeping the newest keep such segments and the
// current segment. index is capped at the last snapshot marker's Index+1:
// entries not covered by a snapshot are never released.
func (w *WAL) ReleaseTo(index uint64, keep int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	bound := min(index, w.marker.Index+1)
	// Segment i holds no live entry >= segs[i+1].first.
	k := 0
	for k+1 < len(w.segs) && w.segs[k+1].first <= bound {
		k++
	}
	remove := k - max(keep, 0)
	if remove <= 0 {
		return nil
	}
	for i := 0; i < remove; i++ {
		if err := w.fs.Remove(segPath(w.dir, w.segs[0])); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("wal: release %s: %w", w.segs[0].name(), err)
		}
		w.segs = w.segs[1:]
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fmt.Errorf("wal: release: sync dir: %w", err)
	}
	return nil
}

// Close fsyncs pending writes (unless the WAL has failed), closes the
// current segment and releases the directory lock.
func (w *WAL) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	var err error
	if w.failed == nil {
		err = w.syncLocked()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if lerr := w.lock.Close(); err == nil {
		err = lerr
	}
	return err
}
