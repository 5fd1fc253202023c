package wal

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

func TestRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	if Exists(fs, testDir) {
		t.Fatal("exists before create")
	}
	w := mustCreate(t, fs, Options{})
	if !Exists(fs, testDir) {
		t.Fatal("not exists after create")
	}
	if _, err := Create(fs, testDir, nil, Options{}); err == nil {
		t.Fatal("second create in the same dir succeeded")
	}
	must(t, w.Save(hs(1, 1, 0), ents(1, 5, 1), true))
	must(t, w.Save(hs(1, 1, 5), nil, true))
	conf := ent(6, 2, "cc")
	conf.Type = raftpb.EntryConfChange.Enum()
	empty := &raftpb.Entry{Index: ent(7, 2, "").Index, Term: ent(7, 2, "").Term} // no type, no data
	must(t, w.Save(hs(2, 0, 5), []*raftpb.Entry{conf, empty}, true))
	must(t, w.Close())
	if err := w.Save(nil, nil, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("save after close: %v", err)
	}

	w, st := mustOpen(t, fs, Options{})
	wantState(t, st, "cluster=1,member=2", hs(2, 0, 5), Marker{}, append(ents(1, 5, 1), conf, empty))
	// Appending after reopen continues the log.
	must(t, w.Save(hs(2, 0, 7), ents(8, 9, 2), true))
	must(t, w.Close())
	_, st = mustOpen(t, fs, Options{})
	wantState(t, st, "cluster=1,member=2", hs(2, 0, 7), Marker{}, append(append(ents(1, 5, 1), conf, empty), ents(8, 9, 2)...))
}

func TestOpenMissing(t *testing.T) {
	fs := vfs.NewMem()
	if _, _, err := Open(fs, testDir, Options{SegmentSize: 1 << 20}); !errors.Is(err, ErrNoWAL) {
		t.Fatalf("open missing dir: %v", err)
	}
	must(t, fs.MkdirAll(testDir, 0o755))
	if _, _, err := Open(fs, testDir, Options{SegmentSize: 1 << 20}); !errors.Is(err, ErrNoWAL) {
		t.Fatalf("open empty dir: %v", err)
	}
}

func TestLockedWhileOpen(t *testing.T) {
	fs := vfs.NewMem()
	w := mustCreate(t, fs, Options{SegmentSize: 1 << 20})
	if _, _, err := Open(fs, testDir, Options{SegmentSize: 1 << 20}); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	must(t, w.Close())
	w, _ = mustOpen(t, fs, Options{SegmentSize: 1 << 20})
	must(t, w.Close())
}

func TestEmptyAfterCrash(t *testing.T) {
	fs := vfs.NewMem()
	w := mustCreate(t, fs, Options{SegmentSize: 4096})
	must(t, w.Save(hs(1, 1, 0), ents(1, 3, 1), false)) // never synced
	fs.Crash()
	w, st := mustOpen(t, fs, Options{SegmentSize: 4096})
	wantState(t, st, "cluster=1,member=2", nil, Marker{}, nil)
	must(t, w.Close())
}

func TestOverwriteSuffix(t *testing.T) {
	for _, size := range []int64{256, 1 << 20} {
		fs := vfs.NewMem()
		opts := Options{SegmentSize: size}
		w := mustCreate(t, fs, opts)
		must(t, w.Save(hs(1, 1, 3), ents(1, 10, 1), true))
		// A new leader rewrites from 6.
		must(t, w.Save(hs(2, 2, 3), ents(6, 8, 2), true))
		must(t, w.Close())
		w, st := mustOpen(t, fs, opts)
		want := append(ents(1, 5, 1), ents(6, 8, 2)...)
		wantState(t, st, "cluster=1,member=2", hs(2, 2, 3), Marker{}, want)
		// Rewrite again after reopen, further back, then extend.
		must(t, w.Save(nil, ents(4, 4, 3), false))
		must(t, w.Save(hs(3, 3, 4), ents(5, 6, 3), true))
		must(t, w.Close())
		_, st = mustOpen(t, fs, opts)
		want = append(ents(1, 3, 1), ents(4, 6, 3)...)
		wantState(t, st, "cluster=1,member=2", hs(3, 3, 4), Marker{}, want)
	}
}

