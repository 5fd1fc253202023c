package vfs

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

func TestErrorFS(t *testing.T) {
	m := NewMem()
	var slept time.Duration
	e := NewErrorFS(m, func(d time.Duration) { slept += d })
	f, err := e.Create("f")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	e.FailSync(boom)
	if err := f.Sync(); !errors.Is(err, boom) {
		t.Fatalf("sync: %v", err)
	}
	if err := e.SyncDir("."); !errors.Is(err, boom) {
		t.Fatalf("syncdir: %v", err)
	}
	e.FailSync(nil)
	e.SlowSync(time.Second)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if slept != time.Second {
		t.Fatalf("slept %v", slept)
	}
	e.SlowSync(0)

	e.FailWritesAfter(5)
	n, err := f.Write([]byte("abc"))
	if n != 3 || err != nil {
		t.Fatal(n, err)
	}
	n, err = f.Write([]byte("defg"))
	if n != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("partial write %d %v", n, err)
	}
	if err := Preallocate(f, 1000); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("preallocate: %v", err)
	}
	e.FailWritesAfter(-1)
	if err := Preallocate(f, 1000); err != nil {
		t.Fatal(err)
	}
	if e.Syncs() != 3 || e.Writes() != 2 {
		t.Fatalf("counters syncs=%d writes=%d", e.Syncs(), e.Writes())
	}
	got, _ := readFile(t, m, "f")
	if len(got) != 1000 || got[:5] != "abcde" {
		t.Fatalf("content %q", got[:8])
	}
}
