package mvcc

import (
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"testing"
)

func renderEvents(evs []Event, more bool, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, " ev%d:", e.Type)
		dumpKV(&b, e.KV)
		b.WriteString(" ")
		dumpKV(&b, e.PrevKV)
	}
	if more {
		b.WriteString(" more")
	}
	return strings.TrimSpace(b.String())
}

func TestEventsTable(t *testing.T) {
	s := New()
	put(t, s, "a", "1", 0) // 2
	put(t, s, "b", "1", 0) // 3
	put(t, s, "a", "2", 0) // 4
	// 5: a txn with three writes, in sub-revision order b, c, a.
	if _, _, err := s.Txn(&TxnRequest{Success: []Op{
		{Put: &PutRequest{Key: b("b"), Value: b("2")}},
		{Put: &PutRequest{Key: b("c"), Value: b("1")}},
		{Delete: &DeleteRequest{Key: b("a")}},
	}}, nil); err != nil {
		t.Fatal(err)
	}
	put(t, s, "a", "3", 0) // 6
	del(t, s, "b", "d")    // 7: deletes b and c

	const (
		a2   = `ev0:{"a" c=2 m=2 v=1 l=0 "1"}`
		b3   = `ev0:{"b" c=3 m=3 v=1 l=0 "1"}`
		a4   = `ev0:{"a" c=2 m=4 v=2 l=0 "2"}`
		b5   = `ev0:{"b" c=3 m=5 v=2 l=0 "2"}`
		c5   = `ev0:{"c" c=5 m=5 v=1 l=0 "1"}`
		da5  = `ev1:{"a" c=0 m=5 v=0 l=0 ""}`
		a6   = `ev0:{"a" c=6 m=6 v=1 l=0 "3"}`
		db7  = `ev1:{"b" c=0 m=7 v=0 l=0 ""}`
		dc7  = `ev1:{"c" c=0 m=7 v=0 l=0 ""}`
		nil_ = `<nil>`
	)
	j := func(parts ...string) string { return strings.Join(parts, " ") }
	tests := []struct {
		name     string
		key, end string
		from, to int64
		prev     bool
		limit    int
		want     string
	}{
		{"all", "\x00", "\x00", 1, 7, false, 0, j(a2, nil_, b3, nil_, a4, nil_, b5, nil_, c5, nil_, da5, nil_, a6, nil_, db7, nil_, dc7, nil_)},
		{"single key", "a", "", 0, 7, false, 0, j(a2, nil_, a4, nil_, da5, nil_, a6, nil_)},
		{"window", "a", "", 3, 5, false, 0, j(a4, nil_, da5, nil_)},
		{"range", "b", "c", 1, 7, false, 0, j(b3, nil_, b5, nil_, db7, nil_)},
		{"from key", "b", "\x00", 5, 7, false, 0, j(b5, nil_, c5, nil_, db7, nil_, dc7, nil_)},
		{"prev kv", "a", "", 4, 6, true, 0, j(a4, `{"a" c=2 m=2 v=1 l=0 "1"}`, da5, `{"a" c=2 m=4 v=2 l=0 "2"}`, a6, nil_)},
		{"txn order", "\x00", "\x00", 5, 5, false, 0, j(b5, nil_, c5, nil_, da5, nil_)},
		{"limit keeps a revision whole", "\x00", "\x00", 4, 7, false, 2, j(a4, nil_, b5, nil_, c5, nil_, da5, nil_) + " more"},
		{"limit not reached", "a", "", 4, 7, false, 3, j(a4, nil_, da5, nil_, a6, nil_)},
		{"limit exactly reached", "a", "", 4, 7, false, 2, j(a4, nil_, da5, nil_) + " more"},
		{"empty window", "a", "", 7, 6, false, 0, ""},
		{"no key", "zz", "", 1, 7, false, 0, ""},
		{"future", "a", "", 1, 8, false, 0, "error: " + ErrFutureRev.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var end []byte
			if tt.end != "" {
				end = b(tt.end)
			}
			got := renderEvents(s.Events(b(tt.key), end, tt.from, tt.to, tt.prev, tt.limit))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestEventsCompacted(t *testing.T) {
	s := New()
	put(t, s, "a", "1", 0) // 2
	put(t, s, "a", "2", 0) // 3
	put(t, s, "b", "1", 0) // 4
	put(t, s, "a", "3", 0) // 5
	if err := s.Compact(3); err != nil {
		t.Fatal(err)
	}
	_, _, err := s.Events(b("a"), nil, 2, 5, false, 0)
	var ce *CompactedError
	if !errors.Is(err, ErrCompacted) || !errors.As(err, &ce) || ce.CompactRev != 3 {
		t.Fatalf("from below compaction: %v (%+v)", err, ce)
	}
	// From the compaction revision itself: served (etcd's watchers may start there); the previous version of an
	// event at the compaction revision is gone, as in etcd.
	got := renderEvents(s.Events(b("a"), nil, 3, 5, true, 0))
	want := `ev0:{"a" c=2 m=3 v=2 l=0 "2"} <nil> ev0:{"a" c=2 m=5 v=3 l=0 "3"} {"a" c=2 m=3 v=2 l=0 "2"}`
	if got != want {
		t.Fatalf("from compaction revision:\ngot  %s\nwant %s", got, want)
	}
	// b's only version (4) is above the compaction: nothing before it is needed.
	if got := renderEvents(s.Events(b("b"), nil, 4, 5, true, 0)); got != `ev0:{"b" c=4 m=4 v=1 l=0 "1"} <nil>` {
		t.Fatalf("b: %s", got)
	}
}

type recordedEvent struct {
	ev  Event
	rev int64
}

// TestEventsRandom drives random txns and compactions, records the events Txn returned, and checks that Events
// over random windows and key ranges returns exactly those, in order.
func TestEventsRandom(t *testing.T) {
	for i := range int64(3) {
		seed := testSeed(t, 7000+i)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Logf("seed %d (rerun with MVCC_SEED=%d)", seed, seed)
			runEventsRandom(t, seed, testSteps(1500))
		})
		if os.Getenv("MVCC_SEED") != "" {
			break
		}
	}
}

func runEventsRandom(t *testing.T, seed int64, steps int) {
	rnd := rand.New(rand.NewSource(seed))
	m := newModel()
	s := New()
	g := &gen{rnd: rnd, m: m}
	leases := func(id int64) bool { return id == 1 }
	var all []Event
	for step := range steps {
		switch n := rnd.Intn(100); {
		case n < 85:
			var req *TxnRequest
			switch rnd.Intn(3) {
			case 0:
				req = &TxnRequest{Success: []Op{{Put: g.putReq()}}}
			case 1:
				req = &TxnRequest{Success: []Op{{Delete: g.deleteReq()}}}
			default:
				req = g.txn(0)
			}
			_, evs, err := s.Txn(req, leases)
			if _, _, merr := m.Txn(req, leases); (err == nil) != (merr == nil) {
				t.Fatalf("step %d: store %v model %v", step, err, merr)
			}
			all = append(all, evs...)
		case n < 88:
			if rev := g.rev(); rev > 0 {
				err := s.Compact(rev)
				if merr := m.Compact(rev); (err == nil) != (merr == nil) {
					t.Fatalf("step %d: compact %d: store %v model %v", step, rev, err, merr)
				}
			}
		default:
			checkEventsQuery(t, step, rnd, g, s, all)
		}
	}
	for range 50 {
		checkEventsQuery(t, steps, rnd, g, s, all)
	}
}

func checkEventsQuery(t *testing.T, step int, rnd *rand.Rand, g *gen, s *Store, all []Event) {
	t.Helper()
	key, end := g.key(), g.end()
	from, to := g.rev(), g.rev()
	if rnd.Intn(3) == 0 {
		to = s.Rev()
	}
	prevKV := rnd.Intn(2) == 0
	limit := 0
	if rnd.Intn(3) == 0 {
		limit = rnd.Intn(4)
	}
	got, more, err := s.Events(key, end, from, to, prevKV, limit)
	q := fmt.Sprintf("step %d: Events(%q, %q, %d, %d, %v, %d)", step, key, end, from, to, prevKV, limit)
	switch {
	case to > s.Rev():
		if !errors.Is(err, ErrFutureRev) {
			t.Fatalf("%s: %v, want ErrFutureRev", q, err)
		}
		return
	case s.compactRev > 0 && from < s.compactRev:
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("%s: %v, want ErrCompacted", q, err)
		}
		return
	case err != nil:
		t.Fatalf("%s: %v", q, err)
	}
	var want []Event
	revs, wantMore := 0, false
	for _, ev := range all {
		mod := ev.KV.ModRevision
		if mod < from || mod > to || !inInterval(ev.KV.Key, key, end) {
			continue
		}
		if len(want) == 0 || want[len(want)-1].KV.ModRevision != mod {
			if limit > 0 && revs == limit {
				wantMore = true
				break
			}
			revs++
		}
		if !prevKV || mod == s.compactRev {
			ev.PrevKV = nil // a version before the compaction revision is gone
		}
		want = append(want, ev)
	}
	if g, w := renderEvents(got, more, nil), renderEvents(want, wantMore, nil); g != w {
		t.Fatalf("%s:\ngot  %s\nwant %s", q, g, w)
	}
}

func BenchmarkEventsPrefixBehind(b *testing.B) {
	s := New()
	for i := range 10000 {
		k := []byte(fmt.Sprintf("/prefix/%05d", i))
		if _, _, err := s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: k, Value: k}}}}, nil); err != nil {
			b.Fatal(err)
		}
	}
	from := s.Rev() - 5
	b.ReportAllocs()
	for b.Loop() {
		evs, _, err := s.Events([]byte("/prefix/"), []byte("/prefix0"), from, s.Rev(), true, 0)
		if err != nil || len(evs) != 6 {
			b.Fatal(len(evs), err)
		}
	}
}

// FuzzEvents runs the randomized cross-check with the fuzzer choosing the seed (run with -fuzz=FuzzEvents).
func FuzzEvents(f *testing.F) {
	for _, seed := range []int64{1, 2, 99} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed int64) {
		runEventsRandom(t, seed, 200)
	})
}