func TestOutOfOrder(t *testing.T) {
	fs := vfs.NewMem()
	w := mustCreate(t, fs, Options{SegmentSize: 1 << 20})
	if err := w.Save(nil, ents(2, 3, 1), true); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("gap at start: %v", err)
	}
	must(t, w.Save(nil, ents(1, 3, 1), true))
	if err := w.Save(nil, []*raftpb.Entry{ent(4, 1, ""), ent(6, 1, "")}, true); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("non-consecutive: %v", err)
	}
	if err := w.Save(nil, ents(5, 5, 1), true); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("gap: %v", err)
	}
	// A snapshot marker lets the log jump ahead.
	must(t, w.SaveSnapshot(Marker{Index: 100, Term: 3}))
	must(t, w.Save(hs(3, 1, 100), ents(101, 102, 3), true))
	if err := w.SaveSnapshot(Marker{Index: 50, Term: 2}); !errors.Is(err, ErrOutOfOrder) {
		t.Fatalf("marker regress: %v", err)
	}
	must(t, w.Close())
	_, st := mustOpen(t, fs, Options{SegmentSize: 1 << 20})
	wantState(t, st, "cluster=1,member=2", hs(3, 1, 100), Marker{100, 3}, ents(101, 102, 3))
}

func TestSnapshotMarkerTrimsEntries(t *testing.T) {
	fs := vfs.NewMem()
	w := mustCreate(t, fs, Options{SegmentSize: 1 << 20})
	must(t, w.Save(hs(1, 1, 8), ents(1, 10, 1), true))
	must(t, w.SaveSnapshot(Marker{Index: 7, Term: 1}))
	must(t, w.Save(nil, ents(11, 12, 1), true))
	must(t, w.Close())
	_, st := mustOpen(t, fs, Options{SegmentSize: 1 << 20})
	wantState(t, st, "cluster=1,member=2", hs(1, 1, 8), Marker{7, 1}, ents(8, 12, 1))
}

func TestSegmentRollAndRelease(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{SegmentSize: 512}
	w := mustCreate(t, fs, opts)
	for i := uint64(1); i <= 100; i += 5 {
		must(t, w.Save(hs(1, 1, i), ents(i, i+4, 1), true))
	}
	files := segFiles(t, fs)
	if len(files) < 5 {
		t.Fatalf("expected several segments, got %v", files)
	}
	for i, n := range files {
		s, _ := parseSegmentName(n)
		if s.seq != uint64(i) {
			t.Fatalf("segment %d named %s", i, n)
		}
	}
	// Without a snapshot marker nothing is released.
	must(t, w.ReleaseTo(90, 0))
	if got := segFiles(t, fs); len(got) != len(files) {
		t.Fatalf("released without a snapshot: %v", got)
	}
	must(t, w.SaveSnapshot(Marker{Index: 60, Term: 1}))
	files = segFiles(t, fs)
	must(t, w.ReleaseTo(61, 2))
	after := segFiles(t, fs)
	// Every removed segment's successor starts at or below 61, and exactly
	// two such removable segments are kept.
	removable := 0
	for i := 0; i+1 < len(files); i++ {
		s, _ := parseSegmentName(files[i+1])
		if s.first > 61 {
			break
		}
		removable++
	}
	if want := len(files) - (removable - 2); len(after) != want {
		t.Fatalf("after release %d files, want %d (removable %d)\nbefore %v\nafter %v", len(after), want, removable, files, after)
	}
	if after[0] != files[removable-2] {
		t.Fatalf("kept %s first, want %s", after[0], files[removable-2])
	}
	must(t, w.ReleaseTo(1000, 0)) // capped at the marker
	after = segFiles(t, fs)
	s0, _ := parseSegmentName(after[0])
	if s0.first > 61 {
		t.Fatalf("released past the snapshot marker: %v", after)
	}
	must(t, w.Save(nil, ents(101, 101, 1), true))
	must(t, w.Close())
	_, st := mustOpen(t, fs, opts)
	wantState(t, st, "cluster=1,member=2", hs(1, 1, 96), Marker{60, 1}, ents(61, 101, 1))
}

