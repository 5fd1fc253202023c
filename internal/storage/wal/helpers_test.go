package wal

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

const testDir = "data/wal"

func seed(t testing.TB, env string) uint64 {
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

func ent(idx, term uint64, data string) *raftpb.Entry {
	return &raftpb.Entry{Index: proto.Uint64(idx), Term: proto.Uint64(term), Type: raftpb.EntryNormal.Enum(), Data: []byte(data)}
}

func ents(lo, hi, term uint64) []*raftpb.Entry {
	var out []*raftpb.Entry
	for i := lo; i <= hi; i++ {
		out = append(out, ent(i, term, fmt.Sprintf("entry-%d-term-%d", i, term)))
	}
	return out
}

func hs(term, vote, commit uint64) *raftpb.HardState {
	return &raftpb.HardState{Term: proto.Uint64(term), Vote: proto.Uint64(vote), Commit: proto.Uint64(commit)}
}

func mustCreate(t testing.TB, fs vfs.FS, opts Options) *WAL {
	t.Helper()
	w, err := Create(fs, testDir, []byte("cluster=1,member=2"), opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func mustOpen(t testing.TB, fs vfs.FS, opts Options) (*WAL, *State) {
	t.Helper()
	w, st, err := Open(fs, testDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w, st
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// describe renders a State for comparison.
func describe(st *State) string {
	s := fmt.Sprintf("meta=%q hs=%d/%d/%d snap=%d/%d ents=[", st.Metadata,
		st.HardState.GetTerm(), st.HardState.GetVote(), st.HardState.GetCommit(), st.Snapshot.Index, st.Snapshot.Term)
	for _, e := range st.Entries {
		s += fmt.Sprintf(" %d/%d/%s/%q", e.GetIndex(), e.GetTerm(), e.GetType(), e.GetData())
	}
	return s + " ]"
}

func wantState(t testing.TB, got *State, meta string, h *raftpb.HardState, snap Marker, es []*raftpb.Entry) {
	t.Helper()
	if h == nil {
		h = &raftpb.HardState{}
	}
	want := &State{Metadata: []byte(meta), HardState: h, Snapshot: snap, Entries: es}
	if g, w := describe(got), describe(want); g != w {
		t.Fatalf("state mismatch\n got: %s\nwant: %s", g, w)
	}
	for i, e := range got.Entries {
		if !proto.Equal(e, es[i]) {
			t.Fatalf("entry %d: got %v want %v", i, e, es[i])
		}
	}
}

func segFiles(t testing.TB, fs vfs.FS) []string {
	t.Helper()
	names, err := fs.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			out = append(out, n)
		}
	}
	return out
}

func readSeg(t testing.TB, fs vfs.FS, name string) []byte {
	t.Helper()
	f, err := fs.Open(filepath.Join(testDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := readAll(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// writeSeg replaces a segment's content durably.
func writeSeg(t testing.TB, fs vfs.FS, name string, b []byte) {
	t.Helper()
	f, err := fs.Create(filepath.Join(testDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	must(t, f.Sync())
	must(t, f.Close())
	must(t, fs.SyncDir(testDir))
}

// recordOffsets walks the valid records of a segment image.
func recordOffsets(b []byte) (offs []int, ends []int) {
	off := 0
	for {
		_, n, err := decodeRecord(b, off)
		if err != nil {
			return
		}
		offs = append(offs, off)
		ends = append(ends, off+n)
		off += n
	}
}
