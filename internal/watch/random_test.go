package watch

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

func envInt(t *testing.T, name string, def int64) (int64, bool) {
	if s := os.Getenv(name); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return v, true
	}
	return def, false
}

var randKeys = []string{"a", "aa", "ab", "b", "ba", "c", "d", "e"}

// rwatch is the test's record of one watcher: what it asked for and what it got.
type rwatch struct {
	stream    int
	id        int64
	req       CreateRequest
	created   bool
	createdAt int64 // header revision of the Created response
	canceled  bool  // by the test (Cancel)
	compacted int64
	ended     bool // a Canceled response arrived
	got       []mvcc.Event
	cursor    int // into randRun.all: events before it were delivered or skipped
	fragOpen  bool
}

// rstream is the test's side of one stream.
type rstream struct {
	s        *Stream
	drainP   int // percent chance to drain on a drain step
	byID     map[int64]*rwatch
	pending  []*rwatch // created by the test, Created response not yet seen (in order)
	rejected int       // created-and-canceled answers expected
}

type randRun struct {
	t        *testing.T
	rnd      *rand.Rand
	h        *harness
	streams  []*rstream
	watchers []*rwatch
	all      []mvcc.Event
	compacts []int64
}

// TestRandomWatchers runs many watchers on random ranges, with random start revisions, filters, PrevKV,
// Fragment, slow or stalled consumers, cancels, compactions and progress requests, all on one goroutine (the
// sync goroutine only runs when the test calls it), and checks each watcher's responses against a brute-force
// filter of every event, as they arrive and at the end.
func TestRandomWatchers(t *testing.T) {
	seed, fixed := envInt(t, "WATCH_SEED", time.Now().UnixNano())
	steps, _ := envInt(t, "WATCH_STEPS", 3000)
	for i := range int64(4) {
		seed := seed + i
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (rerun with WATCH_SEED=%d)", seed, seed)
			runRandom(t, seed, int(steps))
		})
		if fixed {
			break
		}
	}
}

func runRandom(t *testing.T, seed int64, steps int) {
	rnd := rand.New(rand.NewSource(seed))
	cfg := Config{MaxPending: 1 + rnd.Intn([]int{4, 16, 64}[rnd.Intn(3)]), ResponseBytes: 100 + rnd.Intn(400), MaxEventsPerResponse: rnd.Intn(4)}
	x := &randRun{t: t, rnd: rnd, h: newHarness(t, cfg)}
	for range 1 + rnd.Intn(5) {
		x.streams = append(x.streams, &rstream{s: x.h.r.NewStream(), drainP: []int{5, 20, 50, 100}[rnd.Intn(4)], byID: map[int64]*rwatch{}})
	}
	for step := range steps {
		switch n := rnd.Intn(100); {
		case n < 40:
			x.write()
		case n < 52:
			x.create()
		case n < 54:
			x.cancel()
		case n < 56:
			if rnd.Intn(10) == 0 {
				x.compact()
			}
		case n < 80:
			for _, st := range x.streams {
				if rnd.Intn(100) < st.drainP {
					x.drain(st)
				}
			}
		case n < 92:
			x.h.sync()
		case n < 95:
			x.h.progress()
		default:
			x.streams[rnd.Intn(len(x.streams))].s.RequestProgress()
		}
		_ = step
	}
	// Drain everything until every watcher is caught up.
	for pass := 0; ; pass++ {
		for _, st := range x.streams {
			x.drain(st)
		}
		x.h.sync()
		x.h.r.mu.Lock()
		idle := x.h.r.unsynced.len() == 0 && len(x.h.r.backlogged) == 0
		for _, st := range x.streams {
			idle = idle && st.s.q.room() == x.h.r.cfg.MaxPending
		}
		x.h.r.mu.Unlock()
		if idle {
			break
		}
		if pass > 100000 {
			t.Fatal("never caught up")
		}
	}
	for _, st := range x.streams {
		x.drain(st)
	}
	canceled, compacted, events := 0, 0, 0
	for _, w := range x.watchers {
		if !w.created {
			t.Fatalf("watcher %d/%d: no Created response", w.stream, w.id)
		}
		want := x.expected(w, 1<<62)
		switch {
		case w.compacted != 0 || w.canceled:
			if w.canceled {
				canceled++
			} else {
				compacted++
			}
			if len(w.got) > len(want) || x.renderEvs(w.got) != x.renderEvs(want[:len(w.got)]) {
				t.Fatalf("watcher %d/%d %+v (canceled): got\n%s\nnot a prefix of\n%s", w.stream, w.id, w.req, x.renderEvs(w.got), x.renderEvs(want))
			}
		default:
			if g, wn := x.renderEvs(w.got), x.renderEvs(want); g != wn {
				t.Fatalf("watcher %d/%d %+v: got\n%s\nwant\n%s", w.stream, w.id, w.req, g, wn)
			}
		}
		events += len(w.got)
	}
	t.Logf("%d watchers (%d canceled, %d compacted), %d events delivered, %d revisions, %d compactions, config %+v",
		len(x.watchers), canceled, compacted, events, x.h.src.Rev(), len(x.compacts), cfg)
}

