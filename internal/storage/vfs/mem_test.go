package vfs

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

func seed(t *testing.T, env string) uint64 {
	t.Helper()
	s := rand.Uint64()
	if v := os.Getenv(env); v != "" {
		var err error
		if s, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("bad %s: %v", env, err)
		}
	}
	t.Logf("seed %d (set %s=%d to reproduce)", s, env, s)
	return s
}

func writeFile(t *testing.T, fs FS, name, content string, sync bool) {
	t.Helper()
	f, err := fs.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(content)); err != nil {
		t.Fatal(err)
	}
	if sync {
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, fs FS, name string) (string, bool) {
	t.Helper()
	f, err := fs.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func TestMemCrashFileContent(t *testing.T) {
	m := NewMem()
	writeFile(t, m, "a", "durable", true)
	if err := m.SyncDir("."); err != nil {
		t.Fatal(err)
	}
	f, err := m.OpenFile("a", os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte(" lost"))
	if got, _ := readFile(t, m, "a"); got != "durable lost" {
		t.Fatalf("before crash: %q", got)
	}
	m.Crash()
	if got, ok := readFile(t, m, "a"); !ok || got != "durable" {
		t.Fatalf("after crash: %q %v", got, ok)
	}
	if _, err := f.Write([]byte("x")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("write on dead handle: %v", err)
	}
}

func TestMemCrashDirectoryEntries(t *testing.T) {
	m := NewMem()
	if err := MkdirAllSync(m, "d/e", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, m, "d/e/synced-unlinked", "x", true) // file synced, dir not
	m.Crash()
	if _, ok := readFile(t, m, "d/e/synced-unlinked"); ok {
		t.Fatal("file whose directory was never synced survived the crash")
	}
	if _, err := m.Stat("d/e"); err != nil {
		t.Fatalf("MkdirAllSync dir lost: %v", err)
	}

	writeFile(t, m, "d/e/a.tmp", "new", true)
	m.SyncDir("d/e")
	writeFile(t, m, "d/e/old", "old", true)
	m.SyncDir("d/e")
	if err := m.Rename("d/e/a.tmp", "d/e/old"); err != nil {
		t.Fatal(err)
	}
	m.Remove("d/e/old2")
	m.Crash() // rename not made durable
	if got, _ := readFile(t, m, "d/e/old"); got != "old" {
		t.Fatalf("unsynced rename survived: %q", got)
	}
	if got, _ := readFile(t, m, "d/e/a.tmp"); got != "new" {
		t.Fatalf("tmp lost: %q", got)
	}
	m.Rename("d/e/a.tmp", "d/e/old")
	m.SyncDir("d/e")
	m.Crash()
	if got, _ := readFile(t, m, "d/e/old"); got != "new" {
		t.Fatalf("synced rename lost: %q", got)
	}
	names, _ := m.ReadDir("d/e")
	if len(names) != 1 || names[0] != "old" {
		t.Fatalf("names %v", names)
	}
	// Unsynced remove comes back.
	m.Remove("d/e/old")
	m.Crash()
	if _, ok := readFile(t, m, "d/e/old"); !ok {
		t.Fatal("unsynced remove was durable")
	}
}

func TestMemErrors(t *testing.T) {
	m := NewMem()
	if _, err := m.Open("nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("open missing: %v", err)
	}
	writeFile(t, m, "a", "x", false)
	if _, err := m.OpenFile("a", os.O_CREATE|os.O_EXCL|os.O_RDWR, 0); !errors.Is(err, os.ErrExist) {
		t.Fatalf("excl: %v", err)
	}
	if _, err := m.Create("missing/a"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("create in missing dir: %v", err)
	}
	f, _ := m.Open("a")
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("write to read-only handle")
	}
	f.Close()
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("double close: %v", err)
	}
	m.MkdirAll("d", 0o755)
	writeFile(t, m, "d/x", "", false)
	if err := m.Remove("d"); err == nil {
		t.Fatal("removed non-empty dir")
	}
	if err := m.RemoveAll("d"); err != nil {
		t.Fatal(err)
	}
	if err := m.RemoveAll("d"); err != nil {
		t.Fatal(err)
	}
}

