package vfs

import (
	"errors"
	"path/filepath"
	"testing"
)

func TestOSFS(t *testing.T) {
	fs := OS()
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := MkdirAllSync(fs, dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, "f")
	writeFile(t, fs, name, "hello", true)
	f, err := fs.OpenFile(name, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := Preallocate(f, 1<<16); err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if fi.Size() != 1<<16 {
		t.Fatalf("size %d", fi.Size())
	}
	f.Close()
	if err := fs.Rename(name, name+"2"); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	names, err := fs.ReadDir(dir)
	if err != nil || len(names) != 1 || names[0] != "f2" {
		t.Fatalf("readdir %v %v", names, err)
	}
	l, err := fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Lock(filepath.Join(dir, "LOCK")); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l.Close()
	l, err = fs.Lock(filepath.Join(dir, "LOCK"))
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
}