// TestReleaseAcrossRewrite: a rewrite lowers the index at which the next
// segment is cut; releasing must still leave a log that opens.
func TestReleaseAcrossRewrite(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{SegmentSize: 400}
	w := mustCreate(t, fs, opts)
	must(t, w.Save(hs(1, 1, 1), ents(1, 20, 1), true))
	must(t, w.Save(hs(2, 2, 1), ents(15, 15, 2), true)) // rewrite, lands in a new segment
	for i := uint64(16); i <= 40; i++ {
		must(t, w.Save(hs(2, 2, i-1), ents(i, i, 2), true))
	}
	must(t, w.SaveSnapshot(Marker{Index: 30, Term: 2}))
	must(t, w.ReleaseTo(31, 0))
	must(t, w.Close())
	_, st := mustOpen(t, fs, opts)
	wantState(t, st, "cluster=1,member=2", hs(2, 2, 39), Marker{30, 2}, ents(31, 40, 2))
}

func TestLargeBatchBiggerThanSegment(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{SegmentSize: 256}
	w := mustCreate(t, fs, opts)
	big := ent(1, 1, strings.Repeat("x", 2000))
	must(t, w.Save(hs(1, 1, 0), []*raftpb.Entry{big}, true))
	must(t, w.Save(nil, ents(2, 3, 1), true))
	must(t, w.Close())
	_, st := mustOpen(t, fs, opts)
	wantState(t, st, "cluster=1,member=2", hs(1, 1, 0), Marker{}, append([]*raftpb.Entry{big}, ents(2, 3, 1)...))
}

func TestGroupCommit(t *testing.T) {
	efs := vfs.NewErrorFS(vfs.NewMem(), nil)
	w := mustCreate(t, efs, Options{SegmentSize: 1 << 20})
	syncs, writes := efs.Syncs(), efs.Writes()
	must(t, w.Save(hs(1, 1, 0), ents(1, 64, 1), true))
	if d := efs.Syncs() - syncs; d != 1 {
		t.Fatalf("%d fsyncs for one Save", d)
	}
	if d := efs.Writes() - writes; d != 1 {
		t.Fatalf("%d writes for one Save", d)
	}
	must(t, w.Save(nil, ents(65, 65, 1), false))
	must(t, w.Save(hs(1, 1, 0), nil, true)) // unchanged hardstate: no write, but syncs the earlier one
	if d := efs.Syncs() - syncs; d != 2 {
		t.Fatalf("%d fsyncs", d)
	}
	if d := efs.Writes() - writes; d != 2 {
		t.Fatalf("%d writes", d)
	}
	must(t, w.Close())
}

func TestSyncFailureIsSticky(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem, nil)
	w := mustCreate(t, efs, Options{SegmentSize: 1 << 20})
	must(t, w.Save(hs(1, 1, 0), ents(1, 3, 1), true))
	boom := errors.New("EIO")
	efs.FailSync(boom)
	if err := w.Save(nil, ents(4, 4, 1), true); !errors.Is(err, boom) {
		t.Fatalf("save with failing fsync: %v", err)
	}
	efs.FailSync(nil)
	for _, err := range []error{
		w.Save(nil, ents(4, 4, 1), true),
		w.Save(nil, nil, false),
		w.SaveSnapshot(Marker{Index: 1, Term: 1}),
	} {
		if !errors.Is(err, ErrFailed) || !errors.Is(err, boom) {
			t.Fatalf("after fsync failure: %v", err)
		}
	}
	w.Close()
	mem.Crash()
	w, st := mustOpen(t, mem, Options{SegmentSize: 1 << 20})
	wantState(t, st, "cluster=1,member=2", hs(1, 1, 0), Marker{}, ents(1, 3, 1))
	must(t, w.Close())
}

func TestENOSPCIsSticky(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem, nil)
	opts := Options{SegmentSize: 1024}
	w := mustCreate(t, efs, opts)
	must(t, w.Save(hs(1, 1, 0), ents(1, 3, 1), true))
	efs.FailWritesAfter(40)
	err := w.Save(nil, ents(4, 10, 1), true)
	if err == nil || !strings.Contains(err.Error(), "no space") {
		t.Fatalf("save past ENOSPC: %v", err)
	}
	efs.FailWritesAfter(-1)
	if err := w.Save(nil, ents(4, 4, 1), true); !errors.Is(err, ErrFailed) {
		t.Fatalf("after ENOSPC: %v", err)
	}
	w.Close()
	// Part of the failed batch reached the file: reopening must work and
	// yield a prefix of the batch after 1..3.
	w, st := mustOpen(t, mem, opts)
	n := uint64(len(st.Entries))
	if n < 3 || n > 10 {
		t.Fatalf("recovered %d entries", n)
	}
	wantState(t, st, "cluster=1,member=2", hs(1, 1, 0), Marker{}, ents(1, n, 1))
	must(t, w.Close())
}