func (x *randRun) key() string { return randKeys[x.rnd.Intn(len(randKeys))] }

func (x *randRun) write() {
	switch x.rnd.Intn(4) {
	case 0:
		x.all = append(x.all, x.h.del(x.key(), x.endFor(""))...)
	case 1:
		n := 2 + x.rnd.Intn(3)
		perm := x.rnd.Perm(len(randKeys))[:n]
		var ops []mvcc.Op
		for _, i := range perm {
			ops = append(ops, putOp(randKeys[i], fmt.Sprint(x.rnd.Intn(1000))))
		}
		x.all = append(x.all, x.h.txn(ops...)...)
	default:
		x.all = append(x.all, x.h.put(x.key(), fmt.Sprint(x.rnd.Intn(1000)))...)
	}
}

// endFor returns a random range end for key ("" means a random key is used by the caller).
func (x *randRun) endFor(key string) string {
	switch x.rnd.Intn(4) {
	case 0:
		return ""
	case 1:
		return "\x00"
	default:
		return x.key()
	}
}

func (x *randRun) create() {
	st := x.rnd.Intn(len(x.streams))
	rs := x.streams[st]
	req := CreateRequest{Key: []byte(x.key())}
	if e := x.endFor(""); e != "" {
		req.End = []byte(e)
	}
	rev := x.h.src.Rev()
	switch x.rnd.Intn(4) {
	case 0:
	case 1:
		req.StartRev = rev + 1 + x.rnd.Int63n(5)
	case 2:
		req.StartRev = 1 + x.rnd.Int63n(rev) // anywhere in history: often compacted
	default:
		req.StartRev = max(1, rev-x.rnd.Int63n(30)) // a few revisions behind
	}
	req.PrevKV = x.rnd.Intn(2) == 0
	req.NoPut = x.rnd.Intn(6) == 0
	req.NoDelete = x.rnd.Intn(6) == 0
	req.Fragment = x.rnd.Intn(3) == 0
	req.ProgressNotify = x.rnd.Intn(3) == 0
	x.makeRoom(rs)
	bad := len(req.End) > 0 && !(len(req.End) == 1 && req.End[0] == 0) && bytes.Compare(req.Key, req.End) >= 0
	err := rs.s.Create(req)
	if (err != nil) != bad {
		x.t.Fatalf("create %+v: %v", req, err)
	}
	if bad {
		rs.rejected++
		return
	}
	w := &rwatch{stream: st, id: -1, req: req}
	x.watchers = append(x.watchers, w)
	rs.pending = append(rs.pending, w)
}

