package watch

import (
	"fmt"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// BenchmarkNotify measures Notify of one put (one event) with 50,000 synced watchers spread over 100 streams,
// all on one key or on 1,000 distinct keys (50 watchers a key). Streams are drained with the timer stopped, so
// every delivery succeeds. ns/op is ns per event; ns/delivery divides it by the watchers each event reaches.
func BenchmarkNotify(b *testing.B) {
	for _, keys := range []int{1, 1000} {
		b.Run(fmt.Sprintf("watchers=50000/keys=%d", keys), func(b *testing.B) { benchNotify(b, 50000, keys, false) })
	}
	b.Run("watchers=50000/prefixes=1000", func(b *testing.B) { benchNotify(b, 50000, 1000, true) })
}

// benchNotify: with ranges, each watcher watches the prefix of its key (an interval in the treap) instead.
func benchNotify(b *testing.B, watchers, keys int, ranges bool) {
	const streams, queue = 100, 4096
	src := &memSource{s: mvcc.New()}
	never := make(chan time.Time)
	r := New(src, Config{MaxPending: queue, Ticks: never, ProgressTicks: never})
	defer r.Stop()
	per := watchers / streams
	ss := make([]*Stream, streams)
	keyName := func(i int) []byte { return fmt.Appendf(nil, "/registry/pods/%06d", i%keys) }
	for i := range ss {
		ss[i] = r.NewStream()
		for j := range per {
			req := CreateRequest{Key: keyName(i*per + j)}
			if ranges {
				req.End = append(append([]byte(nil), req.Key...), 0xff)
			}
			if err := ss[i].Create(req); err != nil {
				b.Fatal(err)
			}
		}
		drainResponses(ss[i])
	}
	batch := max(1, queue/per) // notifications between drains: a stream gets at most per responses each
	rev := r.Rev()
	mk := func(n int) [][]mvcc.Event {
		out := make([][]mvcc.Event, n)
		for i := range out {
			rev++
			kv := &mvcc.KeyValue{Key: keyName(int(rev)), CreateRevision: 2, ModRevision: rev, Version: rev, Value: []byte("value")}
			out[i] = []mvcc.Event{{Type: mvcc.EventPut, KV: kv, PrevKV: kv}}
		}
		return out
	}
	evs := mk(batch)
	for _, ev := range evs { // warm up: the first delivery to a watcher allocates its scratch
		r.Notify(ev[0].KV.ModRevision, ev)
	}
	for _, s := range ss {
		drainResponses(s)
	}
	evs = mk(batch)
	bufs := make([][]Response, streams)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		j := i % batch
		r.Notify(evs[j][0].KV.ModRevision, evs[j])
		if j == batch-1 {
			b.StopTimer()
			for k, s := range ss {
				// as the send loop does: hand the last batch back, so the queue reuses its storage
				for bufs[k], _ = s.Take(bufs[k]); len(bufs[k]) > 0; bufs[k], _ = s.Take(bufs[k]) {
				}
			}
			evs = mk(batch)
			b.StartTimer()
		}
	}
	b.StopTimer()
	r.mu.Lock()
	if r.unsynced.len() != 0 {
		b.Fatalf("%d watchers fell behind", r.unsynced.len())
	}
	r.mu.Unlock()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(watchers/keys), "ns/delivery")
}
