package raftnode

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// memNet delivers messages between in-process nodes; a member that is down
// drops what it is sent.
type memNet struct {
	mu    sync.Mutex // protects nodes
	nodes map[uint64]*Node
}

type memTransport struct {
	net *memNet
}

func (t memTransport) Send(msgs []*raftpb.Message) {
	for _, m := range msgs {
		t.net.mu.Lock()
		to := t.net.nodes[m.GetTo()]
		t.net.mu.Unlock()
		if to != nil {
			go to.Process(context.Background(), m) //nolint:errcheck // a stopped node drops it, like a network
		}
	}
}

// member is a node plus the applier loop a server would run: it records
// the order of applied data entries.
type member struct {
	id      uint64
	fs      *vfs.MemFS
	node    *Node
	ticks   chan time.Time
	mu      sync.Mutex // protects applied
	applied []uint64
	done    chan struct{}
}

func (m *member) appliedCopy() []uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]uint64(nil), m.applied...)
}

func startMember(t *testing.T, net *memNet, m *member, peers []raft.Peer) {
	t.Helper()
	m.ticks = make(chan time.Time)
	n, restored, err := Start(Config{
		ID: m.id, Peers: peers, FS: m.fs, WALDir: "/wal", SnapDir: "/snap", WALSegmentSize: 64 << 10,
		Ticks: m.ticks, Transport: memTransport{net},
	})
	if err != nil {
		t.Fatalf("start %d: %v", m.id, err)
	}
	if restored.Snapshot != nil {
		t.Fatalf("unexpected snapshot")
	}
	m.node = n
	m.done = make(chan struct{})
	m.mu.Lock()
	m.applied = nil
	m.mu.Unlock()
	go func() {
		defer close(m.done)
		for ap := range n.Apply() {
			for _, e := range ap.Entries {
				switch e.GetType() {
				case raftpb.EntryConfChange:
					var cc raftpb.ConfChange
					if err := proto.Unmarshal(e.GetData(), &cc); err == nil {
						n.ApplyConfChange(&cc)
					}
				case raftpb.EntryNormal:
					if len(e.GetData()) == 8 {
						m.mu.Lock()
						m.applied = append(m.applied, binary.BigEndian.Uint64(e.GetData()))
						m.mu.Unlock()
					}
				}
			}
		}
	}()
	net.mu.Lock()
	net.nodes[m.id] = n
	net.mu.Unlock()
}

func stopMember(net *memNet, m *member) {
	net.mu.Lock()
	delete(net.nodes, m.id)
	net.mu.Unlock()
	m.node.Stop()
	<-m.done
}

// tickAll ticks every running member once.
func tickAll(ms []*member, running map[uint64]bool) {
	for _, m := range ms {
		if running[m.id] {
			m.ticks <- time.Time{}
		}
	}
}

// TestReplicateCrashAndRecover runs three nodes over an in-memory network
// and in-memory file systems: proposals are applied in the same order
// everywhere; a node that crashes (losing whatever it did not fsync) and
// restarts replays its WAL and catches up with what it missed.
func TestReplicateCrashAndRecover(t *testing.T) {
	net := &memNet{nodes: map[uint64]*Node{}}
	var ms []*member
	var peers []raft.Peer
	for id := uint64(1); id <= 3; id++ {
		ms = append(ms, &member{id: id, fs: vfs.NewMem()})
		peers = append(peers, raft.Peer{ID: id})
	}
	running := map[uint64]bool{}
	for _, m := range ms {
		startMember(t, net, m, peers)
		running[m.id] = true
	}
	defer func() {
		for _, m := range ms {
			if running[m.id] {
				stopMember(net, m)
			}
		}
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; i < 5000; i++ {
			if cond() {
				return
			}
			tickAll(ms, running)
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("timed out waiting for %s", what)
	}
	leader := func() *member {
		for _, m := range ms {
			if running[m.id] && m.node.IsLeader() {
				return m
			}
		}
		return nil
	}
	waitFor("a leader", func() bool { return leader() != nil })

	propose := func(from *member, v uint64) {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], v)
		if err := from.node.Propose(context.Background(), b[:]); err != nil {
			t.Fatalf("propose %d: %v", v, err)
		}
	}
	for v := uint64(1); v <= 50; v++ {
		propose(leader(), v)
	}
	waitFor("50 entries applied everywhere", func() bool {
		for _, m := range ms {
			if len(m.appliedCopy()) < 50 {
				return false
			}
		}
		return true
	})

	// Crash a follower: stop it and drop its unsynced bytes.
	var f *member
	for _, m := range ms {
		if !m.node.IsLeader() {
			f = m
			break
		}
	}
	stopMember(net, f)
	running[f.id] = false
	f.fs.Crash()
	for v := uint64(51); v <= 80; v++ {
		propose(leader(), v)
	}
	startMember(t, net, f, nil)
	running[f.id] = true
	waitFor("every member, the restarted one too, to apply 80 entries", func() bool {
		for _, m := range ms {
			if len(m.appliedCopy()) < 80 {
				return false
			}
		}
		return true
	})

	want := fmt.Sprint(ms[0].appliedCopy()[:80])
	for _, m := range ms {
		if got := fmt.Sprint(m.appliedCopy()[:80]); got != want {
			t.Fatalf("member %d applied %s, member 1 %s", m.id, got, want)
		}
	}
}