func (x *randRun) cancel() {
	var live []*rwatch
	for _, w := range x.watchers {
		if w.created && !w.canceled && !w.ended {
			live = append(live, w)
		}
	}
	if len(live) == 0 {
		return
	}
	w := live[x.rnd.Intn(len(live))]
	w.canceled = true
	x.makeRoom(x.streams[w.stream])
	x.streams[w.stream].s.Cancel(w.id)
}

func (x *randRun) compact() {
	cur := x.h.src.Rev()
	last := int64(0)
	if len(x.compacts) > 0 {
		last = x.compacts[len(x.compacts)-1]
	}
	if cur <= last+1 {
		return
	}
	rev := last + 1 + x.rnd.Int63n(cur-last)
	if x.rnd.Intn(2) == 0 {
		rev = last + 1 + (cur-last-1)/4 // well behind the head, as an operator's retention would be
	}
	x.h.compact(rev)
	x.compacts = append(x.compacts, rev)
}

// makeRoom drains the stream if its backlog is full: Create and Cancel would wait for a consumer, and this
// test has only one goroutine (a client that never reads blocks its own requests, as with etcd).
func (x *randRun) makeRoom(st *rstream) {
	for {
		x.h.r.mu.Lock()
		x.h.r.flushLocked(st.s)
		full := len(st.s.backlog) >= x.h.r.cfg.MaxPending
		x.h.r.mu.Unlock()
		if !full {
			return
		}
		x.drain(st)
	}
}

// nextExpected advances w's cursor over every event to the next one w must get.
func (x *randRun) nextExpected(w *rwatch) (mvcc.Event, bool) {
	from := w.req.StartRev
	if from == 0 {
		from = w.createdAt + 1
	}
	for w.cursor < len(x.all) {
		ev := x.all[w.cursor]
		w.cursor++
		if ev.KV.ModRevision < from || !inRange(ev.KV.Key, w.req.Key, w.req.End) {
			continue
		}
		if (w.req.NoPut && ev.Type == mvcc.EventPut) || (w.req.NoDelete && ev.Type == mvcc.EventDelete) {
			continue
		}
		if !w.req.PrevKV {
			ev.PrevKV = nil
		}
		return ev, true
	}
	return mvcc.Event{}, false
}

// expected is the brute-force answer: every event of w's range from its first revision, filtered, up to rev.
func (x *randRun) expected(w *rwatch, upTo int64) []mvcc.Event {
	from := w.req.StartRev
	if from == 0 {
		from = w.createdAt + 1
	}
	key, end := w.req.Key, w.req.End
	var out []mvcc.Event
	for _, ev := range x.all {
		rev := ev.KV.ModRevision
		if rev < from || rev > upTo || !inRange(ev.KV.Key, key, end) {
			continue
		}
		if (w.req.NoPut && ev.Type == mvcc.EventPut) || (w.req.NoDelete && ev.Type == mvcc.EventDelete) {
			continue
		}
		if !w.req.PrevKV {
			ev.PrevKV = nil
		}
		out = append(out, ev)
	}
	return out
}

func inRange(k, key, end []byte) bool {
	switch {
	case len(end) == 0:
		return bytes.Equal(k, key)
	case len(end) == 1 && end[0] == 0:
		return bytes.Compare(k, key) >= 0
	default:
		return bytes.Compare(k, key) >= 0 && bytes.Compare(k, end) < 0
	}
}

// renderEvs renders events; a PrevKV missing because it predates a compaction revision that the event sits
// on is rendered as present (etcd loses those too; see mvcc.Store.Events).
func (x *randRun) renderEvs(evs []mvcc.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		s := renderEvent(ev)
		if ev.PrevKV == nil && slices.Contains(x.compacts, ev.KV.ModRevision) {
			s += "(prev ?)"
		}
		if i := strings.Index(s, "(prev "); i >= 0 && slices.Contains(x.compacts, ev.KV.ModRevision) {
			s = s[:i] + "(prev ?)"
		}
		b.WriteString(s)
		b.WriteString("\n")
	}
	return b.String()
}

