package lease

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

func kv(key string, lease int64) *mvcc.KeyValue {
	return &mvcc.KeyValue{Key: []byte(key), Lease: lease}
}

// A scripted history of one table and two members' clocks (a leader and a
// follower that takes over), rendered and compared with the expected trace.
func TestTableAndDeadlinesGolden(t *testing.T) {
	base := time.Unix(0, 0)
	now := base
	clock := func() time.Time { return now }
	tbl := NewTable()
	leader, follower := NewDeadlines(clock), NewDeadlines(clock)
	var out []string
	logf := func(format string, args ...any) {
		out = append(out, fmt.Sprintf("t=%-4v ", now.Sub(base))+fmt.Sprintf(format, args...))
	}
	// apply is what every member does on applying a command.
	grant := func(id, ttl int64) {
		err := tbl.Grant(id, ttl)
		if err == nil {
			leader.Renew(id, ttl, 1)
			follower.Renew(id, ttl, 1)
		}
		logf("grant %d ttl %d: %v", id, ttl, err)
	}
	renew := func(id int64) {
		ttl, n, ok := tbl.Renew(id)
		if ok {
			leader.Renew(id, ttl, n)
			follower.Renew(id, ttl, n)
		}
		logf("renew %d: found %v", id, ok)
	}
	due := func(who string, d *Deadlines) []int64 {
		var ids []int64
		var shown []string
		for _, e := range d.Due(250*time.Millisecond, 2*time.Second, 10) {
			ids = append(ids, e.ID)
			shown = append(shown, fmt.Sprintf("%d@%d", e.ID, e.Renewals))
		}
		logf("%s due (id@renewals): %v", who, shown)
		return ids
	}
	revoke := func(ids ...int64) {
		for _, id := range ids {
			keys, err := tbl.Revoke(id)
			leader.Forget(id)
			follower.Forget(id)
			logf("revoke %d: keys %v %v", id, keys, err)
		}
	}
	grant(1, 10)
	grant(2, 5)
	grant(1, 7)
	tbl.Track([]mvcc.Event{
		{Type: mvcc.EventPut, KV: kv("a", 1)},
		{Type: mvcc.EventPut, KV: kv("b", 1)},
		{Type: mvcc.EventPut, KV: kv("c", 2)},
		{Type: mvcc.EventPut, KV: kv("b", 2), PrevKV: kv("b", 1)}, // b moves to lease 2
		{Type: mvcc.EventDelete, KV: kv("a", 0), PrevKV: kv("a", 1)},
		{Type: mvcc.EventPut, KV: kv("a", 1)},
	})
	for _, id := range tbl.IDs() {
		ttl, keys, _ := tbl.Get(id)
		logf("lease %d ttl %d keys %v", id, ttl, keys)
	}
	now = now.Add(4 * time.Second)
	renew(2)
	now = now.Add(5 * time.Second)
	due("leader", leader) // lease 2 renewed at 4 s: due at 9.25 s, not yet
	now = now.Add(500 * time.Millisecond)
	due("leader", leader)
	due("leader", leader) // already proposed: not again before the retry time
	// The leader dies before its revoke commits; the follower takes over
	// with the deadlines it applied: lease 1 (10 s from 0) is due now too,
	// after lease 2 (earliest deadline first).
	now = now.Add(time.Second)
	revoke(due("follower", follower)...)
	renew(2)
	logf("exists 1: %v, 2: %v", tbl.Exists(1), tbl.Exists(2))
	left, ok := follower.Remaining(1)
	logf("remaining 1: %v %v", left, ok)

	want := `
t=0s   grant 1 ttl 10: <nil>
t=0s   grant 2 ttl 5: <nil>
t=0s   grant 1 ttl 7: etcdserver: lease already exists
t=0s   lease 1 ttl 10 keys [a]
t=0s   lease 2 ttl 5 keys [b c]
t=4s   renew 2: found true
t=9s   leader due (id@renewals): []
t=9.5s leader due (id@renewals): [2@2]
t=9.5s leader due (id@renewals): []
t=10.5s follower due (id@renewals): [2@2 1@1]
t=10.5s revoke 2: keys [b c] <nil>
t=10.5s revoke 1: keys [a] <nil>
t=10.5s renew 2: found false
t=10.5s exists 1: false, 2: false
t=10.5s remaining 1: 0s false`
	if got := "\n" + strings.Join(out, "\n"); got != want {
		t.Fatalf("trace differs:\n got:%s\nwant:%s", got, want)
	}
}

