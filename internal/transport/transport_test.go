package transport

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

var seedFlag = flag.Uint64("transport.seed", 0, "seed for randomized tests (0: from TRANSPORT_SEED or the clock)")

func testSeed(t *testing.T) uint64 {
	seed := *seedFlag
	if seed == 0 {
		if s := os.Getenv("TRANSPORT_SEED"); s != "" {
			v, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				t.Fatalf("TRANSPORT_SEED: %v", err)
			}
			seed = v
		}
	}
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -transport.seed=%d or TRANSPORT_SEED=%d)", seed, seed, seed)
	return seed
}

func TestConfigValidate(t *testing.T) {
	r := newFakeRaft()
	for name, cfg := range map[string]Config{
		"ID":          {Raft: r},
		"Raft":        {ID: 1},
		"QueueSize":   {ID: 1, Raft: r, QueueSize: -1},
		"DialTimeout": {ID: 1, Raft: r, DialTimeout: -time.Second},
	} {
		_, err := New(cfg)
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: New = %v, want ErrInvalidConfig naming %s", name, err, name)
		}
	}
}

// Three members exchange randomly sized bursts; every message arrives, in the
// order each sender sent it.
func TestExchangeInOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	ids := []uint64{1, 2, 3}
	nodes := startCluster(t, ids...)
	const perPair = 1500
	next := make(map[[2]uint64]uint64)
	for sent := 0; sent < perPair*6; {
		a := nodes[rng.IntN(3)]
		b := nodes[rng.IntN(3)]
		if a == b {
			continue
		}
		key := [2]uint64{a.id, b.id}
		burst := 1 + rng.IntN(100)
		var batch []*raftpb.Message
		for i := 0; i < burst && next[key] < perPair; i++ {
			next[key]++
			batch = append(batch, msg(raftpb.MsgApp, a.id, b.id, next[key]))
		}
		sent += len(batch)
		a.tr.Send(batch)
		if rng.IntN(4) == 0 {
			runtime.Gosched()
		}
		if sent < perPair*6 && allDone(next, perPair, ids) {
			break
		}
	}
	for _, b := range nodes {
		waitFor(t, "all messages", func() bool { return b.raft.count() == 2*perPair })
		for _, from := range ids {
			if from == b.id {
				continue
			}
			got := b.raft.fromPeer(from)
			for i, m := range got {
				if m.GetIndex() != uint64(i+1) || m.GetTo() != b.id || m.GetType() != raftpb.MsgApp {
					t.Fatalf("member %d: message %d from %d = %v", b.id, i, from, m)
				}
			}
		}
	}
	for _, n := range nodes {
		if got := n.tr.ActivePeers(); got != 2 {
			t.Errorf("member %d: ActivePeers = %d, want 2", n.id, got)
		}
		if v := counterValue(t, n.reg, "cairn_transport_messages_sent_total", nil); v != 2*perPair {
			t.Errorf("member %d: sent counter = %v, want %d", n.id, v, 2*perPair)
		}
	}
}

func allDone(next map[[2]uint64]uint64, per uint64, ids []uint64) bool {
	for _, a := range ids {
		for _, b := range ids {
			if a != b && next[[2]uint64{a, b}] < per {
				return false
			}
		}
	}
	return true
}

// A Process error is logged and the stream goes on.
func TestProcessErrorKeepsStream(t *testing.T) {
	b := startNode(t, 2, "", withHook(func(m *raftpb.Message) error {
		if m.GetIndex()%2 == 1 {
			return errOdd
		}
		return nil
	}))
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{b.url})
	for i := uint64(1); i <= 100; i++ {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, i)})
	}
	waitFor(t, "100 messages", func() bool { return b.raft.count() == 100 })
	if a.raft.unreachableCount(2) != 0 {
		t.Fatal("ReportUnreachable called although the peer is up")
	}
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A peer that is down: Send never blocks even with the queue full, messages
// are dropped and counted, raft hears ReportUnreachable.
func TestDownPeer(t *testing.T) {
	a := startNode(t, 1, "", withQueueSize(8))
	a.tr.AddPeer(2, []string{"http://" + freeAddr(t)})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := uint64(1); i <= 20000; i++ {
			a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, i)})
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on a down peer")
	}
	waitFor(t, "ReportUnreachable(2)", func() bool { return a.raft.unreachableCount(2) > 0 })
	full := counterValue(t, a.reg, "cairn_transport_messages_dropped_total", map[string]string{"to": "2", "reason": dropQueueFull})
	if full == 0 {
		t.Error("no message counted as dropped on a full queue")
	}
	waitFor(t, "send_failed drops", func() bool {
		return counterValue(t, a.reg, "cairn_transport_messages_dropped_total", map[string]string{"to": "2", "reason": dropSendFailed}) > 0
	})
	if got := a.tr.ActivePeers(); got != 0 {
		t.Errorf("ActivePeers = %d, want 0", got)
	}
	// Unknown peers are dropped too, without blocking.
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 9, 1)})
	if v := counterValue(t, a.reg, "cairn_transport_messages_dropped_total", map[string]string{"to": "9", "reason": dropUnknownPeer}); v != 1 {
		t.Errorf("unknown-peer drops = %v, want 1", v)
	}
}

