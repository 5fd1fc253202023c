package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/raftnode"
)

// fakeNode is a single-member "raft" that commits every proposal at once,
// in order: enough to test the server's waits, reads, apply and duties
// deterministically, without a network or a clock.
type fakeNode struct {
	mu      sync.Mutex // protects index and snaps
	index   uint64
	snaps   []uint64
	applyc  chan raftnode.Apply
	readc   chan raftnode.ReadState
	leader  atomic.Bool
	dropAll bool // lose every proposal (a leader change eating them)
	// hold, when set, keeps back the proposals it returns true for, in
	// order, until release: a proposal still on its way while later ones
	// commit.
	hold func(data []byte) bool
	held [][]byte
	// active, when set, is what Progress reports as recently active (the
	// leader's view of who it heard from); nil: nobody.
	active func(id uint64) bool
}

// release commits the held proposals, after everything proposed so far.
func (f *fakeNode) release() {
	f.mu.Lock()
	held := f.held
	f.held, f.hold = nil, nil
	f.mu.Unlock()
	for _, data := range held {
		_ = f.Propose(context.Background(), data)
	}
}

func newFakeNode() *fakeNode {
	f := &fakeNode{applyc: make(chan raftnode.Apply, 1024), readc: make(chan raftnode.ReadState, 16)}
	f.leader.Store(true)
	return f
}

func (f *fakeNode) Propose(ctx context.Context, data []byte) error {
	f.mu.Lock()
	if f.dropAll {
		f.mu.Unlock()
		return nil
	}
	if f.hold != nil && f.hold(data) {
		f.held = append(f.held, data)
		f.mu.Unlock()
		return nil
	}
	f.index++
	e := &raftpb.Entry{Index: proto.Uint64(f.index), Term: proto.Uint64(1), Type: raftpb.EntryNormal.Enum(), Data: data}
	f.mu.Unlock()
	f.applyc <- raftnode.Apply{Entries: []*raftpb.Entry{e}}
	return nil
}

func (f *fakeNode) ReadIndex(ctx context.Context, rctx []byte) error {
	f.mu.Lock()
	idx := f.index
	f.mu.Unlock()
	f.readc <- raftnode.ReadState{Index: idx, RequestCtx: rctx}
	return nil
}

func (f *fakeNode) ReadStates() <-chan raftnode.ReadState { return f.readc }
func (f *fakeNode) Apply() <-chan raftnode.Apply          { return f.applyc }
func (f *fakeNode) ApplyConfChange(cc raftpb.ConfChangeI) *raftpb.ConfState {
	return &raftpb.ConfState{Voters: []uint64{1}}
}
func (f *fakeNode) CreateSnapshot(ctx context.Context, index uint64, cs *raftpb.ConfState, write func(io.Writer) error) error {
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		return err
	}
	if _, err := decodeState(buf.Bytes()); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps = append(f.snaps, index)
	return nil
}
func (f *fakeNode) Leader() uint64                             { return 1 }
func (f *fakeNode) Term() uint64                               { return 1 }
func (f *fakeNode) IsLeader() bool                             { return f.leader.Load() }
func (f *fakeNode) TransferLeadership(context.Context, uint64) {}
func (f *fakeNode) Progress(id uint64) (uint64, uint64, bool, bool) {
	f.mu.Lock()
	active := f.active
	f.mu.Unlock()
	return 0, 0, active != nil && active(id), true
}
func (f *fakeNode) ProposeConfChange(ctx context.Context, cc *raftpb.ConfChange) error {
	data, err := proto.Marshal(cc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.index++
	e := &raftpb.Entry{Index: proto.Uint64(f.index), Term: proto.Uint64(1), Type: raftpb.EntryConfChange.Enum(), Data: data}
	f.mu.Unlock()
	f.applyc <- raftnode.Apply{Entries: []*raftpb.Entry{e}}
	return nil
}

func newTestServer(t *testing.T, node *fakeNode, mutate func(*Config)) *Server {
	t.Helper()
	cfg := Config{MemberID: 1, ClusterID: 2, Node: node, SnapshotCount: 5, RequestTimeout: 2 * time.Second}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func put(t *testing.T, s *Server, k, v string) int64 {
	t.Helper()
	_, rev, err := s.Txn(context.Background(), &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte(k), Value: []byte(v)}}}}, false)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func TestProposeApplyAndLinearizableRead(t *testing.T) {
	node := newFakeNode()
	s := newTestServer(t, node, nil)
	for i := 0; i < 20; i++ {
		if rev := put(t, s, fmt.Sprintf("k%02d", i), "v"); rev != int64(i+2) {
			t.Fatalf("put %d answered revision %d", i, rev)
		}
	}
	res, rev, err := s.Range(context.Background(), &mvcc.RangeRequest{Key: []byte("k"), End: []byte("l"), CountOnly: true}, false)
	if err != nil || res.Count != 20 || rev != 21 {
		t.Fatalf("range: %+v rev %d err %v", res, rev, err)
	}
	// 20 applied entries with SnapshotCount 5 took snapshots off the apply path.
	deadline := time.Now().Add(5 * time.Second)
	for {
		node.mu.Lock()
		n := len(node.snaps)
		node.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no snapshot was taken")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestApplyErrorsReachTheCallerAndChangeNothing(t *testing.T) {
	s := newTestServer(t, newFakeNode(), nil)
	put(t, s, "a", "1")
	_, _, err := s.Txn(context.Background(), &mvcc.TxnRequest{Success: []mvcc.Op{
		{Put: &mvcc.PutRequest{Key: []byte("b"), Value: []byte("2")}},
		{Put: &mvcc.PutRequest{Key: []byte("c"), Value: []byte("3"), Lease: 7}},
	}}, false)
	if err != mvcc.ErrLeaseNotFound {
		t.Fatalf("want ErrLeaseNotFound, got %v", err)
	}
	if _, err := s.Compact(context.Background(), 100); err != mvcc.ErrFutureRev {
		t.Fatalf("compact future: %v", err)
	}
	res, _, _ := s.Range(context.Background(), &mvcc.RangeRequest{Key: []byte("b")}, true)
	if res.Count != 0 || s.Rev() != 2 {
		t.Fatalf("failed txn left a trace: count %d rev %d", res.Count, s.Rev())
	}
}

func TestLostProposalTimesOut(t *testing.T) {
	node := newFakeNode()
	node.dropAll = true
	s := newTestServer(t, node, func(c *Config) { c.RequestTimeout = 50 * time.Millisecond })
	_, _, err := s.Txn(context.Background(), &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("a")}}}}, false)
	if err != ErrTimeout {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
}

