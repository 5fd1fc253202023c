package watch

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

func TestSyncedDelivery(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.put("a", "0") // rev 2, before any watcher
	h.create(s, CreateRequest{Key: []byte("a")})
	h.create(s, CreateRequest{Key: []byte("b"), End: []byte("d")})
	h.create(s, CreateRequest{Key: []byte("c"), End: []byte{0}})
	h.create(s, CreateRequest{}) // empty key, no end: the key "\x00"
	h.put("a", "1")
	h.put("c", "1")
	h.txn(putOp("b", "1"), putOp("z", "1"), putOp("a", "2")) // one revision, three keys
	h.del("a", "zz")
	expect(t, s, `
id=0 rev=2 created
id=1 rev=2 created
id=2 rev=2 created
id=3 rev=2 created
id=0 rev=3 put:a=1@3
id=1 rev=4 put:c=1@4
id=2 rev=4 put:c=1@4
id=1 rev=5 put:b=1@5
id=2 rev=5 put:z=1@5
id=0 rev=5 put:a=2@5
id=0 rev=6 del:a@6
id=1 rev=6 del:b@6 del:c@6
id=2 rev=6 del:c@6 del:z@6`)
}

func TestNotifyBatchOfRevisions(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("k"), End: []byte("l")})
	// The applier notifies a batch of three revisions at once: one response for the watcher.
	h.src.mu.Lock()
	var all []mvcc.Event
	for i := range 3 {
		_, evs, err := h.src.s.Txn(txnPut(fmt.Sprint("k", i), "v"), nil)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, evs...)
	}
	rev := h.src.s.Rev()
	h.src.mu.Unlock()
	h.r.Notify(rev, all)
	expect(t, s, `
id=0 rev=1 created
id=0 rev=4 put:k0=v@2 put:k1=v@3 put:k2=v@4`)
}

func TestStartInThePast(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	for i := range 4 {
		h.put("a", fmt.Sprint(i)) // revs 2..5
	}
	h.put("b", "x") // 6
	h.create(s, CreateRequest{Key: []byte("a"), StartRev: 3, PrevKV: true})
	h.put("a", "4") // 7: the watcher is unsynced: nothing yet
	expect(t, s, `id=0 rev=6 created`)
	h.sync()
	expect(t, s, `id=0 rev=7 put:a=1@3(prev 0@2) put:a=2@4(prev 1@3) put:a=3@5(prev 2@4) put:a=4@7(prev 3@5)`)
	h.put("a", "5") // synced now: Notify delivers
	expect(t, s, `id=0 rev=8 put:a=5@8(prev 4@7)`)
	// A start revision equal to the current one replays that revision.
	h.create(s, CreateRequest{WatchID: 9, Key: []byte("a"), StartRev: 8})
	h.sync()
	expect(t, s, `
id=9 rev=8 created
id=9 rev=8 put:a=5@8`)
}

func TestFutureStart(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("a"), StartRev: 4})
	h.put("a", "2")
	h.put("a", "3")
	h.put("a", "4")
	h.put("a", "5")
	expect(t, s, `
id=0 rev=1 created
id=0 rev=4 put:a=4@4
id=0 rev=5 put:a=5@5`)
}

func TestCompactedStart(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	for i := range 5 {
		h.put("a", fmt.Sprint(i)) // revs 2..6
	}
	h.compact(4)
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("a"), StartRev: 3})
	h.create(s, CreateRequest{WatchID: 2, Key: []byte("a"), StartRev: 4}) // the compaction revision: served
	h.sync()
	expect(t, s, `
id=1 rev=6 created
id=2 rev=6 created
id=1 rev=6 canceled compact=4
id=2 rev=6 put:a=2@4 put:a=3@5 put:a=4@6`)
	h.put("a", "5")
	expect(t, s, `id=2 rev=7 put:a=5@7`)
	h.r.mu.Lock()
	defer h.r.mu.Unlock()
	if len(s.watchers) != 1 || s.watchers[2] == nil {
		t.Fatalf("compacted watcher not removed: %v", s.watchers)
	}
}