// drain reads what the stream has queued and checks each response as it comes.
func (x *randRun) drain(st *rstream) {
	t := x.t
	for _, resp := range drainResponses(st.s) {
		switch {
		case resp.Created && resp.Canceled:
			if st.rejected == 0 || resp.WatchID != -1 {
				t.Fatalf("unexpected rejection %+v", resp)
			}
			st.rejected--
		case resp.Created:
			if len(st.pending) == 0 {
				t.Fatalf("unexpected created %+v", resp)
			}
			w := st.pending[0]
			st.pending = st.pending[1:]
			if st.byID[resp.WatchID] != nil {
				t.Fatalf("id %d reused", resp.WatchID)
			}
			w.id, w.created, w.createdAt = resp.WatchID, true, resp.Revision
			st.byID[w.id] = w
		case resp.WatchID == -1 && resp.ProgressNotify:
			for _, w := range st.byID {
				if !w.ended && !w.canceled {
					x.checkProgress(w, resp.Revision)
				}
			}
		default:
			w := st.byID[resp.WatchID]
			if w == nil || w.ended {
				t.Fatalf("response for unknown or ended watcher: %s", render(resp))
			}
			switch {
			case resp.Canceled:
				if resp.CompactRevision == 0 && !w.canceled {
					t.Fatalf("watcher %d canceled without being asked: %s", w.id, render(resp))
				}
				if w.fragOpen {
					t.Fatalf("watcher %d canceled inside a fragmented response", w.id)
				}
				if c := resp.CompactRevision; c != 0 {
					// Canceled for compaction only if it still needed a revision below the compaction revision.
					from := w.req.StartRev
					if from == 0 {
						from = w.createdAt + 1
					}
					if from >= c || (len(w.got) > 0 && w.got[len(w.got)-1].KV.ModRevision >= c-1) {
						t.Fatalf("watcher %d %+v canceled at compaction %d though it needed nothing below it (got up to %v)", w.id, w.req, c, w.got)
					}
				}
				w.ended, w.compacted = true, resp.CompactRevision
			case resp.ProgressNotify:
				if w.fragOpen {
					t.Fatalf("progress inside a fragmented response")
				}
				x.checkProgress(w, resp.Revision)
			default:
				if len(resp.Events) == 0 {
					t.Fatalf("empty event response %s", render(resp))
				}
				if resp.Fragment && !w.req.Fragment {
					t.Fatalf("fragment for a watcher that did not ask")
				}
				for _, ev := range resp.Events {
					if ev.KV.ModRevision > resp.Revision {
						t.Fatalf("event above header revision: %s", render(resp))
					}
				}
				w.fragOpen = resp.Fragment
				// Each event must be the next expected one.
				for _, ev := range resp.Events {
					want, ok := x.nextExpected(w)
					if g := x.renderEvs([]mvcc.Event{ev}); !ok || g != x.renderEvs([]mvcc.Event{want}) {
						t.Fatalf("watcher %d %+v: after\n%s\ngot %s want %v %s", w.id, w.req, x.renderEvs(w.got), g, ok, x.renderEvs([]mvcc.Event{want}))
					}
					w.got = append(w.got, ev)
				}
			}
		}
	}
}

// checkProgress: a progress response at rev means every event up to rev has been delivered.
func (x *randRun) checkProgress(w *rwatch, rev int64) {
	if w.fragOpen {
		x.t.Fatalf("watcher %d: progress inside a fragmented response", w.id)
	}
	want := x.expected(w, rev)
	if x.renderEvs(w.got) != x.renderEvs(want) {
		x.t.Fatalf("watcher %d %+v: progress at %d but got\n%s\nwant\n%s", w.id, w.req, rev, x.renderEvs(w.got), x.renderEvs(want))
	}
}