func TestCutFailureIsSticky(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem, nil)
	opts := Options{SegmentSize: 300}
	w := mustCreate(t, efs, opts)
	must(t, w.Save(hs(1, 1, 0), ents(1, 3, 1), true))
	efs.FailWritesAfter(0)
	if err := w.Save(nil, ents(4, 20, 1), true); err == nil {
		t.Fatal("cut with no space succeeded")
	}
	efs.FailWritesAfter(-1)
	if err := w.Save(nil, ents(4, 4, 1), true); !errors.Is(err, ErrFailed) {
		t.Fatalf("after failed cut: %v", err)
	}
	w.Close()
	mem.Crash()
	w, st := mustOpen(t, mem, opts)
	wantState(t, st, "cluster=1,member=2", hs(1, 1, 0), Marker{}, ents(1, 3, 1))
	must(t, w.Save(nil, ents(4, 20, 1), true))
	must(t, w.Close())
}

type logBuf struct{ bytes.Buffer }

func TestSlowSyncWarns(t *testing.T) {
	var logs logBuf
	now := time.Unix(0, 0)
	efs := vfs.NewErrorFS(vfs.NewMem(), func(d time.Duration) { now = now.Add(d) })
	opts := Options{SegmentSize: 1 << 20, Logger: slog.New(slog.NewTextHandler(&logs, nil)), now: func() time.Time { return now }}
	w := mustCreate(t, efs, opts)
	efs.SlowSync(2 * time.Second)
	must(t, w.Save(hs(1, 1, 0), ents(1, 1, 1), true))
	if !strings.Contains(logs.String(), "slow fsync") || !strings.Contains(logs.String(), "duration=2s") {
		t.Fatalf("log: %s", logs.String())
	}
	must(t, w.Close())
}

func TestStaleTmpRemoved(t *testing.T) {
	fs := vfs.NewMem()
	w := mustCreate(t, fs, Options{SegmentSize: 1 << 20})
	must(t, w.Save(nil, ents(1, 1, 1), true))
	must(t, w.Close())
	writeSeg(t, fs, "0000000000000001-0000000000000002.wal.tmp", []byte("junk"))
	w, st := mustOpen(t, fs, Options{SegmentSize: 1 << 20})
	wantState(t, st, "cluster=1,member=2", nil, Marker{}, ents(1, 1, 1))
	names, _ := fs.ReadDir(testDir)
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("stale tmp kept: %v", names)
		}
	}
	must(t, w.Close())
}

func TestOSRoundTrip(t *testing.T) {
	dir := t.TempDir() + "/wal"
	opts := Options{SegmentSize: 64 << 10}
	w, err := Create(vfs.OS(), dir, []byte("m"), opts)
	must(t, err)
	for i := uint64(1); i <= 2000; i += 50 {
		must(t, w.Save(hs(1, 1, i), ents(i, i+49, 1), true))
	}
	if _, _, err := Open(vfs.OS(), dir, opts); !errors.Is(err, vfs.ErrLocked) {
		t.Fatalf("open while locked: %v", err)
	}
	must(t, w.Close())
	w, st, err := Open(vfs.OS(), dir, opts)
	must(t, err)
	wantState(t, st, "m", hs(1, 1, 1951), Marker{}, ents(1, 2000, 1))
	must(t, w.Close())
}

// TestRewriteBelowMarker: entries at or below the snapshot marker (which raft
// never rewrites) must still leave a log that reopens and accepts the next
// index after the marker.
func TestRewriteBelowMarker(t *testing.T) {
	fs := vfs.NewMem()
	opts := Options{SegmentSize: 1 << 20}
	w := mustCreate(t, fs, opts)
	must(t, w.Save(nil, ents(1, 10, 1), true))
	must(t, w.SaveSnapshot(Marker{Index: 8, Term: 1}))
	must(t, w.Save(nil, ents(5, 5, 2), true))
	must(t, w.Save(nil, ents(9, 9, 2), true))
	must(t, w.Save(nil, ents(9, 9, 3), true))
	must(t, w.Close())
	w, st := mustOpen(t, fs, opts)
	wantState(t, st, "cluster=1,member=2", nil, Marker{8, 1}, ents(9, 9, 3))
	must(t, w.Save(nil, ents(10, 10, 2), true))
	must(t, w.Close())
}