func TestFiltersAndPrevKV(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.put("a", "0")
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("a"), NoPut: true})
	h.create(s, CreateRequest{WatchID: 2, Key: []byte("a"), NoDelete: true, PrevKV: true})
	h.create(s, CreateRequest{WatchID: 3, Key: []byte("a"), NoDelete: true, NoPut: true})
	h.create(s, CreateRequest{WatchID: 4, Key: []byte("a"), PrevKV: true})
	h.put("a", "1")
	h.del("a", "")
	h.put("a", "2")
	expect(t, s, `
id=1 rev=2 created
id=2 rev=2 created
id=3 rev=2 created
id=4 rev=2 created
id=2 rev=3 put:a=1@3(prev 0@2)
id=4 rev=3 put:a=1@3(prev 0@2)
id=1 rev=4 del:a@4
id=4 rev=4 del:a@4(prev 1@3)
id=2 rev=5 put:a=2@5
id=4 rev=5 put:a=2@5`)
	// The same filters in catch-up.
	h.create(s, CreateRequest{WatchID: 5, Key: []byte("a"), StartRev: 2, NoPut: true})
	h.create(s, CreateRequest{WatchID: 6, Key: []byte("a"), StartRev: 2, NoDelete: true, PrevKV: true})
	h.sync()
	expect(t, s, `
id=5 rev=5 created
id=6 rev=5 created
id=5 rev=5 del:a@4
id=6 rev=5 put:a=0@2 put:a=1@3(prev 0@2) put:a=2@5`)
}

func TestCancel(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("a")})
	h.create(s, CreateRequest{Key: []byte("a"), End: []byte("b")})
	h.put("a", "1")
	s.Cancel(0)
	s.Cancel(0)  // already canceled: ignored
	s.Cancel(42) // unknown: ignored
	h.put("a", "2")
	expect(t, s, `
id=0 rev=1 created
id=1 rev=1 created
id=0 rev=2 put:a=1@2
id=1 rev=2 put:a=1@2
id=0 rev=2 canceled
id=1 rev=3 put:a=2@3`)
	// An unsynced watcher canceled before its catch-up gets nothing more.
	h.create(s, CreateRequest{WatchID: 7, Key: []byte("a"), StartRev: 2})
	s.Cancel(7)
	h.sync()
	expect(t, s, `
id=7 rev=3 created
id=7 rev=3 canceled`)
	s.Close()
	s.Close()
	h.put("a", "3")
	expect(t, s, `<closed>`)
	if err := s.Create(CreateRequest{Key: []byte("a")}); !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("create on closed stream: %v", err)
	}
}

func TestCreateErrorsAndIDs(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("a")})
	h.create(s, CreateRequest{Key: []byte("a")}) // auto: 0
	h.create(s, CreateRequest{Key: []byte("a")}) // auto: 1 is taken, so 2
	for _, tc := range []struct {
		req  CreateRequest
		want error
	}{
		{CreateRequest{WatchID: 2, Key: []byte("a")}, ErrDuplicateWatchID},
		{CreateRequest{Key: []byte("b"), End: []byte("a")}, ErrEmptyRange},
		{CreateRequest{Key: []byte("b"), End: []byte("b")}, ErrEmptyRange},
		{CreateRequest{Key: []byte("a"), StartRev: -1}, ErrNegativeStartRev},
	} {
		if err := s.Create(tc.req); !errors.Is(err, tc.want) {
			t.Fatalf("%+v: %v, want %v", tc.req, err, tc.want)
		}
	}
	h.create(s, CreateRequest{Key: []byte("a"), End: []byte{0}}) // "\x00": every key >= a
	h.create(s, CreateRequest{WatchID: -5, Key: []byte("a")})    // a negative id is used as given, as in etcd
	expect(t, s, `
id=1 rev=1 created
id=0 rev=1 created
id=2 rev=1 created
id=-1 rev=1 created canceled reason="mvcc: duplicate watch ID provided on the WatchStream"
id=-1 rev=1 created canceled reason="mvcc: watcher range is empty"
id=-1 rev=1 created canceled reason="mvcc: watcher range is empty"
id=-1 rev=1 created canceled reason="etcdserver: mvcc: required revision has been compacted"
id=3 rev=1 created
id=-5 rev=1 created`)
}

