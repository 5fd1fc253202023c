package snap

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

var (
	// ErrNoSnapshot is returned by Load when no snapshot file verifies.
	ErrNoSnapshot = errors.New("snap: no snapshot available")
	// ErrCorrupt marks a snapshot file whose framing or checksum is wrong.
	// Load renames such files to *.broken and moves on; the reader it returns
	// reports ErrCorrupt if the file changes under it.
	ErrCorrupt = errors.New("snap: corrupt snapshot")
)

// Meta describes a snapshot: the raft index and term it covers and the
// membership at that index.
type Meta struct {
	Index, Term uint64
	ConfState   *raftpb.ConfState // nil is stored as an empty ConfState
}

// File format constants (see doc.go).
const (
	magic         = "CAIRNSNP"
	formatVersion = 1
	headerFixed   = 8 + 4 + 4 // magic, version, meta length
	trailerSize   = 8 + 4     // body length, crc
	maxMetaLen    = 64 << 20
	suffix        = ".snap"
	tmpSuffix     = ".tmp"
	brokenSuffix  = ".broken"
	bufSize       = 1 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Snapshotter saves and loads the snapshot files of one directory. Its
// methods are safe for concurrent use.
type Snapshotter struct {
	fs     vfs.FS
	dir    string
	logger *slog.Logger

	mu sync.Mutex // serializes Save, Load and Purge on the directory
}

// New returns a Snapshotter for dir (created by the first Save). A nil logger
// discards.
func New(fs vfs.FS, dir string, logger *slog.Logger) *Snapshotter {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Snapshotter{fs: fs, dir: dir, logger: logger}
}

func fileName(term, index uint64) string { return fmt.Sprintf("%016x-%016x%s", term, index, suffix) }

type snapFile struct {
	name        string
	term, index uint64
}

func parseName(name string) (snapFile, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	if !ok || len(base) != 33 || base[16] != '-' {
		return snapFile{}, false
	}
	term, err1 := strconv.ParseUint(base[:16], 16, 64)
	index, err2 := strconv.ParseUint(base[17:], 16, 64)
	if err1 != nil || err2 != nil {
		return snapFile{}, false
	}
	return snapFile{name: name, term: term, index: index}, true
}

// list returns the snapshot files oldest first and the stale temporaries.
func (s *Snapshotter) list() (snaps []snapFile, tmps []string, err error) {
	names, err := s.fs.ReadDir(s.dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		if f, ok := parseName(n); ok {
			snaps = append(snaps, f)
		} else if strings.HasSuffix(n, suffix+tmpSuffix) {
			tmps = append(tmps, n)
		}
	}
	slices.SortFunc(snaps, func(a, b snapFile) int {
		return cmp.Or(cmp.Compare(a.index, b.index), cmp.Compare(a.term, b.term))
	})
	return snaps, tmps, nil
}

// encodeHeader returns the file header for m.
func encodeHeader(m Meta) ([]byte, error) {
	cs, err := proto.Marshal(m.ConfState)
	if err != nil {
		return nil, err
	}
	meta := binary.LittleEndian.AppendUint64(nil, m.Index)
	meta = binary.LittleEndian.AppendUint64(meta, m.Term)
	meta = append(meta, cs...)
	h := append([]byte(magic), 0, 0, 0, 0, 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(h[8:], formatVersion)
	binary.LittleEndian.PutUint32(h[12:], uint32(len(meta)))
	return append(h, meta...), nil
}

// crcWriter checksums and counts what passes through it.
type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.crc = crc32.Update(c.crc, crcTable, p[:n])
	c.n += int64(n)
	return n, err
}

// bodyWriter hides the buffered writer from the caller's write function.
type bodyWriter struct{ w *crcWriter }

func (b bodyWriter) Write(p []byte) (int, error) { return b.w.Write(p) }

// Save writes a snapshot durably: <term>-<index>.snap.tmp gets the header,
// the body streamed by write, and the trailer; it is fsynced, renamed to
// <term>-<index>.snap and the directory fsynced. If write fails, the
// temporary file is removed and the error returned.
func (s *Snapshotter) Save(m Meta, write func(io.Writer) error) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	header, err := encodeHeader(m)
	if err != nil {
		return fmt.Errorf("snap: encode meta: %w", err)
	}
	if err := vfs.MkdirAllSync(s.fs, s.dir, 0o755); err != nil {
		return fmt.Errorf("snap: %w", err)
	}
	path := filepath.Join(s.dir, fileName(m.Term, m.Index))
	tmp := path + tmpSuffix
	f, err := s.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("snap: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			s.fs.Remove(tmp)
		}
	}()
	bw := bufio.NewWriterSize(f, bufSize)
	cw := &crcWriter{w: bw}
	if _, err := cw.Write(header); err != nil {
		return fmt.Errorf("snap: write %s: %w", tmp, err)
	}
	if err := write(bodyWriter{cw}); err != nil {
		return fmt.Errorf("snap: write body of %s: %w", tmp, err)
	}
	bodyLen := cw.n - int64(len(header))
	if _, err := cw.Write(binary.LittleEndian.AppendUint64(nil, uint64(bodyLen))); err != nil {
		return fmt.Errorf("snap: write %s: %w", tmp, err)
	}
	if _, err := bw.Write(binary.LittleEndian.AppendUint32(nil, cw.crc)); err != nil {
		return fmt.Errorf("snap: write %s: %w", tmp, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("snap: write %s: %w", tmp, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("snap: fsync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		f = nopCloseFile{f}
		return fmt.Errorf("snap: close %s: %w", tmp, err)
	}
	f = nopCloseFile{f}
	if err := s.fs.Rename(tmp, path); err != nil {
		return fmt.Errorf("snap: %w", err)
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: fsync dir %s: %w", s.dir, err)
	}
	s.logger.Info("snap: saved snapshot", "file", filepath.Base(path), "index", m.Index, "term", m.Term, "bytes", cw.n+4)
	return nil
}

// nopCloseFile stops the deferred cleanup from closing a file twice.
type nopCloseFile struct{ vfs.File }

func (nopCloseFile) Close() error { return nil }

// Load returns the newest snapshot whose checksum verifies, with a reader
// over its body; the caller closes it. A corrupt file met on the way is
// logged at Warn and renamed to *.broken. ErrNoSnapshot if none verifies.
func (s *Snapshotter) Load() (Meta, io.ReadCloser, error) {
	return s.LoadNewestAvailable(math.MaxUint64)
}

// LoadNewestAvailable is Load restricted to snapshots with Index <= maxIndex
// (for example the last snapshot marker the WAL knows about).
func (s *Snapshotter) LoadNewestAvailable(maxIndex uint64) (Meta, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snaps, _, err := s.list()
	if err != nil {
		return Meta{}, nil, fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	for i := len(snaps) - 1; i >= 0; i-- {
		sf := snaps[i]
		if sf.index > maxIndex {
			continue
		}
		path := filepath.Join(s.dir, sf.name)
		m, rc, err := open(s.fs, path, sf)
		if err == nil {
			return m, rc, nil
		}
		if !errors.Is(err, ErrCorrupt) {
			return Meta{}, nil, err
		}
		s.logger.Warn("snap: corrupt snapshot, moving it aside", "file", sf.name, "err", err)
		if rerr := s.fs.Rename(path, path+brokenSuffix); rerr != nil {
			return Meta{}, nil, fmt.Errorf("snap: rename corrupt %s: %w (after %w)", sf.name, rerr, err)
		}
		if serr := s.fs.SyncDir(s.dir); serr != nil {
			return Meta{}, nil, fmt.Errorf("snap: fsync dir %s: %w", s.dir, serr)
		}
	}
	return Meta{}, nil, ErrNoSnapshot
}

// Purge removes all but the newest keep snapshot files, and every stale
// temporary file (an interrupted Save). Broken files are left for the
// operator.
func (s *Snapshotter) Purge(keep int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	snaps, tmps, err := s.list()
	if err != nil {
		return fmt.Errorf("snap: list %s: %w", s.dir, err)
	}
	var remove []string
	for i := 0; i < len(snaps)-max(keep, 0); i++ {
		remove = append(remove, snaps[i].name)
	}
	remove = append(remove, tmps...)
	if len(remove) == 0 {
		return nil
	}
	for _, n := range remove {
		if err := s.fs.Remove(filepath.Join(s.dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("snap: purge: %w", err)
		}
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return fmt.Errorf("snap: purge: fsync dir: %w", err)
	}
	return nil
}