// TestUnreadReadStatesNeverStallRaft is the regression test for a liveness
// bug the long robustness run found: ReadIndex answers nobody reads (a
// reader that gave up, a retried request answered twice) filled the channel
// and blocked the Ready loop for good.
func TestUnreadReadStatesNeverStallRaft(t *testing.T) {
	net := &memNet{nodes: map[uint64]*Node{}}
	m := &member{id: 1, fs: vfs.NewMem()}
	startMember(t, net, m, []raft.Peer{{ID: 1}})
	running := map[uint64]bool{1: true}
	defer stopMember(net, m)
	for i := 0; i < 5000 && !m.node.IsLeader(); i++ {
		tickAll([]*member{m}, running)
		time.Sleep(time.Millisecond)
	}
	if !m.node.IsLeader() {
		t.Fatal("no leader")
	}
	ctx := context.Background()
	for i := 0; i < 500; i++ { // far more than the channel holds; nobody reads them
		if err := m.node.ReadIndex(ctx, []byte{byte(i), byte(i >> 8)}); err != nil {
			t.Fatal(err)
		}
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], 42)
	if err := m.node.Propose(ctx, b[:]); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(m.appliedCopy()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("raft stopped applying after unread read states piled up")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPeerLostElectsWithoutWaitingForTimeout: when the leader is gone and
// the followers are told its stream died, they elect a new leader without a
// single tick (no election timeout elapses); without PeerLost they would
// wait for ticks forever here.
func TestPeerLostElectsWithoutWaitingForTimeout(t *testing.T) {
	net := &memNet{nodes: map[uint64]*Node{}}
	var ms []*member
	var peers []raft.Peer
	for id := uint64(1); id <= 3; id++ {
		ms = append(ms, &member{id: id, fs: vfs.NewMem()})
		peers = append(peers, raft.Peer{ID: id})
	}
	running := map[uint64]bool{}
	for _, m := range ms {
		startMember(t, net, m, peers)
		running[m.id] = true
	}
	defer func() {
		for _, m := range ms {
			if running[m.id] {
				stopMember(net, m)
			}
		}
	}()
	var lead *member
	for i := 0; i < 5000 && lead == nil; i++ {
		tickAll(ms, running)
		time.Sleep(time.Millisecond)
		for _, m := range ms {
			if m.node.IsLeader() {
				lead = m
			}
		}
	}
	if lead == nil {
		t.Fatal("no leader")
	}
	// Let every follower learn the leader before it goes away.
	for i := 0; i < 5000; i++ {
		ok := true
		for _, m := range ms {
			ok = ok && m.node.Leader() == lead.id
		}
		if ok {
			break
		}
		tickAll(ms, running)
		time.Sleep(time.Millisecond)
	}
	stopMember(net, lead)
	running[lead.id] = false
	// The followers learn of the loss one after the other, as they do in
	// practice (each from its own stream). Told at the very same instant,
	// both could campaign at once and split the vote, which only an
	// election timeout (ticks) resolves, the normal raft path.
	for _, m := range ms {
		if running[m.id] {
			m.node.PeerLost(lead.id)
			time.Sleep(50 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range ms {
			if running[m.id] && m.node.IsLeader() {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no new leader without ticks after PeerLost")
		}
		time.Sleep(time.Millisecond)
	}
}
