package snap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const dir = "data/snap"

func meta(index, term uint64) Meta {
	return Meta{Index: index, Term: term, ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}}
}

func body(index uint64) []byte { return []byte(strings.Repeat(fmt.Sprintf("state-at-%d;", index), 50)) }

func save(t testing.TB, s *Snapshotter, index, term uint64) {
	t.Helper()
	err := s.Save(meta(index, term), func(w io.Writer) error {
		_, err := w.Write(body(index))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func load(t testing.TB, s *Snapshotter) (Meta, []byte, error) {
	t.Helper()
	m, rc, err := s.Load()
	if err != nil {
		return m, nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	return m, b, err
}

func wantLoad(t testing.TB, s *Snapshotter, index, term uint64) {
	t.Helper()
	m, b, err := load(t, s)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	want := meta(index, term)
	if m.Index != index || m.Term != term || !proto.Equal(m.ConfState, want.ConfState) {
		t.Fatalf("loaded %d/%d %v, want %d/%d", m.Index, m.Term, m.ConfState, index, term)
	}
	if !bytes.Equal(b, body(index)) {
		t.Fatalf("body mismatch: %q", b)
	}
}

func names(t testing.TB, fs vfs.FS) []string {
	t.Helper()
	n, err := fs.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSaveLoad(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	if _, _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("load from missing dir: %v", err)
	}
	save(t, s, 10, 2)
	wantLoad(t, s, 10, 2)
	save(t, s, 30, 3)
	save(t, s, 20, 3)
	wantLoad(t, s, 30, 3)
	if got := names(t, fs); strings.Join(got, ",") != "0000000000000002-000000000000000a.snap,0000000000000003-0000000000000014.snap,0000000000000003-000000000000001e.snap" {
		t.Fatalf("files %v", got)
	}
	m, rc, err := s.LoadNewestAvailable(25)
	if err != nil || m.Index != 20 {
		t.Fatalf("newest available <= 25: %v %v", m.Index, err)
	}
	rc.Close()
	if _, _, err := s.LoadNewestAvailable(5); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("newest available <= 5: %v", err)
	}
}

func TestNilConfStateAndEmptyBody(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	if err := s.Save(Meta{Index: 1, Term: 1}, func(io.Writer) error { return nil }); err != nil {
		t.Fatal(err)
	}
	m, rc, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil || len(b) != 0 || m.ConfState == nil || len(m.ConfState.GetVoters()) != 0 {
		t.Fatalf("%v %q %v", err, b, m.ConfState)
	}
}

func TestLargeBodyStreams(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	const chunks = 64                                       // 4 MiB
	err := s.Save(Meta{Index: 7, Term: 1}, func(w io.Writer) error {
		for i := 0; i < chunks; i++ {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, rc, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	n, err := io.Copy(io.Discard, rc)
	if err != nil || n != chunks*int64(len(chunk)) {
		t.Fatalf("read %d bytes: %v", n, err)
	}
}

func TestWriteErrorRemovesTmp(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	boom := errors.New("boom")
	err := s.Save(meta(5, 1), func(w io.Writer) error {
		w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("save: %v", err)
	}
	if got := names(t, fs); len(got) != 0 {
		t.Fatalf("left behind %v", got)
	}
}

func TestCrashDuringSave(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	save(t, s, 10, 1)
	fs.Crash() // a completed Save is durable
	wantLoad(t, s, 10, 1)

	// Power loss in the middle of the body.
	err := s.Save(meta(20, 1), func(w io.Writer) error {
		w.Write(bytes.Repeat([]byte("x"), 3<<20)) // past the buffer: reaches the file
		fs.Crash()
		_, err := w.Write([]byte("more"))
		return err
	})
	if err == nil {
		t.Fatal("save across a crash succeeded")
	}
	wantLoad(t, s, 10, 1)

	// A temporary file that did reach the disk (crash after its fsync,
	// before the rename) is ignored by Load and removed by Purge.
	f, _ := fs.Create(filepath.Join(dir, "0000000000000001-0000000000000014.snap.tmp"))
	f.Write([]byte("half a snapshot"))
	f.Sync()
	f.Close()
	fs.SyncDir(dir)
	fs.Crash()
	wantLoad(t, s, 10, 1)
	if err := s.Purge(5); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fs); len(got) != 1 || got[0] != "0000000000000001-000000000000000a.snap" {
		t.Fatalf("after purge %v", got)
	}
}

func TestSaveSyncFailure(t *testing.T) {
	mem := vfs.NewMem()
	efs := vfs.NewErrorFS(mem, nil)
	s := New(efs, dir, nil)
	save(t, s, 10, 1)
	efs.FailSync(errors.New("EIO"))
	if err := s.Save(meta(20, 1), func(w io.Writer) error { _, err := w.Write(body(20)); return err }); err == nil {
		t.Fatal("save with failing fsync succeeded")
	}
	efs.FailSync(nil)
	mem.Crash()
	wantLoad(t, s, 10, 1)
}

func TestCorruptNewestFallsBack(t *testing.T) {
	fs := vfs.NewMem()
	var logs bytes.Buffer
	s := New(fs, dir, slog.New(slog.NewTextHandler(&logs, nil)))
	save(t, s, 10, 1)
	save(t, s, 20, 1)
	name := filepath.Join(dir, "0000000000000001-0000000000000014.snap")
	f, _ := fs.OpenFile(name, 2, 0)
	f.Seek(100, io.SeekStart)
	f.Write([]byte{'#'})
	f.Close()
	wantLoad(t, s, 10, 1)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "crc mismatch") {
		t.Fatalf("log: %s", logs.String())
	}
	got := names(t, fs)
	if len(got) != 2 || got[1] != "0000000000000001-0000000000000014.snap.broken" {
		t.Fatalf("files %v", got)
	}
	// Purge keeps broken files for the operator.
	if err := s.Purge(0); err != nil {
		t.Fatal(err)
	}
	if got := names(t, fs); len(got) != 1 || !strings.HasSuffix(got[0], ".broken") {
		t.Fatalf("after purge %v", got)
	}
	if _, _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("load: %v", err)
	}
}

// TestEveryCorruptionDetected flips each byte and truncates at each length.
func TestEveryCorruptionDetected(t *testing.T) {
	src := vfs.NewMem()
	save(t, New(src, dir, nil), 10, 1)
	name := filepath.Join(dir, "0000000000000001-000000000000000a.snap")
	f, _ := src.Open(name)
	img, _ := io.ReadAll(f)
	f.Close()
	try := func(b []byte, what string) {
		fs := vfs.NewMem()
		fs.MkdirAll(dir, 0o755)
		g, _ := fs.Create(name)
		g.Write(b)
		g.Close()
		if _, _, err := New(fs, dir, nil).Load(); !errors.Is(err, ErrNoSnapshot) {
			t.Fatalf("%s: load: %v", what, err)
		}
	}
	for i := range img {
		b := bytes.Clone(img)
		b[i] ^= 0x01
		try(b, fmt.Sprintf("flip at %d", i))
	}
	for n := 0; n < len(img); n++ {
		try(img[:n], fmt.Sprintf("truncated to %d", n))
	}
	try(append(bytes.Clone(img), 0), "extra byte")
}

func TestHeaderMustMatchName(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	save(t, s, 10, 1)
	fs.Rename(filepath.Join(dir, "0000000000000001-000000000000000a.snap"), filepath.Join(dir, "0000000000000001-000000000000000b.snap"))
	if _, _, err := s.Load(); !errors.Is(err, ErrNoSnapshot) {
		t.Fatalf("load renamed: %v", err)
	}
}

func TestReaderDetectsLaterChange(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	save(t, s, 10, 1)
	_, rc, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	f, _ := fs.OpenFile(filepath.Join(dir, "0000000000000001-000000000000000a.snap"), 2, 0)
	f.Seek(200, io.SeekStart)
	f.Write([]byte{'#'})
	f.Close()
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("read after change: %v", err)
	}
}

func TestPurge(t *testing.T) {
	fs := vfs.NewMem()
	s := New(fs, dir, nil)
	for i := uint64(1); i <= 5; i++ {
		save(t, s, i*10, 1)
	}
	g, _ := fs.Create(filepath.Join(dir, "0000000000000001-0000000000000064.snap.tmp"))
	g.Close()
	if err := s.Purge(2); err != nil {
		t.Fatal(err)
	}
	got := names(t, fs)
	if strings.Join(got, ",") != "0000000000000001-0000000000000028.snap,0000000000000001-0000000000000032.snap" {
		t.Fatalf("after purge %v", got)
	}
	wantLoad(t, s, 50, 1)
	fs.Crash() // purge is durable
	if got := names(t, fs); len(got) != 2 {
		t.Fatalf("after crash %v", got)
	}
}

// FuzzLoad loads a snapshot file with arbitrary content: no panic, and a
// snapshot that loads reads back to EOF without error.
func FuzzLoad(f *testing.F) {
	src := vfs.NewMem()
	save(f, New(src, dir, nil), 10, 1)
	name := filepath.Join(dir, "0000000000000001-000000000000000a.snap")
	h, _ := src.Open(name)
	img, _ := io.ReadAll(h)
	h.Close()
	f.Add(img)
	f.Add(img[:40])
	f.Add([]byte("CAIRNSNP"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		fs.MkdirAll(dir, 0o755)
		g, _ := fs.Create(name)
		g.Write(data)
		g.Close()
		m, rc, err := New(fs, dir, nil).Load()
		if err != nil {
			if !errors.Is(err, ErrNoSnapshot) {
				t.Fatalf("load: %v", err)
			}
			return
		}
		defer rc.Close()
		if m.Index != 10 || m.Term != 1 {
			t.Fatalf("meta %d/%d", m.Index, m.Term)
		}
		if _, err := io.ReadAll(rc); err != nil {
			t.Fatalf("read: %v", err)
		}
	})
}
