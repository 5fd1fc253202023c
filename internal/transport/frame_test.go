package transport

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func fullMessage() *raftpb.Message {
	m := snapMsg(1, 2, []byte("snapshot-data"))
	m.LogTerm = proto.Uint64(2)
	m.Commit = proto.Uint64(9)
	m.Vote = proto.Uint64(1)
	m.Reject = proto.Bool(true)
	m.RejectHint = proto.Uint64(5)
	m.Context = []byte("ctx")
	m.Entries = []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(4), Data: []byte("e")}}
	m.Responses = []*raftpb.Message{msg(raftpb.MsgAppResp, 2, 1, 4)}
	return m
}

func TestFrameRoundTrip(t *testing.T) {
	in := []*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), {}, fullMessage(), msg(raftpb.MsgHeartbeat, 1, 2, 2)}
	var buf []byte
	for _, m := range in {
		var err error
		if buf, err = appendFrame(buf, m); err != nil {
			t.Fatal(err)
		}
	}
	fr := newFrameReader(bytes.NewReader(buf))
	for i, want := range in {
		p, err := fr.next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		got, err := decodeMessage(p)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("frame %d: got %v, want %v", i, got, want)
		}
	}
	if _, err := fr.next(); err != io.EOF {
		t.Fatalf("end: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	good, _ := appendFrame(nil, msg(raftpb.MsgApp, 1, 2, 1))
	tooBig := binary.BigEndian.AppendUint32(nil, MaxFrameSize+1)
	for name, tc := range map[string]struct {
		in   []byte
		want error
	}{
		"truncated header":  {good[:2], io.ErrUnexpectedEOF},
		"truncated payload": {good[:len(good)-1], io.ErrUnexpectedEOF},
		"too large":         {tooBig, ErrFrameTooLarge},
		"lying large":       {binary.BigEndian.AppendUint32(nil, 100<<20), io.ErrUnexpectedEOF},
	} {
		_, err := newFrameReader(bytes.NewReader(tc.in)).next()
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if _, err := decodeMessage([]byte{0xff, 0xff}); !errors.Is(err, ErrBadFrame) {
		t.Errorf("garbage payload: %v, want ErrBadFrame", err)
	}
}

// The snapshot header keeps every field but Data, and the wire form restores it.
func TestSnapshotEncoding(t *testing.T) {
	m := fullMessage()
	h := snapshotHeader(m)
	if len(h.GetSnapshot().GetData()) != 0 || string(m.GetSnapshot().GetData()) != "snapshot-data" {
		t.Fatal("header kept Data or the original lost it")
	}
	h.Snapshot.Data = m.Snapshot.Data
	if !proto.Equal(h, m) {
		t.Fatalf("header lost a field:\n%v\n%v", h, m)
	}
	body := snapshotBody(t, m)
	got, err := decodeSnapshot(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, m) {
		t.Fatalf("decoded %v, want %v", got, m)
	}
	for i := 0; i < len(body); i++ {
		if _, err := decodeSnapshot(bytes.NewReader(body[:i])); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
	notSnap, _ := appendFrame(nil, msg(raftpb.MsgApp, 1, 2, 1))
	if _, err := decodeSnapshot(bytes.NewReader(notSnap)); !errors.Is(err, ErrBadFrame) {
		t.Fatalf("non-snapshot: %v", err)
	}
}

func snapshotBody(t testing.TB, m *raftpb.Message) []byte {
	prefix, err := encodeSnapshotPrefix(m)
	if err != nil {
		t.Fatal(err)
	}
	return append(prefix, m.GetSnapshot().GetData()...)
}

// FuzzFrameDecoder: arbitrary stream bytes never panic or over-allocate; every
// decoded message re-encodes to a frame that decodes to the same message.
func FuzzFrameDecoder(f *testing.F) {
	var stream []byte
	for _, m := range []*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), fullMessage(), {}} {
		stream, _ = appendFrame(stream, m)
	}
	f.Add(stream)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0x08})
	f.Add(binary.BigEndian.AppendUint32(nil, MaxFrameSize+1))
	f.Add(binary.BigEndian.AppendUint32(nil, 200<<20))
	f.Fuzz(func(t *testing.T, in []byte) {
		fr := newFrameReader(bytes.NewReader(in))
		for {
			p, err := fr.next()
			if err != nil {
				return
			}
			m, err := decodeMessage(p)
			if err != nil {
				return
			}
			again, err := appendFrame(nil, m)
			if err != nil {
				t.Fatal(err)
			}
			p2, err := newFrameReader(bytes.NewReader(again)).next()
			if err != nil {
				t.Fatal(err)
			}
			m2, err := decodeMessage(p2)
			if err != nil || !proto.Equal(m, m2) {
				t.Fatalf("re-decode: %v %v %v", err, m, m2)
			}
		}
	})
}

// FuzzSnapshotDecoder: arbitrary /raft/snapshot bodies never panic.
func FuzzSnapshotDecoder(f *testing.F) {
	m := fullMessage()
	prefix, _ := encodeSnapshotPrefix(m)
	f.Add(append(prefix, m.GetSnapshot().GetData()...))
	f.Add(prefix)
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := decodeSnapshot(bytes.NewReader(in))
		if err == nil && (got.GetType() != raftpb.MsgSnap || got.GetSnapshot() == nil) {
			t.Fatalf("accepted %v", got)
		}
	})
}

// FuzzFastDecode: whenever the fast path accepts an input, proto.Unmarshal
// accepts it too and yields an equal message.
func FuzzFastDecode(f *testing.F) {
	for _, m := range []*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1), fullMessage(), {}, smallBatch(1)[0]} {
		b, _ := proto.Marshal(m)
		f.Add(b)
	}
	app := msg(raftpb.MsgApp, 1, 2, 7)
	app.Context, app.Reject, app.Vote, app.RejectHint, app.LogTerm = []byte{}, proto.Bool(false), proto.Uint64(0), proto.Uint64(1), proto.Uint64(6)
	app.Entries = []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(8), Data: []byte("x")}, {Type: raftpb.EntryConfChange.Enum(), Data: []byte{}}, {}}
	b, _ := proto.Marshal(app)
	f.Add(b)
	f.Add([]byte{0x08, 0x63})             // unknown enum value
	f.Add([]byte{0x10, 0x01, 0x10, 0x02}) // repeated scalar: last wins
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := decodeFast(in)
		if !ok {
			return
		}
		want := &raftpb.Message{}
		if err := proto.Unmarshal(in, want); err != nil {
			t.Fatalf("fast path accepted what proto.Unmarshal rejects: %v", err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("fast %v\nproto %v", got, want)
		}
	})
}

func TestFastDecodeCoversCommonMessages(t *testing.T) {
	m := smallBatch(1)[0]
	m.Entries = []*raftpb.Entry{{Term: proto.Uint64(3), Index: proto.Uint64(8), Data: []byte("x")}}
	m.Context = []byte("c")
	b, _ := proto.Marshal(m)
	got, ok := decodeFast(b)
	if !ok || !proto.Equal(got, m) {
		t.Fatalf("fast path: ok=%v %v", ok, got)
	}
	if s, _ := proto.Marshal(snapMsg(1, 2, nil)); s != nil {
		if _, ok := decodeFast(s); ok {
			t.Fatal("fast path took a snapshot message")
		}
	}
}
