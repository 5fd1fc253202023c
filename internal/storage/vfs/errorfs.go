package vfs

import (
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// ErrorFS wraps an FS and injects faults, for tests. Faults are switched on
// and off by its methods at any time; with none set it only counts calls.
//
//   - FailSync(err): every file Sync and SyncDir returns err (wrapped in an
//     *os.PathError) without syncing anything underneath.
//   - FailWritesAfter(n): after n more bytes have been written, a write is
//     cut short and fails with ENOSPC; Preallocate fails with ENOSPC if it
//     would grow a file by more than the remaining budget.
//   - SlowSync(d): every Sync and SyncDir first calls the injected sleep
//     function with d.
type ErrorFS struct {
	fs    FS
	sleep func(time.Duration)

	mu          sync.Mutex // protects the fields below
	syncErr     error
	writeBudget int64 // < 0: unlimited
	syncDelay   time.Duration
	syncs       int64
	writes      int64
}

// NewErrorFS wraps fs. sleep is used by SlowSync; nil means time.Sleep.
func NewErrorFS(fs FS, sleep func(time.Duration)) *ErrorFS {
	if sleep == nil {
		sleep = time.Sleep
	}
	return &ErrorFS{fs: fs, sleep: sleep, writeBudget: -1}
}

// FailSync makes every later Sync and SyncDir fail with err; nil clears it.
func (e *ErrorFS) FailSync(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncErr = err
}

// FailWritesAfter lets n more bytes be written, then fails writes with
// ENOSPC. A negative n removes the limit.
func (e *ErrorFS) FailWritesAfter(n int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writeBudget = n
}

// SlowSync delays every later Sync and SyncDir by d (through the injected
// sleep function); 0 clears it.
func (e *ErrorFS) SlowSync(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncDelay = d
}

// Syncs returns the number of Sync and SyncDir calls so far.
func (e *ErrorFS) Syncs() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.syncs
}

// Writes returns the number of file Write calls so far.
func (e *ErrorFS) Writes() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.writes
}

func (e *ErrorFS) beforeSync(name string) error {
	e.mu.Lock()
	e.syncs++
	d, err := e.syncDelay, e.syncErr
	e.mu.Unlock()
	if d > 0 {
		e.sleep(d)
	}
	if err != nil {
		return &os.PathError{Op: "sync", Path: name, Err: err}
	}
	return nil
}

// allowWrite returns how many of n bytes may be written.
func (e *ErrorFS) allowWrite(n int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.writes++
	if e.writeBudget < 0 || int64(n) <= e.writeBudget {
		if e.writeBudget >= 0 {
			e.writeBudget -= int64(n)
		}
		return n
	}
	k := int(e.writeBudget)
	e.writeBudget = 0
	return k
}

func (e *ErrorFS) wrap(f File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &errFile{File: f, e: e}, nil
}

func (e *ErrorFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	return e.wrap(e.fs.OpenFile(name, flag, perm))
}
func (e *ErrorFS) Open(name string) (File, error)              { return e.wrap(e.fs.Open(name)) }
func (e *ErrorFS) Create(name string) (File, error)            { return e.wrap(e.fs.Create(name)) }
func (e *ErrorFS) Remove(name string) error                    { return e.fs.Remove(name) }
func (e *ErrorFS) RemoveAll(name string) error                 { return e.fs.RemoveAll(name) }
func (e *ErrorFS) Rename(oldpath, newpath string) error        { return e.fs.Rename(oldpath, newpath) }
func (e *ErrorFS) MkdirAll(dir string, perm os.FileMode) error { return e.fs.MkdirAll(dir, perm) }
func (e *ErrorFS) ReadDir(dir string) ([]string, error)        { return e.fs.ReadDir(dir) }
func (e *ErrorFS) Stat(name string) (os.FileInfo, error)       { return e.fs.Stat(name) }
func (e *ErrorFS) Lock(name string) (io.Closer, error)         { return e.fs.Lock(name) }

func (e *ErrorFS) SyncDir(dir string) error {
	if err := e.beforeSync(dir); err != nil {
		return err
	}
	return e.fs.SyncDir(dir)
}

type errFile struct {
	File
	e *ErrorFS
}

func (f *errFile) Write(p []byte) (int, error) {
	k := f.e.allowWrite(len(p))
	if k == len(p) {
		return f.File.Write(p)
	}
	n, err := f.File.Write(p[:k])
	if err != nil {
		return n, err
	}
	return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
}

func (f *errFile) Sync() error {
	if err := f.e.beforeSync(f.Name()); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *errFile) preallocate(size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if grow := size - fi.Size(); grow > 0 {
		f.e.mu.Lock()
		budget := f.e.writeBudget
		f.e.mu.Unlock()
		if budget >= 0 && grow > budget {
			return &os.PathError{Op: "fallocate", Path: f.Name(), Err: syscall.ENOSPC}
		}
	}
	return Preallocate(f.File, size)
}