func TestEncodeDecode(t *testing.T) {
	tbl := NewTable()
	for _, l := range []struct{ id, ttl int64 }{{5, 60}, {-3, 2}, {1 << 62, 9_000_000_000}} {
		if err := tbl.Grant(l.id, l.ttl); err != nil {
			t.Fatal(err)
		}
	}
	tbl.Attach(5, []byte("k"))
	tbl.Renew(5)
	tbl.Renew(5)
	got, err := Decode(tbl.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.IDs(), tbl.IDs()) {
		t.Fatalf("ids %v, want %v", got.IDs(), tbl.IDs())
	}
	for _, id := range tbl.IDs() {
		a, _, _ := tbl.Get(id)
		b, _, _ := got.Get(id)
		if a != b {
			t.Fatalf("lease %d: ttl %d, want %d", id, b, a)
		}
		ra, _ := tbl.Renewals(id)
		rb, _ := got.Renewals(id)
		if ra != rb {
			t.Fatalf("lease %d: renewals %d, want %d", id, rb, ra)
		}
	}
	if r, _ := got.Renewals(5); r != 3 {
		t.Fatalf("lease 5: renewals %d, want 3 (grant and two renewals)", r)
	}
	// The encoding before renewal counts: every count restarts at 1.
	var old []byte
	old = binary.AppendUvarint(old, 1)
	old = binary.AppendVarint(old, 5)
	old = binary.AppendVarint(old, 60)
	if legacy, err := DecodeWithoutRenewals(old); err != nil || !legacy.Exists(5) {
		t.Fatalf("legacy decode: %v", err)
	} else if r, _ := legacy.Renewals(5); r != 1 {
		t.Fatalf("legacy decode: renewals %d, want 1", r)
	}
	if _, keys, _ := got.Get(5); len(keys) != 0 {
		t.Fatal("attachments are rebuilt from the store, not encoded")
	}
	c := tbl.Clone()
	tbl.Attach(5, []byte("other"))
	if _, keys, _ := c.Get(5); !slices.Equal(keys, []string{"k"}) {
		t.Fatalf("clone shares attachments: %v", keys)
	}
	for _, bad := range [][]byte{nil, {5}, append(tbl.Encode(nil), 0)} {
		if _, err := Decode(bad); !errors.Is(err, ErrBadState) {
			t.Fatalf("Decode(%x): %v", bad, err)
		}
	}
}

// A snapshot's record of the time each lease had left restarts a member's
// clock from there, never beyond the TTL; leases it does not name restart
// at their full TTL.
func TestRemaindersRestartTheClock(t *testing.T) {
	now := time.Unix(100, 0)
	clock := func() time.Time { return now }
	tbl := NewTable()
	for _, id := range []int64{1, 2, 3} {
		if err := tbl.Grant(id, 60); err != nil {
			t.Fatal(err)
		}
	}
	src := NewDeadlines(clock)
	src.Renew(1, 60, 1)
	src.Renew(2, 60, 1)
	now = now.Add(45*time.Second + 300*time.Microsecond)
	src.Renew(2, 60, 2)
	rem, err := DecodeRemainders(EncodeRemainders(nil, src.Remainders()))
	if err != nil {
		t.Fatal(err)
	}
	// Lease 1: 14.9997 s left, rounded up to the millisecond.
	if rem[1] != 15*time.Second || rem[2] != 60*time.Second || len(rem) != 2 {
		t.Fatalf("remainders %v", rem)
	}
	rem[2] = 90 * time.Second // more than the TTL: capped
	dst := NewDeadlines(clock)
	now = now.Add(time.Hour) // restored much later: counted from the restore
	dst.Reset(tbl, rem)
	for id, want := range map[int64]time.Duration{1: 15 * time.Second, 2: 60 * time.Second, 3: 60 * time.Second} {
		if got, ok := dst.Remaining(id); !ok || got != want {
			t.Fatalf("lease %d: %v left, want %v", id, got, want)
		}
	}
	for _, bad := range [][]byte{nil, {1}, {1, 2}, append(EncodeRemainders(nil, rem), 0)} {
		if _, err := DecodeRemainders(bad); !errors.Is(err, ErrBadState) {
			t.Fatalf("DecodeRemainders(%x): %v", bad, err)
		}
	}
}