func TestProgress(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	s.RequestProgress() // no watchers: nothing, as etcd 3.7
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("a"), ProgressNotify: true})
	h.create(s, CreateRequest{WatchID: 2, Key: []byte("b"), ProgressNotify: true})
	h.create(s, CreateRequest{WatchID: 3, Key: []byte("c")})
	h.put("a", "1")
	h.progress() // 1 got an event since the last tick: elided; 2 is idle
	h.progress() // both idle
	s.RequestProgress()
	expect(t, s, `
id=1 rev=1 created
id=2 rev=1 created
id=3 rev=1 created
id=1 rev=2 put:a=1@2
id=2 rev=2 progress
id=1 rev=2 progress
id=2 rev=2 progress
id=-1 rev=2 progress`)
	// An unsynced watcher blocks RequestProgress and gets no periodic progress until it is caught up.
	h.create(s, CreateRequest{WatchID: 4, Key: []byte("d"), StartRev: 1, ProgressNotify: true})
	s.RequestProgress()
	h.progress()
	got := drain(s)
	if strings.Contains(got, "id=-1") || strings.Contains(got, "id=4 rev=2 progress") {
		t.Fatalf("progress while unsynced:\n%s", got)
	}
	h.sync()
	s.RequestProgress()
	h.progress()
	expect(t, s, `
id=-1 rev=2 progress
id=1 rev=2 progress
id=2 rev=2 progress
id=4 rev=2 progress`)
	// A watcher waiting for a future start revision has no progress either.
	s2 := h.r.NewStream()
	h.create(s2, CreateRequest{Key: []byte("e"), StartRev: 10, ProgressNotify: true})
	s2.RequestProgress()
	h.progress()
	expect(t, s2, `id=0 rev=2 created`)
}

func TestProgressTicksDriveTheGoroutine(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("a"), ProgressNotify: true})
	h.create(s, CreateRequest{WatchID: 5, Key: []byte("a"), StartRev: 1})
	h.put("a", "1")
	// An unbuffered tick is received only when the goroutine is idle: two ticks mean the first pass finished.
	h.ticks <- time.Time{}
	h.ticks <- time.Time{}
	h.pticks <- time.Time{}
	h.pticks <- time.Time{}
	h.ticks <- time.Time{}
	expect(t, s, `
id=0 rev=1 created
id=5 rev=1 created
id=0 rev=2 put:a=1@2
id=5 rev=2 put:a=1@2
id=0 rev=2 progress`)
}