// The peer goes down and comes back on the same address: the sender reports
// it unreachable, reconnects, and delivers in order again.
func TestReconnect(t *testing.T) {
	a := startNode(t, 1, "")
	b := startNode(t, 2, "")
	addr := b.srv.Listener.Addr().String()
	a.tr.AddPeer(2, []string{b.url})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	waitFor(t, "first message", func() bool { return b.raft.count() == 1 })
	waitFor(t, "peer active", func() bool { return a.tr.ActivePeers() == 1 })

	b.stop()
	idx := uint64(1)
	waitFor(t, "ReportUnreachable after the peer went down", func() bool {
		idx++
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, idx)})
		time.Sleep(time.Millisecond)
		return a.raft.unreachableCount(2) > 0
	})
	waitFor(t, "peer inactive", func() bool { return a.tr.ActivePeers() == 0 })

	b2 := startNode(t, 2, addr)
	waitFor(t, "delivery after restart", func() bool {
		idx++
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, idx)})
		time.Sleep(time.Millisecond)
		return b2.raft.count() > 0
	})
	base := idx
	for i := uint64(1); i <= 200; i++ {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, base+i)})
	}
	waitFor(t, "the 200 messages after reconnect", func() bool {
		got := b2.raft.received()
		return len(got) > 0 && got[len(got)-1].GetIndex() == base+200
	})
	got := b2.raft.received()
	// Messages sent while reconnecting may be lost; the ones after must be complete and ordered.
	var tail []uint64
	for _, m := range got {
		if m.GetIndex() > base {
			tail = append(tail, m.GetIndex())
		}
	}
	for i, v := range tail {
		if v != base+uint64(i)+1 {
			t.Fatalf("after reconnect got indexes %v", tail)
		}
	}
	if len(tail) != 200 {
		t.Fatalf("after reconnect got %d messages, want 200", len(tail))
	}
	waitFor(t, "peer active again", func() bool { return a.tr.ActivePeers() == 1 })
}

// UpdatePeer moves the stream to a new URL.
func TestUpdatePeer(t *testing.T) {
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{"http://" + freeAddr(t)})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 1)})
	waitFor(t, "unreachable", func() bool { return a.raft.unreachableCount(2) > 0 })
	b := startNode(t, 2, "")
	a.tr.UpdatePeer(2, []string{b.url})
	waitFor(t, "delivery at the new URL", func() bool {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 2)})
		time.Sleep(time.Millisecond)
		return b.raft.count() > 0
	})
	a.tr.RemovePeer(2)
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgApp, 1, 2, 3)})
	if v := counterValue(t, a.reg, "cairn_transport_messages_dropped_total", map[string]string{"to": "2", "reason": dropUnknownPeer}); v != 1 {
		t.Errorf("drops after RemovePeer = %v, want 1", v)
	}
}

// A member of another cluster is refused with 412 and never reaches raft; the
// sender logs it at Error and reports the peer unreachable.
func TestClusterIDMismatch(t *testing.T) {
	a := startNode(t, 1, "")
	c := startNode(t, 3, "", withClusterID(0xbad))
	c.tr.AddPeer(1, []string{a.url})
	waitFor(t, "ReportUnreachable from the wrong cluster", func() bool {
		c.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 3, 1, 1)})
		time.Sleep(time.Millisecond)
		return c.raft.unreachableCount(1) > 0
	})
	if n := a.raft.count(); n != 0 {
		t.Fatalf("member of another cluster stepped %d messages into raft", n)
	}
	waitFor(t, "Error log", func() bool { return c.logs.find("ERROR", "c1", "bad") != "" })
	t.Log(c.logs.find("ERROR", "c1", "bad"))

	// The raw exchange: 412 with both cluster IDs in the body.
	resp := rawPost(t, a.url+PathStream, 3, 1, 0xbad, nil)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPreconditionFailed || !strings.Contains(string(body), "c1") || !strings.Contains(string(body), "bad") {
		t.Fatalf("got %s %q, want 412 naming clusters c1 and bad", resp.Status, body)
	}
	// Addressed to another member: 409.
	resp = rawPost(t, a.url+PathStream, 3, 7, 0xc1, nil)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("request for member 7 got %s, want 409", resp.Status)
	}
	// Missing headers: 400.
	req, _ := http.NewRequest(http.MethodPost, a.url+PathStream, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("request without headers got %s, want 400", resp.Status)
	}
	if a.raft.count() != 0 {
		t.Fatal("rejected requests reached raft")
	}
}

