package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
)

// File is an open file. It is the subset of *os.File that Cairn's storage
// code uses.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Seeker
	io.Closer
	// Sync makes the file's content durable (fsync/fdatasync).
	Sync() error
	// Truncate changes the file's size; growing fills with zeros.
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
	Name() string
}

// FS is a file system. Paths use the OS separator; implementations other than
// OS() treat every path as relative to their own root.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Open(name string) (File, error)
	Create(name string) (File, error)
	Remove(name string) error
	RemoveAll(name string) error
	Rename(oldpath, newpath string) error
	MkdirAll(dir string, perm os.FileMode) error
	// ReadDir returns the names of the entries of dir, sorted.
	ReadDir(dir string) ([]string, error)
	Stat(name string) (os.FileInfo, error)
	// SyncDir fsyncs a directory: it makes creates, renames and removes of
	// its entries durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on the file name (creating it if needed)
	// and returns the closer that releases it. It fails with ErrLocked if the
	// lock is held, by this or another process.
	Lock(name string) (io.Closer, error)
}

// ErrLocked is returned by FS.Lock when the lock is already held.
var ErrLocked = errors.New("vfs: lock held by another user")

// preallocator is implemented by files that can reserve space natively.
type preallocator interface {
	preallocate(size int64) error
}

// Preallocate makes f at least size bytes long, the new space reading as
// zeros. On the OS file system it reserves the blocks (fallocate) so later
// writes do not run out of space; elsewhere it extends the file with
// Truncate. It never shrinks a file. The new size is durable only after
// f.Sync.
func Preallocate(f File, size int64) error {
	if p, ok := f.(preallocator); ok {
		return p.preallocate(size)
	}
	return truncateUp(f, size)
}

func truncateUp(f File, size int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= size {
		return nil
	}
	return f.Truncate(size)
}

// MkdirAllSync creates dir and any missing parents, like MkdirAll, and makes
// each newly created directory durable by syncing its parent.
func MkdirAllSync(fs FS, dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := fs.Stat(d); err == nil {
			break
		} else if !errors.Is(err, os.ErrNotExist) {
			return err
		}
		missing = append(missing, d)
		if p := filepath.Dir(d); p == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fs.MkdirAll(dir, perm); err != nil {
		return err
	}
	// Sync from the deepest new directory upwards: each sync makes the
	// child's entry durable in its parent.
	for _, d := range missing {
		if err := fs.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}