func TestRequestTooLarge(t *testing.T) {
	s := newTestServer(t, newFakeNode(), func(c *Config) { c.MaxRequestBytes = 100 })
	_, _, err := s.Txn(context.Background(), &mvcc.TxnRequest{Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("a"), Value: make([]byte, 200)}}}}, false)
	if err != ErrRequestTooLarge {
		t.Fatalf("want ErrRequestTooLarge, got %v", err)
	}
}

func TestCompactorRevisionMode(t *testing.T) {
	s := newTestServer(t, newFakeNode(), nil)
	for i := 0; i < 30; i++ {
		put(t, s, "k", fmt.Sprint(i))
	}
	c := &compactor{s: s, ac: AutoCompaction{Mode: "revision", Revisions: 10}}
	c.step(context.Background(), time.Now())
	c.step(context.Background(), time.Now()) // nothing new to compact
	if got := s.store.CompactRev(); got != s.Rev()-10 {
		t.Fatalf("compacted at %d, want %d", got, s.Rev()-10)
	}
}

func TestCompactorPeriodicModeAndFollower(t *testing.T) {
	node := newFakeNode()
	s := newTestServer(t, node, nil)
	c := &compactor{s: s, ac: AutoCompaction{Mode: "periodic", Period: time.Hour}}
	ctx := context.Background()
	now := time.Unix(1000, 0)
	put(t, s, "k", "1")
	c.step(ctx, now) // sample rev 2 at t=0
	r := s.Rev()
	now = now.Add(30 * time.Minute)
	put(t, s, "k", "2")
	c.step(ctx, now)
	if s.store.CompactRev() != 0 {
		t.Fatal("compacted before the retention period passed")
	}
	now = now.Add(31 * time.Minute)
	put(t, s, "k", "3")
	node.leader.Store(false)
	c.step(ctx, now)
	if s.store.CompactRev() != 0 {
		t.Fatal("a follower compacted on its own")
	}
	node.leader.Store(true)
	now = now.Add(time.Minute)
	c.step(ctx, now)
	if got := s.store.CompactRev(); got != r {
		t.Fatalf("periodic compaction at %d, want %d (the newest revision an hour old)", got, r)
	}
}

// Read-only txns run concurrently under the read lock, with writes going
// on; -race checks that they change nothing.
func TestReadOnlyTxnsShareTheReadLock(t *testing.T) {
	s := newTestServer(t, newFakeNode(), nil)
	put(t, s, "a", "1")
	ro := &mvcc.TxnRequest{
		Compare: []mvcc.Compare{{Key: []byte("a"), Target: mvcc.CompareValue, Result: mvcc.CompareEqual, Value: []byte("1")}},
		Success: []mvcc.Op{{Range: &mvcc.RangeRequest{Key: []byte("a")}}},
		Failure: []mvcc.Op{{Range: &mvcc.RangeRequest{Key: []byte("b")}}},
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if i == 0 {
					put(t, s, "b", "x")
					continue
				}
				res, _, err := s.Txn(context.Background(), ro, true)
				if err != nil || !res.Succeeded || len(res.Results[0].Range.KVs) != 1 {
					t.Errorf("read-only txn: %+v %v", res, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}
