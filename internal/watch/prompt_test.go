package watch

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// newPromptHarness is newHarness with the real sync goroutine and a SyncInterval that never comes within a test:
// whatever is caught up was caught up by a prompt pass, not by the timer.
func newPromptHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, src: &memSource{s: mvcc.New()}, pticks: make(chan time.Time)}
	cfg.SyncInterval, cfg.ProgressTicks = time.Hour, h.pticks
	h.r = New(h.src, cfg)
	t.Cleanup(h.r.Stop)
	return h
}

// waitResponses takes from s until it has n responses, waiting on Ready in between. The timeout only decides a
// failure: without a prompt pass nothing would arrive for an hour.
func waitResponses(t *testing.T, s *Stream, n int) []Response {
	t.Helper()
	var out []Response
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		batch, ok := s.Take(nil)
		if !ok {
			t.Fatalf("stream closed after %d of %d responses", len(out), n)
		}
		out = append(out, batch...)
		if len(batch) > 0 {
			continue
		}
		select {
		case <-s.Ready():
		case <-deadline:
			t.Fatalf("got %d of %d responses: %v", len(out), n, out)
		}
	}
	return out
}

// TestPromptCatchUp: watchers moved aside because their stream's queue was full are caught up as soon as the send
// loop takes the queue, not on the next SyncInterval tick; so is a watcher created at a past revision, and a
// created response that waited in the backlog.
func TestPromptCatchUp(t *testing.T) {
	fell := 0
	h := newPromptHarness(t, Config{MaxPending: 4, CountFellBehind: func() { fell++ }})
	s := h.r.NewStream()
	for id := int64(1); id <= 8; id++ {
		h.create(s, CreateRequest{WatchID: id, Key: []byte("k")})
	}
	// Four created responses fit the queue, four went to the backlog; taking the queue asks for a pass, which
	// moves the backlog over.
	created := waitResponses(t, s, 8)
	for i, r := range created {
		if !r.Created || r.WatchID != int64(i+1) {
			t.Fatalf("response %d: %s, want id=%d created", i, render(r), i+1)
		}
	}

	h.put("k", "v1")
	h.put("k", "v2")
	h.r.mu.Lock()
	unsynced := h.r.unsynced.len()
	h.r.mu.Unlock()
	if unsynced != 8 || fell != 8 {
		t.Fatalf("%d watchers unsynced, %d counted as fallen behind; want 8 and 8 (4 at v1, 4 more at v2)", unsynced, fell)
	}
	got := map[int64][]string{}
	for _, r := range waitResponses(t, s, 8+4) { // 4 from Notify at v1, then each of the 8 caught up once
		for _, ev := range r.Events {
			got[r.WatchID] = append(got[r.WatchID], renderEvent(ev))
		}
	}
	for id := int64(1); id <= 8; id++ {
		if want := "[put:k=v1@2 put:k=v2@3]"; fmt.Sprint(got[id]) != want {
			t.Errorf("watcher %d got %v, want %s", id, got[id], want)
		}
	}

	// A watcher created at a past revision is caught up without a tick.
	s2 := h.r.NewStream()
	h.create(s2, CreateRequest{WatchID: 1, Key: []byte("k"), StartRev: 2})
	resp := waitResponses(t, s2, 2)
	if got, want := render(resp[0])+"\n"+render(resp[1]), "id=1 rev=3 created\nid=1 rev=3 put:k=v1@2 put:k=v2@3"; got != want {
		t.Fatalf("past-revision watcher got\n%s\nwant\n%s", got, want)
	}
}

// TestTicksDisablePromptPasses: with Config.Ticks set, catch-up runs on ticks only, so tests that inject time see
// watchers stay behind until they tick.
func TestTicksDisablePromptPasses(t *testing.T) {
	h := newHarness(t, Config{MaxPending: 1})
	s := h.r.NewStream()
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("k")})
	h.put("k", "v1")
	expect(t, s, "id=1 rev=1 created") // the put found the queue full
	h.r.mu.Lock()
	unsynced := h.r.unsynced.len()
	h.r.mu.Unlock()
	if unsynced != 1 || h.r.kick != nil {
		t.Fatalf("unsynced %d, kick channel %v; want 1 and none", unsynced, h.r.kick)
	}
	h.ticks <- time.Now()
	resp := waitResponses(t, s, 1)
	if got, want := render(resp[0]), "id=1 rev=2 put:k=v1@2"; got != want {
		t.Fatalf("after a tick got %s, want %s", got, want)
	}
}

// TestCatchUpSharesEvents: watchers of one interval caught up together from the same revision share one events
// slice per form; a filtered watcher gets its own.
func TestCatchUpSharesEvents(t *testing.T) {
	h := newHarness(t, Config{})
	h.put("k", "v1")
	h.del("k", "")
	s := h.r.NewStream()
	for id := int64(1); id <= 3; id++ {
		h.create(s, CreateRequest{WatchID: id, Key: []byte("k"), StartRev: 2})
	}
	h.create(s, CreateRequest{WatchID: 4, Key: []byte("k"), StartRev: 2, PrevKV: true})
	h.create(s, CreateRequest{WatchID: 5, Key: []byte("k"), StartRev: 2, NoDelete: true})
	h.sync()
	evs := map[int64][]mvcc.Event{}
	for _, r := range drainResponses(s) {
		if len(r.Events) > 0 {
			evs[r.WatchID] = r.Events
		}
	}
	if len(evs[1]) != 2 || len(evs[4]) != 2 || len(evs[5]) != 1 {
		t.Fatalf("events per watcher: %v", evs)
	}
	if &evs[1][0] != &evs[2][0] || &evs[1][0] != &evs[3][0] {
		t.Error("unfiltered watchers without PrevKV do not share their events")
	}
	if &evs[4][0] == &evs[1][0] || evs[4][1].PrevKV == nil || evs[1][1].PrevKV != nil {
		t.Error("the PrevKV form is not separate")
	}
}
