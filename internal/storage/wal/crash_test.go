package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// model is the log a correct WAL must recover.
type model struct {
	hs     [3]uint64
	marker Marker
	log    []*raftpb.Entry // contiguous, may start at or before marker.Index+1
	last   uint64
}

func (m model) clone() model {
	m.log = append([]*raftpb.Entry(nil), m.log...)
	return m
}

func (m model) state() string {
	st := &State{Metadata: []byte("cluster=1,member=2"), HardState: hs(m.hs[0], m.hs[1], m.hs[2]), Snapshot: m.marker}
	for _, e := range m.log {
		if e.GetIndex() > m.marker.Index {
			st.Entries = append(st.Entries, e)
		}
	}
	return describe(st)
}

// TestCrashRandom runs random Saves (synced or not), snapshot markers,
// releases and simulated power losses. After each crash the recovered state
// must be one the log passed through at or after its last fsync.
func TestCrashRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(seed(t, "WAL_SEED"), 7))
	for round := 0; round < 20; round++ {
		fs := vfs.NewMem()
		opts := Options{SegmentSize: int64(256 + rng.IntN(2048))}
		w := mustCreate(t, fs, opts)
		var m model
		history := []string{m.state()} // states since the last sync; [0] is durable
		term := uint64(1)
		for op := 0; op < 300; op++ {
			switch r := rng.IntN(100); {
			case r < 70: // Save
				var batch []*raftpb.Entry
				from := m.last + 1
				if rng.IntN(6) == 0 && m.last > m.marker.Index { // leader change: rewrite a suffix
					term++
					from = m.marker.Index + 1 + rng.Uint64N(m.last-m.marker.Index)
				}
				for i := 0; i < rng.IntN(10); i++ {
					batch = append(batch, ent(from+uint64(i), term, fmt.Sprintf("r%d-op%d-%d", round, op, i)))
				}
				var h *raftpb.HardState
				if rng.IntN(2) == 0 {
					m.hs = [3]uint64{term, rng.Uint64N(4), m.marker.Index + rng.Uint64N(3)}
					h = hs(m.hs[0], m.hs[1], m.hs[2])
				}
				sync := rng.IntN(3) > 0
				must(t, w.Save(h, batch, sync))
				if len(batch) > 0 {
					keep := 0
					for keep < len(m.log) && m.log[keep].GetIndex() < from {
						keep++
					}
					m.log = append(m.log[:keep:keep], batch...)
					m.last = batch[len(batch)-1].GetIndex()
				}
				if sync {
					history = history[:0]
				}
				history = append(history, m.clone().state())
			case r < 78: // snapshot marker at or below the last index
				if m.last == 0 {
					continue
				}
				idx := m.marker.Index + rng.Uint64N(m.last-m.marker.Index+1)
				mk := Marker{Index: idx, Term: term}
				must(t, w.SaveSnapshot(mk))
				m.marker = mk
				history = []string{m.state()}
			case r < 88:
				must(t, w.ReleaseTo(m.marker.Index+1, rng.IntN(3)))
			default: // power loss, then recover
				fs.Crash()
				var st *State
				w, st = mustOpen(t, fs, opts)
				got := describe(st)
				found := -1
				for i, h := range history {
					if h == got {
						found = i
					}
				}
				if found < 0 {
					t.Fatalf("round %d op %d: recovered state is not one the log passed through since its last fsync\n got: %s\nhistory: %q", round, op, got, history)
				}
				// Continue from the recovered state.
				m = model{marker: st.Snapshot, log: st.Entries, hs: [3]uint64{st.HardState.GetTerm(), st.HardState.GetVote(), st.HardState.GetCommit()}}
				m.last = max(m.marker.Index, w.lastIndex)
				if n := len(st.Entries); n > 0 {
					m.last = st.Entries[n-1].GetIndex()
				}
				history = []string{m.state()}
			}
		}
		must(t, w.Close())
		_, st := mustOpen(t, fs, opts)
		if got, want := describe(st), history[len(history)-1]; got != want {
			t.Fatalf("round %d: clean reopen\n got: %s\nwant: %s", round, got, want)
		}
	}
}