func TestFragment(t *testing.T) {
	h := newHarness(t, Config{ResponseBytes: 200})
	s := h.r.NewStream()
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("k"), End: []byte("l"), Fragment: true})
	h.create(s, CreateRequest{WatchID: 2, Key: []byte("k"), End: []byte("l")})
	big := strings.Repeat("x", 100) // 64+2+100 = 166 bytes an event
	h.txn(putOp("k1", big), putOp("k2", big), putOp("k3", big))
	h.put("k4", "small")
	got := drain(s)
	want := strings.NewReplacer("X", big).Replace(`id=1 rev=1 created
id=2 rev=1 created
id=1 rev=2 fragment put:k1=X@2
id=1 rev=2 fragment put:k2=X@2
id=1 rev=2 put:k3=X@2
id=2 rev=2 put:k1=X@2 put:k2=X@2 put:k3=X@2
id=1 rev=3 put:k4=small@3
id=2 rev=3 put:k4=small@3`)
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	// Catch-up responses are cut at revision boundaries once they pass the budget.
	h.create(s, CreateRequest{WatchID: 3, Key: []byte("k"), End: []byte("l"), StartRev: 2})
	h.put("k5", big)
	h.put("k6", big)
	h.sync()
	got = drain(s)
	want = strings.NewReplacer("X", big).Replace(`id=3 rev=3 created
id=1 rev=4 put:k5=X@4
id=2 rev=4 put:k5=X@4
id=1 rev=5 put:k6=X@5
id=2 rev=5 put:k6=X@5
id=3 rev=5 put:k1=X@2 put:k2=X@2 put:k3=X@2
id=3 rev=5 put:k4=small@3 put:k5=X@4
id=3 rev=5 put:k6=X@5`)
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestMaxEventsPerResponse(t *testing.T) {
	h := newHarness(t, Config{MaxEventsPerResponse: 2})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("k"), End: []byte("l"), Fragment: true})
	h.txn(putOp("k1", "1"), putOp("k2", "2"), putOp("k3", "3"))
	expect(t, s, `
id=0 rev=1 created
id=0 rev=2 fragment put:k1=1@2 put:k2=2@2
id=0 rev=2 put:k3=3@2`)
}

func TestRestored(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("a")})
	h.put("a", "1")
	// A snapshot moves the store ahead without Notify.
	h.src.mu.Lock()
	for i := range 3 {
		if _, _, err := h.src.s.Txn(txnPut("a", fmt.Sprint("s", i)), nil); err != nil {
			t.Fatal(err)
		}
	}
	rev := h.src.s.Rev()
	h.src.mu.Unlock()
	h.r.Restored(rev)
	h.sync()
	h.put("a", "2")
	expect(t, s, `
id=0 rev=1 created
id=0 rev=2 put:a=1@2
id=0 rev=5 put:a=s0@3 put:a=s1@4 put:a=s2@5
id=0 rev=6 put:a=2@6`)
}

