package vfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrCrashed is returned by operations on a MemFS file handle opened before
// the last MemFS.Crash: the process that owned it is gone.
var ErrCrashed = errors.New("vfs: file handle invalidated by simulated crash")

// MemFS is a strict in-memory file system for tests. Every file remembers the
// content it had at its last Sync and every directory the entries it had at
// its last SyncDir; Crash reverts everything to that durable state, the way a
// power loss would. All paths are relative to the MemFS root ("/a" and "a"
// are the same file). It is safe for concurrent use.
type MemFS struct {
	mu    sync.Mutex // protects the fields below and every node and handle
	root  *memNode
	gen   uint64          // incremented by Crash; handles of older generations are dead
	locks map[string]bool // held locks by cleaned path
}

type memNode struct {
	dir bool

	// Directories: current entries and the entries at the last SyncDir.
	children map[string]*memNode
	synced   map[string]*memNode

	// Files: current content, content at the last Sync, and the byte range
	// [dirtyLo, dirtyHi) that may differ between the two (within both sizes).
	data             []byte
	durable          []byte
	dirtyLo, dirtyHi int64
	modTime          time.Time
}

// NewMem returns an empty MemFS.
func NewMem() *MemFS {
	return &MemFS{root: newDir(), locks: map[string]bool{}}
}

func newDir() *memNode {
	return &memNode{dir: true, children: map[string]*memNode{}, synced: map[string]*memNode{}}
}

// Crash simulates a power loss: every file's content reverts to what it was at
// its last Sync, every directory's entries to what they were at its last
// SyncDir (so a file created and synced in a directory that was never synced
// disappears), all locks are released and all open handles die (ErrCrashed).
func (m *MemFS) Crash() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen++
	m.locks = map[string]bool{}
	seen := map[*memNode]bool{}
	var revert func(n *memNode)
	revert = func(n *memNode) {
		if seen[n] {
			return
		}
		seen[n] = true
		if !n.dir {
			n.data = slices.Clone(n.durable)
			n.dirtyLo, n.dirtyHi = 0, 0
			return
		}
		n.children = maps.Clone(n.synced)
		for _, c := range n.children {
			revert(c)
		}
	}
	revert(m.root)
}

// split cleans name into its path components; the root has none.
func split(name string) ([]string, error) {
	p := filepath.ToSlash(filepath.Clean(name))
	p = strings.TrimLeft(p, "/")
	if p == "." || p == "" {
		return nil, nil
	}
	parts := strings.Split(p, "/")
	for _, s := range parts {
		if s == ".." {
			return nil, fs.ErrInvalid
		}
	}
	return parts, nil
}

func pathErr(op, name string, err error) error { return &os.PathError{Op: op, Path: name, Err: err} }

// walkLocked returns the node at parts.
func (m *MemFS) walkLocked(parts []string) (*memNode, error) {
	n := m.root
	for _, p := range parts {
		if !n.dir {
			return nil, syscall.ENOTDIR
		}
		c, ok := n.children[p]
		if !ok {
			return nil, fs.ErrNotExist
		}
		n = c
	}
	return n, nil
}

// parentLocked returns the directory holding name and name's base.
func (m *MemFS) parentLocked(op, name string) (*memNode, string, error) {
	parts, err := split(name)
	if err != nil {
		return nil, "", pathErr(op, name, err)
	}
	if len(parts) == 0 {
		return nil, "", pathErr(op, name, fs.ErrInvalid)
	}
	dir, err := m.walkLocked(parts[:len(parts)-1])
	if err != nil {
		return nil, "", pathErr(op, name, err)
	}
	if !dir.dir {
		return nil, "", pathErr(op, name, syscall.ENOTDIR)
	}
	return dir, parts[len(parts)-1], nil
}

func (m *MemFS) lookupLocked(op, name string) (*memNode, error) {
	parts, err := split(name)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	n, err := m.walkLocked(parts)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return n, nil
}

// OpenFile opens name; flag and perm are as for os.OpenFile (perm is ignored).
func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.openLocked(name, flag)
}

func (m *MemFS) openLocked(name string, flag int) (*memFile, error) {
	dir, base, err := m.parentLocked("open", name)
	if err != nil {
		return nil, err
	}
	n, ok := dir.children[base]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr("open", name, fs.ErrExist)
	case ok && n.dir:
		return nil, pathErr("open", name, syscall.EISDIR)
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr("open", name, fs.ErrNotExist)
	case !ok:
		n = &memNode{}
		dir.children[base] = n
	}
	acc := flag & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR)
	f := &memFile{
		fs: m, n: n, name: name, gen: m.gen,
		read:   acc == os.O_RDONLY || acc == os.O_RDWR,
		write:  acc == os.O_WRONLY || acc == os.O_RDWR,
		append: flag&os.O_APPEND != 0,
	}
	if flag&os.O_TRUNC != 0 && f.write {
		n.truncate(0)
	}
	return f, nil
}