// TestTornTailEveryOffset cuts the last record at every byte offset, filling
// the rest with zeros or with garbage, and checks Open repairs it, keeps
// everything before, and the log keeps working.
func TestTornTailEveryOffset(t *testing.T) {
	opts := Options{SegmentSize: 4096}
	fs := vfs.NewMem()
	w := mustCreate(t, fs, opts)
	must(t, w.Save(hs(1, 1, 2), ents(1, 5, 1), true))
	start := w.off
	must(t, w.Save(nil, []*raftpb.Entry{ent(6, 1, "the last record, torn by a crash")}, true))
	end := w.off
	must(t, w.Close())
	files := segFiles(t, fs)
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	image := readSeg(t, fs, files[0])
	// Zeroing only the padding leaves the record intact.
	unpadded := start + recordHeaderSize + int64(binary.LittleEndian.Uint32(image[start:]))
	rng := rand.New(rand.NewPCG(seed(t, "WAL_SEED"), 3))
	for _, garbage := range []bool{false, true} {
		for cut := start; cut < end; cut++ {
			b := append([]byte(nil), image...)
			for i := cut; i < int64(len(b)); i++ {
				b[i] = 0
				if garbage && i < end {
					b[i] = byte(rng.IntN(256))
				}
			}
			fs := vfs.NewMem()
			must(t, vfs.MkdirAllSync(fs, testDir, 0o755))
			writeSeg(t, fs, files[0], b)
			w, st, err := Open(fs, testDir, opts)
			if err != nil {
				t.Fatalf("garbage=%v cut at %d: %v", garbage, cut, err)
			}
			if !garbage && cut >= unpadded {
				if len(st.Entries) != 6 {
					t.Fatalf("cut %d in padding lost the record", cut)
				}
				w.Close()
				continue
			}
			wantState(t, st, "cluster=1,member=2", hs(1, 1, 2), Marker{}, ents(1, 5, 1))
			if w.off != start {
				t.Fatalf("cut %d: appending at %d, want %d", cut, w.off, start)
			}
			must(t, w.Save(nil, ents(6, 7, 2), true))
			must(t, w.Close())
			fs.Crash()
			_, st = mustOpen(t, fs, opts)
			wantState(t, st, "cluster=1,member=2", hs(1, 1, 2), Marker{}, append(ents(1, 5, 1), ents(6, 7, 2)...))
		}
	}
}

// TestCorruptionDetected flips every byte of every record except the last
// one of the log and checks Open reports ErrCorrupt naming the file and the
// offset of the damaged record (or the segment header when the flip makes
// the header invalid). Flips in the last record are torn-tail repairs.
func TestCorruptionDetected(t *testing.T) {
	opts := Options{SegmentSize: 320}
	fs := vfs.NewMem()
	w := mustCreate(t, fs, opts)
	for i := uint64(1); i <= 12; i += 3 {
		must(t, w.Save(hs(1, 1, i), ents(i, i+2, 1), true))
	}
	must(t, w.Close())
	files := segFiles(t, fs)
	if len(files) < 3 {
		t.Fatalf("want several segments, have %v", files)
	}
	images := map[string][]byte{}
	for _, f := range files {
		images[f] = readSeg(t, fs, f)
	}
	checked := 0
	for fi, name := range files {
		img := images[name]
		offs, ends := recordOffsets(img)
		lastSeg := fi == len(files)-1
		for ri := range offs {
			lastRec := lastSeg && ri == len(offs)-1
			for pos := offs[ri]; pos < ends[ri]; pos++ {
				fs := vfs.NewMem()
				must(t, vfs.MkdirAllSync(fs, testDir, 0o755))
				for _, n := range files {
					b := images[n]
					if n == name {
						b = append([]byte(nil), b...)
						b[pos] ^= 0x20
					}
					writeSeg(t, fs, n, b)
				}
				w, st, err := Open(fs, testDir, opts)
				if lastRec {
					if err != nil {
						t.Fatalf("%s: flip at %d of the last record: %v", name, pos, err)
					}
					if len(st.Entries) != 11 && len(st.Entries) != 12 {
						t.Fatalf("flip in last record: %d entries", len(st.Entries))
					}
					w.Close()
					continue
				}
				var ce *CorruptError
				if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: flip at %d: got %v, want ErrCorrupt", name, pos, err)
				}
				if ce.File != name || (ce.Offset != int64(offs[ri]) && ce.Offset != 0) {
					t.Fatalf("%s: flip at %d in record at %d: error names %s offset %d (%v)", name, pos, offs[ri], ce.File, ce.Offset, err)
				}
				checked++
			}
		}
	}
	t.Logf("%d corruptions detected", checked)
}

func TestMissingMiddleSegment(t *testing.T) {
	opts := Options{SegmentSize: 300}
	fs := vfs.NewMem()
	w := mustCreate(t, fs, opts)
	for i := uint64(1); i <= 30; i += 3 {
		must(t, w.Save(hs(1, 1, i), ents(i, i+2, 1), true))
	}
	must(t, w.Close())
	files := segFiles(t, fs)
	must(t, fs.Remove(testDir+"/"+files[2]))
	if _, _, err := Open(fs, testDir, opts); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("missing segment: %v", err)
	}
}

func TestGarbageAfterSealedSegmentEnd(t *testing.T) {
	opts := Options{SegmentSize: 300}
	fs := vfs.NewMem()
	w := mustCreate(t, fs, opts)
	for i := uint64(1); i <= 12; i += 3 {
		must(t, w.Save(hs(1, 1, i), ents(i, i+2, 1), true))
	}
	must(t, w.Close())
	files := segFiles(t, fs)
	img := readSeg(t, fs, files[0])
	_, ends := recordOffsets(img)
	if ends[len(ends)-1] >= len(img) {
		t.Skip("segment full")
	}
	img[len(img)-1] = 1
	writeSeg(t, fs, files[0], img)
	var ce *CorruptError
	if _, _, err := Open(fs, testDir, opts); !errors.As(err, &ce) || ce.File != files[0] {
		t.Fatalf("garbage in sealed segment: %v", err)
	}
}