func TestStopClosesStreams(t *testing.T) {
	h := newHarness(t, Config{})
	s := h.r.NewStream()
	h.create(s, CreateRequest{Key: []byte("a")})
	h.r.Stop()
	h.r.Stop()
	h.put("a", "1") // Notify after Stop delivers to nothing
	expect(t, s, `
id=0 rev=1 created
<closed>`)
	s2 := h.r.NewStream()
	if _, ok := s2.Take(nil); ok {
		t.Fatal("stream made after Stop is open")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{{MaxPending: -1}, {SyncInterval: -1}, {ProgressInterval: -1}, {ResponseBytes: -1}, {MaxEventsPerResponse: -1}} {
		if err := c.Validate(); !errors.Is(err, ErrBadConfig) {
			t.Fatalf("%+v: %v", c, err)
		}
	}
}

func TestIndex(t *testing.T) {
	x := newIndex()
	mk := func(key, end string, gte bool) *watcher {
		w := &watcher{key: []byte(key), gte: gte}
		if end != "" {
			w.end = []byte(end)
		}
		return w
	}
	ws := []*watcher{
		mk("a", "", false), mk("a", "c", false), mk("a", "c", false), mk("b", "", true),
		mk("bb", "bc", false), mk("", "", true), mk("c", "d", false), mk("a", "b", false),
	}
	for _, w := range ws {
		x.add(w)
	}
	stab := func(k string) string {
		var ids []int
		x.each([]byte(k), func(w *watcher) {
			for i, v := range ws {
				if v == w {
					ids = append(ids, i)
				}
			}
		})
		return fmt.Sprint(sortedInts(ids))
	}
	for k, want := range map[string]string{
		"a": "[0 1 2 5 7]", "aa": "[1 2 5 7]", "b": "[1 2 3 5]", "bb": "[1 2 3 4 5]", "bc": "[1 2 3 5]",
		"c": "[3 5 6]", "d": "[3 5]", "": "[5]",
	} {
		if got := stab(k); got != want {
			t.Errorf("stab %q = %s, want %s", k, got, want)
		}
	}
	x.remove(ws[1])
	x.remove(ws[3])
	x.remove(ws[0])
	if got := stab("b"); got != "[2 5]" {
		t.Fatalf("after removes: %s", got)
	}
	for _, w := range []*watcher{ws[2], ws[4], ws[5], ws[6], ws[7]} {
		x.remove(w)
	}
	if x.root != nil || len(x.keys) != 0 || len(x.nodes) != 0 || x.n != 0 {
		t.Fatal("index not empty")
	}
}

func sortedInts(v []int) []int {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v
}

// Every response carrying the same event in the same form shares one cache slot (the API layer encodes each
// event once); a different form (with PrevKV) has its own slot; a cached encoding is computed once.
func TestEventCachesShared(t *testing.T) {
	h := newHarness(t, Config{})
	s1, s2 := h.r.NewStream(), h.r.NewStream()
	h.create(s1, CreateRequest{WatchID: 1, Key: []byte("a")})
	h.create(s1, CreateRequest{WatchID: 2, Key: []byte("a"), End: []byte("c")})
	h.create(s2, CreateRequest{WatchID: 1, Key: []byte("a")})
	h.create(s2, CreateRequest{WatchID: 2, Key: []byte("a"), PrevKV: true})
	h.create(s2, CreateRequest{WatchID: 3, Key: []byte("b")}) // sees only part of the batch
	drainResponses(s1)
	drainResponses(s2)
	h.txn(putOp("a", "1"), putOp("b", "1"))
	got := map[string]Response{}
	for name, s := range map[string]*Stream{"s1": s1, "s2": s2} {
		for _, r := range drainResponses(s) {
			if len(r.Caches) != len(r.Events) {
				t.Fatalf("%s id=%d: %d caches for %d events", name, r.WatchID, len(r.Caches), len(r.Events))
			}
			got[fmt.Sprintf("%s/%d", name, r.WatchID)] = r
		}
	}
	a := got["s1/1"].Caches[0]
	if a == nil || got["s2/1"].Caches[0] != a || got["s1/2"].Caches[0] != a {
		t.Fatal("watchers of the same event in the same form do not share its cache slot")
	}
	if got["s2/2"].Caches[0] == a {
		t.Fatal("the PrevKV form shares the slot of the plain form")
	}
	if got["s2/3"].Caches[0] != got["s1/2"].Caches[1] {
		t.Fatal("a watcher of part of the batch does not share the slot of its event")
	}
	calls := 0
	enc := func() any { calls++; return "x" }
	for _, k := range []string{"s1/1", "s2/1", "s1/2"} {
		if b := got[k].Caches[0].Value(enc); b != "x" {
			t.Fatalf("%s: cached %q", k, b)
		}
	}
	if calls != 1 {
		t.Fatalf("encoded %d times, want once", calls)
	}
}

// Stream.Sent reports the queue-to-send delay of events responses only.
func TestSendDelayObserved(t *testing.T) {
	var delays []time.Duration
	h := newHarness(t, Config{ObserveSendDelay: func(d time.Duration) { delays = append(delays, d) }})
	s := h.r.NewStream()
	h.create(s, CreateRequest{WatchID: 1, Key: []byte("a")})
	h.put("a", "1")
	h.create(s, CreateRequest{WatchID: 2, Key: []byte("a"), StartRev: 1})
	h.sync()
	var events int
	batch := drainResponses(s)
	s.Sent(batch)
	for _, r := range batch {
		if len(r.Events) > 0 {
			events++
		}
	}
	if events != 2 || len(delays) != 2 {
		t.Fatalf("%d events responses (want 2: one notified, one caught up), %d delays observed", events, len(delays))
	}
	for _, d := range delays {
		if d < 0 {
			t.Fatalf("negative delay %v", d)
		}
	}
}