// Open opens name for reading.
func (m *MemFS) Open(name string) (File, error) { return m.OpenFile(name, os.O_RDONLY, 0) }

// Create creates or truncates name for reading and writing.
func (m *MemFS) Create(name string) (File, error) {
	return m.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// Remove removes a file or an empty directory.
func (m *MemFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("remove", name)
	if err != nil {
		return err
	}
	n, ok := dir.children[base]
	if !ok {
		return pathErr("remove", name, fs.ErrNotExist)
	}
	if n.dir && len(n.children) > 0 {
		return pathErr("remove", name, syscall.ENOTEMPTY)
	}
	delete(dir.children, base)
	return nil
}

// RemoveAll removes name and everything below it; a missing name is not an
// error.
func (m *MemFS) RemoveAll(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked("removeall", name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	delete(dir.children, base)
	return nil
}

// Rename moves oldpath to newpath, replacing a file at newpath.
func (m *MemFS) Rename(oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	odir, obase, err := m.parentLocked("rename", oldpath)
	if err != nil {
		return err
	}
	n, ok := odir.children[obase]
	if !ok {
		return pathErr("rename", oldpath, fs.ErrNotExist)
	}
	ndir, nbase, err := m.parentLocked("rename", newpath)
	if err != nil {
		return err
	}
	if old, ok := ndir.children[nbase]; ok {
		if old == n {
			return nil
		}
		if old.dir != n.dir || (old.dir && len(old.children) > 0) {
			return pathErr("rename", newpath, fs.ErrExist)
		}
	}
	delete(odir.children, obase)
	ndir.children[nbase] = n
	return nil
}

// MkdirAll creates dir and any missing parents.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts, err := split(dir)
	if err != nil {
		return pathErr("mkdir", dir, err)
	}
	n := m.root
	for _, p := range parts {
		c, ok := n.children[p]
		if !ok {
			c = newDir()
			n.children[p] = c
		} else if !c.dir {
			return pathErr("mkdir", dir, syscall.ENOTDIR)
		}
		n = c
	}
	return nil
}

// ReadDir returns the sorted entry names of dir.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("readdir", dir)
	if err != nil {
		return nil, err
	}
	if !n.dir {
		return nil, pathErr("readdir", dir, syscall.ENOTDIR)
	}
	return slices.Sorted(maps.Keys(n.children)), nil
}

// Stat describes name.
func (m *MemFS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("stat", name)
	if err != nil {
		return nil, err
	}
	return n.info(name), nil
}

// SyncDir makes dir's current entries durable.
func (m *MemFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked("syncdir", dir)
	if err != nil {
		return err
	}
	if !n.dir {
		return pathErr("syncdir", dir, syscall.ENOTDIR)
	}
	n.synced = maps.Clone(n.children)
	return nil
}

// Lock takes an exclusive lock named by the file name, creating the file.
// Locks are released by the returned closer or by Crash.
func (m *MemFS) Lock(name string) (io.Closer, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts, err := split(name)
	if err != nil {
		return nil, pathErr("lock", name, err)
	}
	key := strings.Join(parts, "/")
	if m.locks[key] {
		return nil, fmt.Errorf("%w: %s", ErrLocked, name)
	}
	if _, err := m.openLocked(name, os.O_RDWR|os.O_CREATE); err != nil {
		return nil, err
	}
	m.locks[key] = true
	return &memLock{fs: m, key: key, gen: m.gen}, nil
}

type memLock struct {
	fs   *MemFS
	key  string
	gen  uint64
	once sync.Once
}

func (l *memLock) Close() error {
	l.once.Do(func() {
		l.fs.mu.Lock()
		defer l.fs.mu.Unlock()
		if l.gen == l.fs.gen {
			delete(l.fs.locks, l.key)
		}
	})
	return nil
}

// ---- nodes ----

func (n *memNode) info(name string) os.FileInfo {
	fi := memInfo{name: filepath.Base(name), dir: n.dir, mod: n.modTime}
	if !n.dir {
		fi.size = int64(len(n.data))
	}
	return fi
}