func TestMemFileOps(t *testing.T) {
	m := NewMem()
	f, _ := m.Create("/f")
	f.Write([]byte("hello world"))
	if _, err := f.Seek(20, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("!"))
	fi, _ := f.Stat()
	if fi.Size() != 21 || fi.Name() != "f" {
		t.Fatalf("stat %d %q", fi.Size(), fi.Name())
	}
	buf := make([]byte, 10)
	n, err := f.ReadAt(buf, 6)
	if n != 10 || err != nil || string(buf[:5]) != "world" || buf[5] != 0 {
		t.Fatalf("readat %d %v %q", n, err, buf)
	}
	if n, err := f.ReadAt(buf, 15); n != 6 || err != io.EOF {
		t.Fatalf("short readat %d %v", n, err)
	}
	if err := f.Truncate(5); err != nil {
		t.Fatal(err)
	}
	f.Truncate(8)
	f.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(f)
	if !bytes.Equal(b, []byte("hello\x00\x00\x00")) {
		t.Fatalf("after truncate %q", b)
	}
	if err := Preallocate(f, 100); err != nil {
		t.Fatal(err)
	}
	if err := Preallocate(f, 10); err != nil { // never shrinks
		t.Fatal(err)
	}
	fi, _ = f.Stat()
	if fi.Size() != 100 {
		t.Fatalf("preallocate size %d", fi.Size())
	}
	// "/f" and "f" are the same file.
	if _, err := m.Stat("f"); err != nil {
		t.Fatal(err)
	}
}

func TestMemLock(t *testing.T) {
	m := NewMem()
	l, err := m.Lock("LOCK")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock("./LOCK"); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v", err)
	}
	l.Close()
	l2, err := m.Lock("LOCK")
	if err != nil {
		t.Fatal(err)
	}
	m.Crash() // the owner died
	if _, err := m.Lock("LOCK"); err != nil {
		t.Fatalf("lock after crash: %v", err)
	}
	l2.Close() // stale closer must not release the new owner's lock
	if _, err := m.Lock("LOCK"); !errors.Is(err, ErrLocked) {
		t.Fatalf("stale close released lock: %v", err)
	}
}

// TestMemSyncModel checks the dirty-range bookkeeping against a model that
// copies the whole file on every Sync.
func TestMemSyncModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t, "VFS_SEED"), 1))
	for iter := 0; iter < 200; iter++ {
		m := NewMem()
		f, _ := m.Create("f")
		var cur, durable []byte
		for op := 0; op < 60; op++ {
			switch rng.IntN(4) {
			case 0, 1:
				off := rng.Int64N(int64(len(cur)) + 20)
				p := make([]byte, rng.IntN(30)+1)
				for i := range p {
					p[i] = byte(rng.IntN(255) + 1)
				}
				f.Seek(off, io.SeekStart)
				f.Write(p)
				if end := off + int64(len(p)); end > int64(len(cur)) {
					cur = append(cur, make([]byte, end-int64(len(cur)))...)
				}
				copy(cur[off:], p)
			case 2:
				size := rng.Int64N(int64(len(cur)) + 40)
				f.Truncate(size)
				if size < int64(len(cur)) {
					cur = cur[:size:size]
				} else {
					cur = append(cur, make([]byte, size-int64(len(cur)))...)
				}
			case 3:
				f.Sync()
				durable = bytes.Clone(cur)
			}
			n := m.root.children["f"]
			if !bytes.Equal(n.data, cur) {
				t.Fatalf("iter %d op %d: data mismatch", iter, op)
			}
		}
		m.SyncDir(".")
		m.Crash()
		got, _ := readFile(t, m, "f")
		if got != string(durable) {
			t.Fatalf("iter %d: after crash got %q want %q", iter, got, durable)
		}
	}
}
