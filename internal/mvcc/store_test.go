package mvcc

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

func b(s string) []byte { return []byte(s) }

func put(t *testing.T, s *Store, k, v string, lease int64) {
	t.Helper()
	if _, _, err := s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: b(k), Value: b(v), Lease: lease}}}}, allLeases); err != nil {
		t.Fatal(err)
	}
}

func del(t *testing.T, s *Store, k, end string) int64 {
	t.Helper()
	var e []byte
	if end != "" {
		e = b(end)
	}
	r, _, err := s.Txn(&TxnRequest{Success: []Op{{Delete: &DeleteRequest{Key: b(k), End: e}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Results[0].Delete.Deleted
}

func allLeases(int64) bool { return true }

func get(t *testing.T, s *Store, k string, rev int64) *KeyValue {
	t.Helper()
	r, err := s.Range(&RangeRequest{Key: b(k), Revision: rev})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.KVs) == 0 {
		return nil
	}
	return r.KVs[0]
}

func keys(r *RangeResult) string {
	var parts []string
	for _, kv := range r.KVs {
		parts = append(parts, string(kv.Key))
	}
	return fmt.Sprint(parts)
}

func TestRevisionsAndVersions(t *testing.T) {
	s := New()
	if s.Rev() != 1 || s.CompactRev() != 0 || s.KeyCount() != 0 {
		t.Fatalf("empty store: rev %d compact %d keys %d", s.Rev(), s.CompactRev(), s.KeyCount())
	}
	put(t, s, "a", "1", 0) // rev 2
	put(t, s, "a", "2", 0) // rev 3
	kv := get(t, s, "a", 0)
	if kv.CreateRevision != 2 || kv.ModRevision != 3 || kv.Version != 2 || string(kv.Value) != "2" {
		t.Fatalf("after two puts: %+v", kv)
	}
	if kv := get(t, s, "a", 2); kv.Version != 1 || string(kv.Value) != "1" {
		t.Fatalf("at rev 2: %+v", kv)
	}
	if get(t, s, "a", 1) != nil {
		t.Fatal("key visible before it was written")
	}
	// Deleting a missing key does not bump the revision.
	if n := del(t, s, "zzz", ""); n != 0 || s.Rev() != 3 {
		t.Fatalf("delete of missing key: deleted %d rev %d", n, s.Rev())
	}
	if n := del(t, s, "a", ""); n != 1 || s.Rev() != 4 || s.KeyCount() != 0 {
		t.Fatalf("delete: deleted %d rev %d keys %d", n, s.Rev(), s.KeyCount())
	}
	// A new generation starts at version 1 with a new create revision.
	put(t, s, "a", "3", 0) // rev 5
	if kv := get(t, s, "a", 0); kv.CreateRevision != 5 || kv.Version != 1 {
		t.Fatalf("new generation: %+v", kv)
	}
	// A read-only txn does not bump the revision.
	if _, _, err := s.Txn(&TxnRequest{Success: []Op{{Range: &RangeRequest{Key: b("a")}}}}, nil); err != nil || s.Rev() != 5 {
		t.Fatalf("read-only txn: %v rev %d", err, s.Rev())
	}
}

func TestTxnSharesOneRevision(t *testing.T) {
	s := New()
	put(t, s, "x", "0", 0) // rev 2
	res, evs, err := s.Txn(&TxnRequest{Success: []Op{
		{Put: &PutRequest{Key: b("a"), Value: b("1")}},
		{Range: &RangeRequest{Key: b("a")}}, // sees the put above
		{Put: &PutRequest{Key: b("b"), Value: b("2")}},
		{Delete: &DeleteRequest{Key: b("x"), PrevKV: true}},
		{Range: &RangeRequest{Key: b("a"), Revision: 2}}, // explicit old revision: no in-txn writes
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Rev() != 3 {
		t.Fatalf("rev %d, want 3", s.Rev())
	}
	if rr := res.Results[1].Range; len(rr.KVs) != 1 || rr.KVs[0].ModRevision != 3 {
		t.Fatalf("in-txn read: %+v", rr)
	}
	if rr := res.Results[4].Range; len(rr.KVs) != 0 {
		t.Fatalf("read at rev 2 saw in-txn write: %+v", rr)
	}
	if d := res.Results[3].Delete; d.Deleted != 1 || string(d.PrevKVs[0].Value) != "0" {
		t.Fatalf("delete: %+v", d)
	}
	if len(evs) != 3 || evs[0].Type != EventPut || evs[2].Type != EventDelete || evs[2].KV.ModRevision != 3 ||
		string(evs[2].PrevKV.Value) != "0" || evs[2].KV.Value != nil {
		t.Fatalf("events: %+v", evs)
	}
}

func TestPutOptions(t *testing.T) {
	s := New()
	put(t, s, "k", "v1", 7) // rev 2
	txn := func(p *PutRequest) (*PutResult, error) {
		r, _, err := s.Txn(&TxnRequest{Success: []Op{{Put: p}}}, func(id int64) bool { return id == 7 || id == 8 })
		if err != nil {
			return nil, err
		}
		return r.Results[0].Put, nil
	}
	r, err := txn(&PutRequest{Key: b("k"), IgnoreValue: true, Lease: 8, PrevKV: true})
	if err != nil || string(r.PrevKV.Value) != "v1" {
		t.Fatalf("ignore value: %v %+v", err, r)
	}
	if kv := get(t, s, "k", 0); string(kv.Value) != "v1" || kv.Lease != 8 {
		t.Fatalf("ignore value kept %+v", kv)
	}
	if _, err := txn(&PutRequest{Key: b("k"), Value: b("v2"), IgnoreLease: true}); err != nil {
		t.Fatal(err)
	}
	if kv := get(t, s, "k", 0); string(kv.Value) != "v2" || kv.Lease != 8 || kv.Version != 3 {
		t.Fatalf("ignore lease kept %+v", kv)
	}
	// PrevKV not asked: nil.
	if r, _ := txn(&PutRequest{Key: b("k"), Value: b("v3")}); r.PrevKV != nil {
		t.Fatal("PrevKV returned unasked")
	}
	rev := s.Rev()
	for _, tc := range []struct {
		name string
		p    *PutRequest
		want error
	}{
		{"ignore value missing key", &PutRequest{Key: b("nokey"), IgnoreValue: true}, ErrKeyNotFound},
		{"ignore lease missing key", &PutRequest{Key: b("nokey"), IgnoreLease: true}, ErrKeyNotFound},
		{"unknown lease", &PutRequest{Key: b("k"), Lease: 9}, ErrLeaseNotFound},
	} {
		if _, err := txn(tc.p); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A nil LeaseChecker knows no lease.
	if _, _, err := s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: b("k"), Lease: 7}}}}, nil); !errors.Is(err, ErrLeaseNotFound) {
		t.Fatalf("nil checker: %v", err)
	}
	if s.Rev() != rev {
		t.Fatal("a failed put changed the revision")
	}
}

func TestFailedTxnHasNoEffect(t *testing.T) {
	s := New()
	put(t, s, "a", "1", 0)
	h := s.Hash()
	for _, tc := range []struct {
		name string
		ops  []Op
		want error
	}{
		{"lease after put", []Op{{Put: &PutRequest{Key: b("a"), Value: b("2")}}, {Put: &PutRequest{Key: b("b"), Lease: 5}}}, ErrLeaseNotFound},
		{"future range after delete", []Op{{Delete: &DeleteRequest{Key: b("a")}}, {Range: &RangeRequest{Key: b("a"), Revision: 3}}}, ErrFutureRev},
		{"ignore value after delete in txn", []Op{{Delete: &DeleteRequest{Key: b("a")}}, {Put: &PutRequest{Key: b("a"), IgnoreValue: true}}}, ErrKeyNotFound},
		{"ignore value of key put in txn", []Op{{Put: &PutRequest{Key: b("n"), Value: b("x")}}, {Put: &PutRequest{Key: b("n"), IgnoreValue: true}}}, ErrKeyNotFound},
		{"nested error", []Op{{Put: &PutRequest{Key: b("c")}}, {Txn: &TxnRequest{Success: []Op{{Put: &PutRequest{Key: b("d"), Lease: 1}}}}}}, ErrLeaseNotFound},
		{"bad sort", []Op{{Put: &PutRequest{Key: b("c")}}, {Range: &RangeRequest{Key: b("a"), SortOrder: 3}}}, ErrInvalidSortOption},
		{"two ops in one", []Op{{Put: &PutRequest{Key: b("c")}, Delete: &DeleteRequest{Key: b("a")}}}, ErrInvalidOp},
	} {
		if _, _, err := s.Txn(&TxnRequest{Success: tc.ops}, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if s.Hash() != h || s.Rev() != 2 {
			t.Fatalf("%s: failed txn changed the store", tc.name)
		}
	}
}

func TestCompare(t *testing.T) {
	s := New()
	put(t, s, "a", "1", 3) // rev 2
	put(t, s, "b", "2", 0) // rev 3
	put(t, s, "b", "3", 0) // rev 4
	for _, tc := range []struct {
		name string
		c    Compare
		want bool
	}{
		{"version eq", Compare{Target: CompareVersion, Key: b("b"), Version: 2}, true},
		{"version gt", Compare{Target: CompareVersion, Result: CompareGreater, Key: b("b"), Version: 1}, true},
		{"create lt", Compare{Target: CompareCreate, Result: CompareLess, Key: b("b"), CreateRevision: 3}, false},
		{"mod ne", Compare{Target: CompareMod, Result: CompareNotEqual, Key: b("a"), ModRevision: 2}, false},
		{"lease eq", Compare{Target: CompareLease, Key: b("a"), Lease: 3}, true},
		{"value eq", Compare{Target: CompareValue, Key: b("a"), Value: b("1")}, true},
		{"value gt", Compare{Target: CompareValue, Result: CompareGreater, Key: b("a"), Value: b("0")}, true},
		{"missing key version 0", Compare{Target: CompareVersion, Key: b("zz"), Version: 0}, true},
		{"missing key create 0", Compare{Target: CompareCreate, Key: b("zz")}, true},
		{"missing key mod 0", Compare{Target: CompareMod, Key: b("zz")}, true},
		{"missing key lease 0", Compare{Target: CompareLease, Key: b("zz")}, true},
		{"missing key value always false", Compare{Target: CompareValue, Result: CompareNotEqual, Key: b("zz"), Value: b("x")}, false},
		{"missing key empty value false", Compare{Target: CompareValue, Key: b("zz")}, false},
		{"range all hold", Compare{Target: CompareVersion, Result: CompareGreater, Key: b("a"), End: b("c")}, true},
		{"range one fails", Compare{Target: CompareVersion, Result: CompareGreater, Key: b("a"), End: b("c"), Version: 1}, false},
		{"range gte", Compare{Target: CompareMod, Result: CompareLess, Key: b("a"), End: []byte{0}, ModRevision: 5}, true},
		{"range empty", Compare{Target: CompareVersion, Key: b("x"), End: b("z")}, true},
		{"range empty value", Compare{Target: CompareValue, Key: b("x"), End: b("z")}, false},
	} {
		r, _, err := s.Txn(&TxnRequest{Compare: []Compare{tc.c}}, nil)
		if err != nil || r.Succeeded != tc.want {
			t.Errorf("%s: succeeded %v err %v, want %v", tc.name, r != nil && r.Succeeded, err, tc.want)
		}
	}
}

func TestNestedTxnComparesSeePreTxnState(t *testing.T) {
	s := New()
	r, _, err := s.Txn(&TxnRequest{Success: []Op{
		{Put: &PutRequest{Key: b("a"), Value: b("1")}},
		{Txn: &TxnRequest{
			Compare: []Compare{{Target: CompareVersion, Key: b("a"), Version: 0}}, // a did not exist before the txn
			Success: []Op{{Put: &PutRequest{Key: b("s"), Value: b("yes")}}, {Range: &RangeRequest{Key: b("a")}}},
			Failure: []Op{{Put: &PutRequest{Key: b("f"), Value: b("no")}}},
		}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	nested := r.Results[1].Txn
	if !nested.Succeeded || len(nested.Results) != 2 || len(nested.Results[1].Range.KVs) != 1 {
		t.Fatalf("nested: %+v", nested)
	}
	if s.Rev() != 2 || get(t, s, "s", 0).ModRevision != 2 || get(t, s, "a", 0).ModRevision != 2 {
		t.Fatal("nested writes must share the txn's revision")
	}
}

func TestRangeSemantics(t *testing.T) {
	s := New()
	for i, k := range []string{"a", "b", "c", "d", "e"} {
		put(t, s, k, fmt.Sprint(5-i), int64(i)) // revs 2..6, values 5..1, leases 0..4
	}
	put(t, s, "b", "9", 0) // rev 7: b version 2
	put(t, s, "\x00", "z", 0)
	del(t, s, "\x00", "")
	for _, tc := range []struct {
		name      string
		r         RangeRequest
		keys      string
		count     int64
		more      bool
		wantErr   error
		checkKeys bool
	}{
		{name: "single", r: RangeRequest{Key: b("b")}, keys: "[b]", count: 1},
		{name: "single missing", r: RangeRequest{Key: b("bb")}, keys: "[]", count: 0},
		{name: "interval", r: RangeRequest{Key: b("b"), End: b("d")}, keys: "[b c]", count: 2},
		{name: "gte", r: RangeRequest{Key: b("c"), End: []byte{0}}, keys: "[c d e]", count: 3},
		{name: "all", r: RangeRequest{Key: []byte{0}, End: []byte{0}}, keys: "[a b c d e]", count: 5},
		{name: "inverted", r: RangeRequest{Key: b("d"), End: b("b")}, keys: "[]", count: 0},
		{name: "limit", r: RangeRequest{Key: b("a"), End: b("z"), Limit: 2}, keys: "[a b]", count: 5, more: true},
		{name: "limit exact", r: RangeRequest{Key: b("a"), End: b("z"), Limit: 5}, keys: "[a b c d e]", count: 5},
		{name: "negative limit", r: RangeRequest{Key: b("a"), End: b("z"), Limit: -1}, keys: "[a b c d e]", count: 5},
		{name: "descend key", r: RangeRequest{Key: b("a"), End: b("z"), SortOrder: SortDescend, Limit: 2}, keys: "[e d]", count: 5, more: true},
		{name: "by value", r: RangeRequest{Key: b("a"), End: b("z"), SortTarget: SortByValue, SortOrder: SortAscend}, keys: "[e d c a b]", count: 5},
		{name: "by mod desc", r: RangeRequest{Key: b("a"), End: b("z"), SortTarget: SortByMod, SortOrder: SortDescend, Limit: 1}, keys: "[b]", count: 5, more: true},
		{name: "by create none means ascend", r: RangeRequest{Key: b("a"), End: b("z"), SortTarget: SortByCreate}, keys: "[a b c d e]", count: 5},
		// etcd quirk: SortOrder NONE keeps the fetch cut at Limit+1, then sorts: version of a,b = 1,2 -> a first.
		{name: "by version none limit", r: RangeRequest{Key: b("b"), End: b("z"), SortTarget: SortByVersion, Limit: 1}, keys: "[c]", count: 4, more: true},
		{name: "by version ascend limit", r: RangeRequest{Key: b("a"), End: b("z"), SortTarget: SortByVersion, SortOrder: SortDescend, Limit: 1}, keys: "[b]", count: 5, more: true},
		{name: "min mod filter keeps count", r: RangeRequest{Key: b("a"), End: b("z"), MinModRevision: 5}, keys: "[b d e]", count: 5},
		{name: "max create filter with limit", r: RangeRequest{Key: b("a"), End: b("z"), MaxCreateRevision: 4, Limit: 2}, keys: "[a b]", count: 5, more: true},
		{name: "min create filter", r: RangeRequest{Key: b("a"), End: b("z"), MinCreateRevision: 4, Limit: 3}, keys: "[c d e]", count: 5},
		{name: "max mod filter", r: RangeRequest{Key: b("a"), End: b("z"), MaxModRevision: 3}, keys: "[a]", count: 5},
		{name: "count only", r: RangeRequest{Key: b("a"), End: b("z"), CountOnly: true, Limit: 1}, keys: "[]", count: 5},
		{name: "old revision", r: RangeRequest{Key: b("a"), End: b("z"), Revision: 3}, keys: "[a b]", count: 2},
		{name: "future", r: RangeRequest{Key: b("a"), Revision: 100}, wantErr: ErrFutureRev},
		{name: "bad order", r: RangeRequest{Key: b("a"), SortOrder: 5}, wantErr: ErrInvalidSortOption},
		{name: "bad target", r: RangeRequest{Key: b("a"), SortTarget: -1}, wantErr: ErrInvalidSortOption},
	} {
		r, err := s.Range(&tc.r)
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if err != nil {
			continue
		}
		if keys(r) != tc.keys || r.Count != tc.count || r.More != tc.more {
			t.Errorf("%s: keys %s count %d more %v; want %s %d %v", tc.name, keys(r), r.Count, r.More, tc.keys, tc.count, tc.more)
		}
	}
	// KeysOnly drops values, and (etcd 3.7) leases unless sorting by value.
	r, _ := s.Range(&RangeRequest{Key: b("e"), KeysOnly: true})
	if r.KVs[0].Value != nil || r.KVs[0].Lease != 0 || r.KVs[0].Version != 1 {
		t.Fatalf("keys only: %+v", r.KVs[0])
	}
	r, _ = s.Range(&RangeRequest{Key: b("e"), KeysOnly: true, SortTarget: SortByValue})
	if r.KVs[0].Value != nil || r.KVs[0].Lease != 4 {
		t.Fatalf("keys only by value: %+v", r.KVs[0])
	}
}

func TestCompaction(t *testing.T) {
	s := New()
	put(t, s, "a", "1", 0) // 2
	put(t, s, "a", "2", 0) // 3
	put(t, s, "b", "1", 0) // 4
	del(t, s, "b", "")     // 5
	put(t, s, "c", "1", 0) // 6
	del(t, s, "c", "")     // 7
	put(t, s, "a", "3", 0) // 8
	if err := s.Compact(9); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("future compaction: %v", err)
	}
	if err := s.Compact(7); err != nil {
		t.Fatal(err)
	}
	if s.CompactRev() != 7 {
		t.Fatal("compact rev")
	}
	for _, rev := range []int64{7, 0} {
		if _, err := s.Range(&RangeRequest{Key: b("a"), Revision: rev}); err != nil {
			t.Fatalf("read at %d: %v", rev, err)
		}
	}
	if _, err := s.Range(&RangeRequest{Key: b("a"), Revision: 6}); !errors.Is(err, ErrCompacted) {
		t.Fatalf("read below compaction: %v", err)
	}
	if kv := get(t, s, "a", 7); string(kv.Value) != "2" {
		t.Fatalf("a at 7: %+v", kv)
	}
	// b's tombstone at 5 is gone with its history; c's tombstone at exactly 7 is kept.
	if e := s.get(b("b")); e != nil {
		t.Fatalf("b still indexed: %+v", e.revs)
	}
	if e := s.get(b("c")); e == nil || len(e.revs) != 1 || !e.revs[0].tomb {
		t.Fatal("c's tombstone at the compaction revision must stay")
	}
	if e := s.get(b("a")); len(e.revs) != 2 {
		t.Fatalf("a keeps %d versions, want 2", len(e.revs))
	}
	for _, rev := range []int64{7, 6, 1} {
		if err := s.Compact(rev); !errors.Is(err, ErrCompacted) {
			t.Fatalf("compact %d again: %v", rev, err)
		}
	}
	if _, _, err := s.Txn(&TxnRequest{Success: []Op{{Put: &PutRequest{Key: b("x")}}, {Range: &RangeRequest{Key: b("a"), Revision: 3}}}}, nil); !errors.Is(err, ErrCompacted) {
		t.Fatalf("txn range below compaction: %v", err)
	}
	if _, _, _, err := s.HashKV(6); !errors.Is(err, ErrCompacted) {
		t.Fatalf("hashkv below compaction: %v", err)
	}
	if _, _, _, err := s.HashKV(9); !errors.Is(err, ErrFutureRev) {
		t.Fatalf("hashkv future: %v", err)
	}
	if _, hr, cr, err := s.HashKV(0); err != nil || hr != 8 || cr != 7 {
		t.Fatalf("hashkv current: %d %d %v", hr, cr, err)
	}
	// Like etcd, a store never compacted accepts Compact(0) once.
	n := New()
	if _, _, cr, _ := n.HashKV(0); cr != -1 {
		t.Fatalf("never compacted: compact rev %d, want -1 as etcd", cr)
	}
	if err := n.Compact(0); err != nil {
		t.Fatal(err)
	}
	if err := n.Compact(0); !errors.Is(err, ErrCompacted) {
		t.Fatal(err)
	}
}

func TestCompactFrom(t *testing.T) {
	p := func(mod, sub int64) version { return version{mod: mod, sub: sub, ver: 1, create: mod} }
	d := func(mod, sub int64) version { return version{mod: mod, sub: sub, tomb: true} }
	for _, tc := range []struct {
		revs []version
		at   int64
		want int
	}{
		{[]version{p(2, 0), p(3, 0)}, 2, 0},
		{[]version{p(2, 0), p(3, 0)}, 3, 1},
		{[]version{p(2, 0), p(3, 0)}, 10, 1},
		{[]version{p(2, 0), d(4, 0)}, 4, 1},          // tombstone at rev kept
		{[]version{p(2, 0), d(4, 0)}, 5, 2},          // tombstone below rev dropped
		{[]version{p(2, 0), d(4, 0), p(6, 0)}, 5, 2}, // next generation kept whole
		{[]version{p(5, 0), d(5, 1), p(5, 2)}, 5, 1}, // etcd keeps the tombstone's generation
		{[]version{p(5, 0), d(5, 1), p(5, 2)}, 6, 2}, // then drops it
		{[]version{p(2, 0), d(3, 0), p(4, 0), d(6, 0)}, 5, 2},
	} {
		if got := compactFrom(tc.revs, tc.at); got != tc.want {
			t.Errorf("compactFrom(%v, %d) = %d, want %d", tc.revs, tc.at, got, tc.want)
		}
	}
}

func TestCloneIsolation(t *testing.T) {
	s := New()
	for i := range 100 {
		put(t, s, fmt.Sprintf("k%03d", i), "v", 0)
	}
	c := s.Clone()
	h := c.Hash()
	before, _ := c.Range(&RangeRequest{Key: []byte{0}, End: []byte{0}})
	// The clone takes writes too, without affecting the original.
	put(t, c, "k000", "clone", 0)
	del(t, c, "k050", "k060")
	if get(t, s, "k000", 0).Version != 1 || get(t, s, "k055", 0) == nil {
		t.Fatal("clone write leaked into the original")
	}
	c2 := s.Clone()
	h2 := c2.Hash()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // read the second clone while the original takes writes
		defer wg.Done()
		for range 20 {
			if c2.Hash() != h2 {
				t.Error("clone changed under concurrent writes")
				return
			}
			var buf bytes.Buffer
			if _, err := c2.WriteTo(&buf); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for i := range 200 {
		put(t, s, fmt.Sprintf("k%03d", i%150), "new", 0)
		if i%50 == 0 {
			del(t, s, "k010", "k020")
			_ = s.Compact(s.Rev() - 1)
		}
	}
	wg.Wait()
	if c2.Hash() != h2 {
		t.Fatal("second clone changed")
	}
	put(t, c, "k000", "again", 0)
	after, _ := c2.Range(&RangeRequest{Key: []byte{0}, End: []byte{0}})
	if renderRangeOK(before) != renderRangeOK(after) {
		t.Fatal("clone read differs from the state at clone time")
	}
	_ = h
}

func renderRangeOK(r *RangeResult) string { return renderRange(r, nil) }

func TestSnapshotRoundTrip(t *testing.T) {
	s := New()
	for i := range 50 {
		put(t, s, fmt.Sprintf("k%02d", i%20), fmt.Sprint(i), int64(i%3))
		if i%7 == 0 {
			del(t, s, fmt.Sprintf("k%02d", i%20), "")
		}
	}
	if err := s.Compact(20); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil || n != int64(buf.Len()) {
		t.Fatalf("WriteTo: %d %v (buffer %d)", n, err, buf.Len())
	}
	data := append([]byte(nil), buf.Bytes()...)
	r, err := Restore(&buf)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, s, r, nil)
	// Bad inputs.
	bad := func(name string, d []byte) {
		if _, err := Restore(bytes.NewReader(d)); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
	}
	bad("empty", nil)
	bad("truncated", data[:len(data)-1])
	bad("half", data[:len(data)/2])
	v2 := append([]byte(nil), data...)
	v2[8] = 2
	bad("unknown version", v2)
	flip := append([]byte(nil), data...)
	flip[len(flip)/2] ^= 0x40
	bad("bit flip", flip)
	bad("magic", append([]byte("NOTCAIRN"), data[8:]...))
	// Embedded in a larger stream, Restore stops at its own end when given a ByteReader.
	stream := bytes.NewReader(append(append([]byte(nil), data...), "TRAILER"...))
	if _, err := Restore(stream); err != nil {
		t.Fatal(err)
	}
	if stream.Len() != len("TRAILER") {
		t.Fatalf("Restore read past the snapshot: %d bytes left", stream.Len())
	}
}

func FuzzRestore(f *testing.F) {
	s := New()
	put(&testing.T{}, s, "a", "1", 0)
	put(&testing.T{}, s, "b", "2", 3)
	del(&testing.T{}, s, "a", "")
	var buf bytes.Buffer
	_, _ = s.WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add([]byte{})
	f.Add([]byte("CAIRNMVC\x01"))
	var empty bytes.Buffer
	_, _ = New().WriteTo(&empty)
	f.Add(empty.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Restore(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever restores must serialize back to the same bytes and answer reads.
		var out bytes.Buffer
		if _, err := r.WriteTo(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), data[:out.Len()]) {
			t.Fatal("restore/write round trip differs")
		}
		if _, err := r.Range(&RangeRequest{Key: []byte{0}, End: []byte{0}}); err != nil {
			t.Fatal(err)
		}
	})
}
