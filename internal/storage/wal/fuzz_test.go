package wal

import (
	"bytes"
	"testing"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
)

// sampleSegment returns the image of a small valid segment (trimmed of its
// zero tail) and the name it must have.
func sampleSegment(t testing.TB) (string, []byte) {
	fs := vfs.NewMem()
	w := mustCreate(t, fs, Options{SegmentSize: 4096})
	must(t, w.Save(hs(1, 1, 0), ents(1, 3, 1), true))
	must(t, w.SaveSnapshot(Marker{Index: 2, Term: 1}))
	must(t, w.Save(hs(2, 2, 2), ents(3, 4, 2), true))
	must(t, w.Close())
	name := segFiles(t, fs)[0]
	img := readSeg(t, fs, name)
	return name, bytes.TrimRight(img, "\x00")
}

func FuzzDecodeRecord(f *testing.F) {
	_, img := sampleSegment(f)
	offs, ends := recordOffsets(img)
	for i := range offs {
		f.Add(img[offs[i]:ends[i]])
	}
	f.Add([]byte{})
	f.Add(make([]byte, 16))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, n, err := decodeRecord(data, 0)
		if err != nil {
			return
		}
		if n > len(data) || n%recordAlign != 0 {
			t.Fatalf("frame size %d for %d bytes", n, len(data))
		}
		again := appendRawRecord(nil, rec.typ, rec.payload)
		if !bytes.Equal(again, data[:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", again, data[:n])
		}
		// Payload decoders must not panic either.
		var r replayer
		_ = r.apply(segment{}, rec, 0)
	})
}

// FuzzOpen opens a WAL whose only segment has arbitrary content. Open must
// not panic; when it succeeds, the WAL must accept a write and reopen to the
// same state plus that write.
func FuzzOpen(f *testing.F) {
	name, img := sampleSegment(f)
	f.Add(img)
	f.Add(img[:len(img)-5])
	bad := append([]byte(nil), img...)
	bad[len(bad)/2] ^= 1
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		fs := vfs.NewMem()
		must(t, vfs.MkdirAllSync(fs, testDir, 0o755))
		writeSeg(t, fs, name, data)
		opts := Options{SegmentSize: 4096}
		w, st, err := Open(fs, testDir, opts)
		if err != nil {
			return
		}
		next := w.lastIndex + 1
		if err := w.Save(nil, []*raftpb.Entry{ent(next, 9, "fuzz")}, true); err != nil {
			t.Fatalf("save after open: %v", err)
		}
		must(t, w.Close())
		fs.Crash()
		w2, st2, err := Open(fs, testDir, opts)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer w2.Close()
		st.Entries = append(st.Entries, ent(next, 9, "fuzz"))
		want := describe(st)
		if got := describe(st2); got != want {
			t.Fatalf("reopen state\n got: %s\nwant: %s", got, want)
		}
	})
}

// FuzzReplay frames arbitrary (type, payload) pairs as valid records after a
// valid segment header, so the fuzzer reaches the replay rules behind the
// crc check. Input: repeated [u8 type][u8 length][payload].
func FuzzReplay(f *testing.F) {
	f.Add([]byte{2, 1, 'm', 5, 16, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	e1, _ := appendEntryRecord(nil, ent(1, 1, "a"))
	e3, _ := appendEntryRecord(nil, ent(3, 1, "c"))
	seedIn := []byte{3, byte(len(e1) - 9)}
	seedIn = append(seedIn, e1[9:9+len(e1)-9]...)
	seedIn = append(seedIn, 3, byte(len(e3)-9))
	seedIn = append(seedIn, e3[9:]...)
	f.Add(seedIn)
	f.Fuzz(func(t *testing.T, data []byte) {
		seg := segment{seq: 0, first: 1}
		img := appendSegmentRecord(nil, seg.seq, seg.first)
		for len(data) >= 2 {
			typ, n := data[0], int(data[1])
			data = data[2:]
			n = min(n, len(data))
			img = appendRawRecord(img, recordType(typ%6), data[:n])
			data = data[n:]
		}
		fs := vfs.NewMem()
		must(t, vfs.MkdirAllSync(fs, testDir, 0o755))
		writeSeg(t, fs, seg.name(), img)
		w, st, err := Open(fs, testDir, Options{SegmentSize: 4096})
		if err != nil {
			return
		}
		defer w.Close()
		for i, e := range st.Entries {
			if e.GetIndex() != st.Snapshot.Index+1+uint64(i) {
				t.Fatalf("entries not contiguous from the snapshot: %s", describe(st))
			}
		}
		if err := w.Save(nil, []*raftpb.Entry{ent(w.lastIndex+1, 1, "x")}, true); err != nil {
			t.Fatalf("save: %v", err)
		}
	})
}