func (n *memNode) markDirty(lo, hi int64) {
	if hi <= lo {
		return
	}
	if n.dirtyHi <= n.dirtyLo {
		n.dirtyLo, n.dirtyHi = lo, hi
		return
	}
	n.dirtyLo, n.dirtyHi = min(n.dirtyLo, lo), max(n.dirtyHi, hi)
}

// resize sets len(n.data) to size, zero-filling growth, and records which
// bytes may now differ from the durable copy. Bytes beyond the durable size
// need no marking: the durable copy grows with zeros at Sync.
func (n *memNode) resize(size int64) {
	old := int64(len(n.data))
	if size <= old {
		n.data = n.data[:size]
		return
	}
	n.data = slices.Grow(n.data, int(size-old))[:size]
	clear(n.data[old:])
	n.markDirty(old, min(size, int64(len(n.durable))))
}

func (n *memNode) truncate(size int64) {
	n.resize(size)
	n.modTime = time.Time{}
}

func (n *memNode) writeAt(p []byte, off int64) {
	if end := off + int64(len(p)); end > int64(len(n.data)) {
		n.resize(end)
	}
	copy(n.data[off:], p)
	n.markDirty(off, off+int64(len(p)))
}

func (n *memNode) sync() {
	size := int64(len(n.data))
	old := int64(len(n.durable))
	if size <= old {
		n.durable = n.durable[:size]
	} else {
		n.durable = slices.Grow(n.durable, int(size-old))[:size]
		clear(n.durable[old:])
	}
	lo, hi := max(n.dirtyLo, 0), min(n.dirtyHi, size)
	if lo < hi {
		copy(n.durable[lo:hi], n.data[lo:hi])
	}
	n.dirtyLo, n.dirtyHi = 0, 0
}

type memInfo struct {
	name string
	size int64
	dir  bool
	mod  time.Time
}

func (fi memInfo) Name() string { return fi.name }
func (fi memInfo) Size() int64  { return fi.size }
func (fi memInfo) Mode() os.FileMode {
	if fi.dir {
		return os.ModeDir | 0o755
	}
	return 0o644
}
func (fi memInfo) ModTime() time.Time { return fi.mod }
func (fi memInfo) IsDir() bool        { return fi.dir }
func (fi memInfo) Sys() any           { return nil }

// ---- handles ----

type memFile struct {
	fs                  *MemFS
	n                   *memNode
	name                string
	gen                 uint64
	pos                 int64
	read, write, append bool
	closed              bool
}

func (f *memFile) checkLocked(op string) error {
	if f.closed {
		return pathErr(op, f.name, os.ErrClosed)
	}
	if f.gen != f.fs.gen {
		return pathErr(op, f.name, ErrCrashed)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read"); err != nil {
		return 0, err
	}
	if !f.read {
		return 0, pathErr("read", f.name, syscall.EBADF)
	}
	if f.pos >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[f.pos:])
	f.pos += int64(k)
	return k, nil
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("read"); err != nil {
		return 0, err
	}
	if !f.read {
		return 0, pathErr("read", f.name, syscall.EBADF)
	}
	if off < 0 {
		return 0, pathErr("readat", f.name, fs.ErrInvalid)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, f.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("write"); err != nil {
		return 0, err
	}
	if !f.write {
		return 0, pathErr("write", f.name, syscall.EBADF)
	}
	if f.append {
		f.pos = int64(len(f.n.data))
	}
	f.n.writeAt(p, f.pos)
	f.pos += int64(len(p))
	return len(p), nil
}

func (f *memFile) Seek(offset int64, whence int) (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("seek"); err != nil {
		return 0, err
	}
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = f.pos + offset
	case io.SeekEnd:
		abs = int64(len(f.n.data)) + offset
	default:
		return 0, pathErr("seek", f.name, fs.ErrInvalid)
	}
	if abs < 0 {
		return 0, pathErr("seek", f.name, fs.ErrInvalid)
	}
	f.pos = abs
	return abs, nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return pathErr("close", f.name, os.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("sync"); err != nil {
		return err
	}
	f.n.sync()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("truncate"); err != nil {
		return err
	}
	if !f.write {
		return pathErr("truncate", f.name, syscall.EBADF)
	}
	if size < 0 {
		return pathErr("truncate", f.name, fs.ErrInvalid)
	}
	f.n.truncate(size)
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if err := f.checkLocked("stat"); err != nil {
		return nil, err
	}
	return f.n.info(f.name), nil
}

func (f *memFile) Name() string { return f.name }
