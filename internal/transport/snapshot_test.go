package transport

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func snapMsg(from, to uint64, data []byte) *raftpb.Message {
	m := msg(raftpb.MsgSnap, from, to, 0)
	m.Snapshot = &raftpb.Snapshot{
		Data: data,
		Metadata: &raftpb.SnapshotMetadata{
			Index:     proto.Uint64(777),
			Term:      proto.Uint64(3),
			ConfState: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		},
	}
	return m
}

// A 20 MB snapshot is streamed on its own connection (heartbeats keep flowing
// while raft holds it) and reported with ReportSnapshot(to, false).
func TestSnapshotStreaming(t *testing.T) {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], testSeed(t))
	data := make([]byte, 20<<20)
	_, _ = rand.NewChaCha8(seed).Read(data)
	start := time.Now()
	defer func() { t.Logf("snapshot exchange took %v", time.Since(start)) }()
	heartbeat := make(chan struct{})
	b := startNode(t, 2, "", withHook(func(m *raftpb.Message) error {
		switch m.GetType() {
		case raftpb.MsgHeartbeat:
			if m.GetIndex() == 42 {
				close(heartbeat)
			}
		case raftpb.MsgSnap:
			// If heartbeats were queued behind the snapshot this would never return.
			select {
			case <-heartbeat:
			case <-time.After(20 * time.Second):
				t.Error("heartbeat did not arrive while the snapshot was being processed")
			}
		}
		return nil
	}))
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{b.url})
	sm := snapMsg(1, 2, data)
	a.tr.Send([]*raftpb.Message{sm})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 42)})
	waitFor(t, "ReportSnapshot", func() bool { return len(a.raft.snapshots()) == 1 })
	if r := a.raft.snapshots()[0]; r != (snapReport{id: 2, failed: false}) {
		t.Fatalf("report = %+v, want success for 2", r)
	}
	var got *raftpb.Message
	for _, m := range b.raft.received() {
		if m.GetType() == raftpb.MsgSnap {
			got = m
		}
	}
	if got == nil {
		t.Fatal("snapshot not processed")
	}
	if !bytes.Equal(got.GetSnapshot().GetData(), data) {
		t.Fatal("snapshot data differs")
	}
	if !proto.Equal(got, sm) {
		t.Fatal("snapshot message differs from the one sent")
	}
	if &sm.Snapshot.Data[0] != &data[0] || sm.Snapshot.Metadata.GetIndex() != 777 {
		t.Fatal("sender's message was modified")
	}
}

// A snapshot to a down peer is reported failed; a snapshot to an unknown peer
// too, synchronously.
func TestSnapshotFailure(t *testing.T) {
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{"http://" + freeAddr(t)})
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, []byte("state"))})
	waitFor(t, "failed ReportSnapshot", func() bool { return len(a.raft.snapshots()) == 1 })
	if r := a.raft.snapshots()[0]; r != (snapReport{id: 2, failed: true}) {
		t.Fatalf("report = %+v, want failure for 2", r)
	}
	if a.raft.unreachableCount(2) == 0 {
		t.Error("ReportUnreachable not called for the failed snapshot")
	}
	a.tr.Send([]*raftpb.Message{snapMsg(1, 9, []byte("state"))})
	if r := a.raft.snapshots(); len(r) != 2 || r[1] != (snapReport{id: 9, failed: true}) {
		t.Fatalf("reports = %+v, want a failure for unknown peer 9", r)
	}
}

// A snapshot raft refuses is reported failed.
func TestSnapshotRejectedByRaft(t *testing.T) {
	b := startNode(t, 2, "", withHook(func(m *raftpb.Message) error {
		if m.GetType() == raftpb.MsgSnap {
			return errOdd
		}
		return nil
	}))
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{b.url})
	a.tr.Send([]*raftpb.Message{snapMsg(1, 2, []byte("state"))})
	waitFor(t, "ReportSnapshot", func() bool { return len(a.raft.snapshots()) == 1 })
	if r := a.raft.snapshots()[0]; !r.failed {
		t.Fatalf("report = %+v, want failure", r)
	}
}