// Frames whose To is another member are dropped; the rest of the stream is processed.
func TestWrongToDropped(t *testing.T) {
	a := startNode(t, 1, "")
	var body []byte
	for i, to := range []uint64{1, 5, 1} {
		var err error
		body, err = appendFrame(body, msg(raftpb.MsgApp, 3, to, uint64(i+1)))
		if err != nil {
			t.Fatal(err)
		}
	}
	resp := rawPost(t, a.url+PathStream, 3, 1, 0xc1, body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("got %s, want 204", resp.Status)
	}
	got := a.raft.received()
	if len(got) != 2 || got[0].GetIndex() != 1 || got[1].GetIndex() != 3 {
		t.Fatalf("processed %v, want indexes 1 and 3", got)
	}
	// A frame over the limit fails the stream with 400.
	resp = rawPost(t, a.url+PathStream, 3, 1, 0xc1, []byte{0xff, 0xff, 0xff, 0xff, 0})
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("oversized frame got %s, want 400", resp.Status)
	}
	// Probe.
	req, _ := http.NewRequest(http.MethodGet, a.url+PathProbe, nil)
	req.Header.Set(HeaderClusterID, "c1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(HeaderFrom) != "1" {
		t.Fatalf("probe: %s from %q", resp.Status, resp.Header.Get(HeaderFrom))
	}
}

func rawPost(t *testing.T, url string, from, to, cid uint64, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(HeaderFrom, idString(from))
	req.Header.Set(HeaderTo, idString(to))
	req.Header.Set(HeaderClusterID, idString(cid))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// A forwarded proposal that raft cannot take yet (a member without a leader
// blocks MsgProp until it learns one) must not hold up the messages behind
// it on the same stream: the next one may be the heartbeat that names the
// leader. Found by the pause-leader robustness scenario, where a resumed
// old leader never heard from the new one.
func TestBlockedProposalDoesNotStallStream(t *testing.T) {
	release := make(chan struct{})
	b := startNode(t, 2, "", withHook(func(m *raftpb.Message) error {
		if m.GetType() == raftpb.MsgProp {
			<-release
		}
		return nil
	}))
	defer close(release) // before b stops: its handler waits for Process
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{b.url})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgProp, 1, 2, 1)})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 2)})
	waitFor(t, "the heartbeat behind a blocked proposal", func() bool {
		for _, m := range b.raft.received() {
			if m.GetType() == raftpb.MsgHeartbeat {
				return true
			}
		}
		return false
	})
}

// Forwarded proposals received before a stream ends (here: the sender
// reconnects after a URL change) still reach raft; canceling them left their
// clients waiting for a request timeout.
func TestProposalsQueuedWhenStreamEndsReachRaft(t *testing.T) {
	b := startNode(t, 2, "", withHook(func(m *raftpb.Message) error {
		if m.GetType() == raftpb.MsgProp {
			time.Sleep(20 * time.Millisecond) // raft busy: proposals queue up in the pump
		}
		return nil
	}))
	a := startNode(t, 1, "")
	a.tr.AddPeer(2, []string{b.url})
	const n = 20
	for i := uint64(1); i <= n; i++ {
		a.tr.Send([]*raftpb.Message{msg(raftpb.MsgProp, 1, 2, i)})
	}
	waitFor(t, "the first proposal", func() bool { return b.raft.count() > 0 })
	// Same server, another URL: the sender closes its stream and opens a new one.
	a.tr.UpdatePeer(2, []string{strings.Replace(b.url, "127.0.0.1", "localhost", 1)})
	a.tr.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, n+1)})
	waitFor(t, "every proposal", func() bool {
		props := 0
		for _, m := range b.raft.received() {
			if m.GetType() == raftpb.MsgProp {
				props++
			}
		}
		return props == n
	})
}

// AddPeer of a known peer with the same URLs (members re-add their peers
// whenever the member list is applied) keeps the peer's stream; new URLs
// start a new connection (a new URL generation).
func TestAddPeerSameURLsKeepsStream(t *testing.T) {
	a := startNode(t, 1, "")
	b := startNode(t, 2, "")
	a.tr.AddPeer(2, []string{b.url})
	gen := func() uint64 {
		a.tr.mu.RLock()
		p := a.tr.peers[2]
		a.tr.mu.RUnlock()
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.gen
	}
	g := gen()
	a.tr.AddPeer(2, []string{b.url + "/"}) // the same URL: a trailing slash is trimmed
	if gen() != g {
		t.Fatal("AddPeer with the same URLs restarted the peer's stream")
	}
	a.tr.UpdatePeer(2, []string{"http://" + freeAddr(t)})
	if gen() != g+1 {
		t.Fatal("new URLs did not start a new connection")
	}
}
