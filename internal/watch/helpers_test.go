package watch

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// memSource is the server's side of Source in miniature: an mvcc store behind a RWMutex.
type memSource struct {
	mu sync.RWMutex
	s  *mvcc.Store
}

func (m *memSource) Events(key, end []byte, from, to int64, prevKV bool, limit int) ([]mvcc.Event, bool, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.s.Events(key, end, from, to, prevKV, limit)
}

func (m *memSource) Rev() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.s.Rev()
}

// harness applies txns to a store and notifies a registry, like the server's applier. Time is injected: the
// sync goroutine only runs on ticks, which most tests never send; they call sync() instead.
type harness struct {
	t      testing.TB
	src    *memSource
	r      *Registry
	ticks  chan time.Time
	pticks chan time.Time
}

func newHarness(t testing.TB, cfg Config) *harness {
	h := &harness{t: t, src: &memSource{s: mvcc.New()}, ticks: make(chan time.Time), pticks: make(chan time.Time)}
	cfg.Ticks, cfg.ProgressTicks = h.ticks, h.pticks
	h.r = New(h.src, cfg)
	t.Cleanup(h.r.Stop)
	return h
}

func (h *harness) txn(ops ...mvcc.Op) []mvcc.Event {
	h.t.Helper()
	h.src.mu.Lock()
	_, evs, err := h.src.s.Txn(&mvcc.TxnRequest{Success: ops}, nil)
	rev := h.src.s.Rev()
	h.src.mu.Unlock()
	if err != nil {
		h.t.Fatal(err)
	}
	h.r.Notify(rev, evs)
	return evs
}

func putOp(k, v string) mvcc.Op {
	return mvcc.Op{Put: &mvcc.PutRequest{Key: []byte(k), Value: []byte(v)}}
}

func delOp(k, end string) mvcc.Op {
	var e []byte
	if end != "" {
		e = []byte(end)
	}
	return mvcc.Op{Delete: &mvcc.DeleteRequest{Key: []byte(k), End: e}}
}

func (h *harness) put(k, v string) []mvcc.Event { h.t.Helper(); return h.txn(putOp(k, v)) }

func (h *harness) del(k, end string) []mvcc.Event { h.t.Helper(); return h.txn(delOp(k, end)) }

func (h *harness) compact(rev int64) {
	h.t.Helper()
	h.src.mu.Lock()
	defer h.src.mu.Unlock()
	if err := h.src.s.Compact(rev); err != nil {
		h.t.Fatal(err)
	}
}

// sync runs catch-up passes synchronously, as one tick of the sync goroutine would.
func (h *harness) sync() { h.r.syncAll() }

// progress runs one progress tick synchronously.
func (h *harness) progress() { h.r.progressTick() }

func (h *harness) create(s *Stream, req CreateRequest) {
	h.t.Helper()
	if err := s.Create(req); err != nil {
		h.t.Fatal(err)
	}
}

// drain returns what is queued on the stream now, rendered one response a line.
func drain(s *Stream) string {
	var lines []string
	for _, resp := range drainResponses(s) {
		lines = append(lines, render(resp))
	}
	return strings.Join(lines, "\n")
}

func drainResponses(s *Stream) []Response {
	var out []Response
	for {
		batch, ok := s.Take(nil)
		if !ok {
			return append(out, Response{WatchID: -99, CancelReason: "closed"})
		}
		if len(batch) == 0 {
			return out
		}
		out = append(out, batch...)
	}
}

func render(r Response) string {
	if r.WatchID == -99 && r.CancelReason == "closed" {
		return "<closed>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "id=%d rev=%d", r.WatchID, r.Revision)
	if r.Created {
		b.WriteString(" created")
	}
	if r.Canceled {
		b.WriteString(" canceled")
	}
	if r.CancelReason != "" {
		fmt.Fprintf(&b, " reason=%q", r.CancelReason)
	}
	if r.CompactRevision != 0 {
		fmt.Fprintf(&b, " compact=%d", r.CompactRevision)
	}
	if r.ProgressNotify {
		b.WriteString(" progress")
	}
	if r.Fragment {
		b.WriteString(" fragment")
	}
	for _, ev := range r.Events {
		b.WriteString(" ")
		b.WriteString(renderEvent(ev))
	}
	return b.String()
}

func renderEvent(ev mvcc.Event) string {
	var s string
	if ev.Type == mvcc.EventPut {
		s = fmt.Sprintf("put:%s=%s@%d", ev.KV.Key, ev.KV.Value, ev.KV.ModRevision)
	} else {
		s = fmt.Sprintf("del:%s@%d", ev.KV.Key, ev.KV.ModRevision)
	}
	if ev.PrevKV != nil {
		s += fmt.Sprintf("(prev %s@%d)", ev.PrevKV.Value, ev.PrevKV.ModRevision)
	}
	return s
}

func expect(t *testing.T, s *Stream, want string) {
	t.Helper()
	want = strings.TrimSpace(want)
	if got := drain(s); got != want {
		t.Fatalf("responses:\n%s\nwant:\n%s", got, want)
	}
}

func txnPut(k, v string) *mvcc.TxnRequest { return &mvcc.TxnRequest{Success: []mvcc.Op{putOp(k, v)}} }