// TestConcurrentWatchers runs the applier, the sync goroutine (on a real 1ms ticker), and consumers of
// different speeds concurrently, for the race detector, and checks that every watcher gets exactly its events.
// Timing shapes the load only; the check waits for completion (with a generous failure timeout).
func TestConcurrentWatchers(t *testing.T) {
	seed, _ := envInt(t, "WATCH_SEED", time.Now().UnixNano())
	t.Logf("seed %d (rerun with WATCH_SEED=%d)", seed, seed)
	rnd := rand.New(rand.NewSource(seed))
	src := &memSource{s: mvcc.New()}
	r := New(src, Config{MaxPending: 8, SyncInterval: time.Millisecond})
	defer r.Stop()

	type cw struct {
		req CreateRequest
		id  int64
		got []mvcc.Event
	}
	const nStreams, perStream, revs = 6, 20, 3000
	var (
		mu      sync.Mutex
		ws      = make([][]*cw, nStreams)
		streams = make([]*Stream, nStreams)
		wg      sync.WaitGroup
	)
	for i := range streams {
		s := r.NewStream()
		streams[i] = s
		for j := range perStream {
			k := randKeys[rnd.Intn(len(randKeys))]
			req := CreateRequest{WatchID: int64(j + 1), Key: []byte(k), PrevKV: j%2 == 0, StartRev: int64(rnd.Intn(2))}
			if j%3 == 0 {
				req.End = []byte{0}
			}
			ws[i] = append(ws[i], &cw{req: req, id: req.WatchID})
		}
		slow := i % 3
		wg.Go(func() {
			n := 0
			var batch []Response
			for {
				var ok bool
				if batch, ok = s.Take(batch); !ok {
					break
				}
				if len(batch) == 0 {
					<-s.Ready()
					continue
				}
				for _, resp := range batch {
					mu.Lock()
					if len(resp.Events) > 0 {
						w := ws[i][resp.WatchID-1]
						w.got = append(w.got, resp.Events...)
					}
					mu.Unlock()
					n++
					if slow > 0 && n%(50*slow) == 0 {
						time.Sleep(time.Millisecond) // a slow consumer: load shaping only
					}
				}
			}
		})
		// Create after the consumer started: with 8 slots Create would wait for it.
		for _, w := range ws[i] {
			if err := s.Create(w.req); err != nil {
				t.Fatal(err)
			}
		}
	}
	var all []mvcc.Event
	for range revs {
		src.mu.Lock()
		_, evs, err := src.s.Txn(txnPut(randKeys[rnd.Intn(len(randKeys))], fmt.Sprint(rnd.Intn(100))), nil)
		rev := src.s.Rev()
		src.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
		r.Notify(rev, evs)
	}
	want := func(w *cw) int {
		n := 0
		for _, ev := range all {
			if inRange(ev.KV.Key, w.req.Key, w.req.End) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := true
		mu.Lock()
		for i := range ws {
			for _, w := range ws[i] {
				done = done && len(w.got) >= want(w)
			}
		}
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watchers did not catch up within 20s")
		}
		time.Sleep(5 * time.Millisecond) // polling for completion; the result is checked below
	}
	for _, s := range streams {
		s.Close()
	}
	wg.Wait()
	for i := range ws {
		for _, w := range ws[i] {
			var exp []string
			for _, ev := range all {
				if inRange(ev.KV.Key, w.req.Key, w.req.End) {
					if !w.req.PrevKV {
						ev.PrevKV = nil
					}
					exp = append(exp, renderEvent(ev))
				}
			}
			var got []string
			for _, ev := range w.got {
				got = append(got, renderEvent(ev))
			}
			if strings.Join(got, "\n") != strings.Join(exp, "\n") {
				t.Fatalf("stream %d watcher %d %+v: %d events, want %d", i, w.id, w.req, len(got), len(exp))
			}
		}
	}
}

// FuzzWatchers runs the randomized registry check with the fuzzer choosing the seed (run with
// -fuzz=FuzzWatchers; each input starts a registry and its goroutine).
func FuzzWatchers(f *testing.F) {
	for _, seed := range []int64{1, 2, 3} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		runRandom(t, seed, 300)
	})
}
