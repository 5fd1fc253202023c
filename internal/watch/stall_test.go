package watch

import (
	"fmt"
	"testing"
)

// TestStalledStream notifies 10,000 revisions while one stream is never drained. Notify must return every time
// (the test runs it on its own goroutine: a blocked Notify would hang it), the other stream must get each
// revision from Notify itself, right away, and the stalled stream, once drained, must get every event exactly
// once and in order, or, if the history it missed was compacted meanwhile, a compaction cancel after a gap-free
// prefix.
func TestStalledStream(t *testing.T) {
	for _, compactAt := range []int64{-1, 5000} { // -1: no compaction
		t.Run(fmt.Sprintf("compact=%d", compactAt), func(t *testing.T) {
			const revs = 10000
			h := newHarness(t, Config{MaxPending: 64})
			stalled, fast := h.r.NewStream(), h.r.NewStream()
			h.create(stalled, CreateRequest{WatchID: 1, Key: []byte("k"), End: []byte("l")})
			h.create(stalled, CreateRequest{WatchID: 2, Key: []byte("k00007"), PrevKV: true})
			h.create(fast, CreateRequest{WatchID: 1, Key: []byte("k"), End: []byte("l")})
			expect(t, fast, "id=1 rev=1 created")

			for i := range revs {
				k := fmt.Sprintf("k%05d", i%100)
				evs := h.put(k, fmt.Sprint(i))
				rev := evs[0].KV.ModRevision
				// The fast stream got this revision from Notify, before any catch-up pass.
				got := drainResponses(fast)
				if len(got) != 1 || len(got[0].Events) != 1 || got[0].Events[0].KV.ModRevision != rev || string(got[0].Events[0].KV.Key) != k {
					t.Fatalf("rev %d: fast stream got %v", rev, got)
				}
				if int64(i) == compactAt {
					h.compact(rev)
				}
			}
			h.r.mu.Lock()
			if h.r.unsynced.len() != 2 || stalled.q.room() != 0 {
				t.Errorf("stalled stream: %d unsynced watchers, queue room %d (want full)", h.r.unsynced.len(), stalled.q.room())
			}
			h.r.mu.Unlock()

			// Drain the stalled stream, running catch-up passes as ticks would.
			var all []Response
			for pass := 0; ; pass++ {
				got := drainResponses(stalled)
				all = append(all, got...)
				h.sync()
				h.r.mu.Lock()
				done := h.r.unsynced.len() == 0 && stalled.q.room() == h.r.cfg.MaxPending && len(stalled.backlog) == 0
				h.r.mu.Unlock()
				if done && len(got) == 0 {
					break
				}
				if pass > 2*revs {
					t.Fatal("stalled stream never caught up")
				}
			}
			compactRev := int64(0)
			if compactAt >= 0 {
				compactRev = compactAt + 2 // the revision of put number compactAt
			}
			checkStalled(t, all, revs, compactRev)
		})
	}
}

func checkStalled(t *testing.T, all []Response, revs int, compactRev int64) {
	t.Helper()
	next := map[int64]int64{1: 2, 2: 9} // next expected revision per watcher: key k00007 is written at rev 9, 109, ...
	step := map[int64]int64{1: 1, 2: 100}
	canceled := map[int64]int64{}
	created := 0
	for _, resp := range all {
		switch {
		case resp.Created:
			created++
			continue
		case resp.Canceled:
			if compactRev == 0 || resp.CompactRevision != compactRev {
				t.Fatalf("unexpected cancel %+v", resp)
			}
			if next[resp.WatchID] >= compactRev {
				t.Fatalf("watcher %d canceled at %d though it had reached %d", resp.WatchID, compactRev, next[resp.WatchID])
			}
			canceled[resp.WatchID] = resp.CompactRevision
			continue
		}
		if canceled[resp.WatchID] != 0 {
			t.Fatalf("response after cancel: %+v", resp)
		}
		for _, ev := range resp.Events {
			id := resp.WatchID
			if ev.KV.ModRevision != next[id] {
				t.Fatalf("watcher %d: got rev %d, want %d", id, ev.KV.ModRevision, next[id])
			}
			if id == 2 && next[id] > 9 && (ev.PrevKV == nil || ev.PrevKV.ModRevision != next[id]-100) {
				t.Fatalf("watcher 2: rev %d prev kv %+v", next[id], ev.PrevKV)
			}
			next[id] += step[id]
		}
	}
	if created != 2 {
		t.Fatalf("%d created responses", created)
	}
	if compactRev == 0 {
		if next[1] != int64(revs)+2 || next[2] != int64(revs)+9 {
			t.Fatalf("incomplete: next %v", next)
		}
	} else if len(canceled) != 2 {
		t.Fatalf("canceled %v, next %v", canceled, next)
	}
	t.Logf("%d responses; next %v; canceled %v", len(all), next, canceled)
}
