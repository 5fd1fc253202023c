package lease

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Deadlines is a member's clock of lease deadlines (not replicated; see the
// package doc). Safe for concurrent use.
type Deadlines struct {
	now func() time.Time

	mu      sync.Mutex // protects the fields below
	at      map[int64]deadline
	revoked map[int64]time.Time // when the leader last proposed the lease's expiry
}

// deadline is when a lease runs out, and the renewal count (Table) of the
// grant or renewal that set it.
type deadline struct {
	at       time.Time
	renewals uint64
}

// Expiry is a lease found past its deadline, with the renewal count that
// deadline came from: the leader's expiry proposal carries both, and apply
// keeps the lease if its count moved since.
type Expiry struct {
	ID       int64
	Renewals uint64
}

// NewDeadlines returns an empty clock reading time from now (time.Now in
// production, a fake in tests).
func NewDeadlines(now func() time.Time) *Deadlines {
	return &Deadlines{now: now, at: map[int64]deadline{}, revoked: map[int64]time.Time{}}
}

// Renew sets lease id's deadline to now + ttl seconds (on applying its
// grant or a renewal, which left the lease's renewal count at renewals).
func (d *Deadlines) Renew(id, ttl int64, renewals uint64) {
	d.mu.Lock()
	d.at[id] = deadline{d.now().Add(time.Duration(ttl) * time.Second), renewals}
	delete(d.revoked, id)
	d.mu.Unlock()
}

// Forget drops lease id (revoked).
func (d *Deadlines) Forget(id int64) {
	d.mu.Lock()
	delete(d.at, id)
	delete(d.revoked, id)
	d.mu.Unlock()
}

// Remaining returns the time left before lease id's deadline (negative once
// past it).
func (d *Deadlines) Remaining(id int64) (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.at[id]
	if !ok {
		return 0, false
	}
	return at.at.Sub(d.now()), true
}

// Due returns up to max leases whose deadline passed more than slack ago,
// earliest first, leaving out those returned less than retry ago: the
// leader proposes their revocation, and proposes again if a revoke got lost.
func (d *Deadlines) Due(slack, retry time.Duration, max int) []Expiry {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	type due struct {
		Expiry
		at time.Time
	}
	var ds []due
	for id, dl := range d.at {
		if now.Sub(dl.at) < slack {
			continue
		}
		if last, ok := d.revoked[id]; ok && now.Sub(last) < retry {
			continue
		}
		ds = append(ds, due{Expiry{id, dl.renewals}, dl.at})
	}
	slices.SortFunc(ds, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(ds) > max {
		ds = ds[:max]
	}
	out := make([]Expiry, len(ds))
	for i, x := range ds {
		out[i] = x.Expiry
		d.revoked[x.ID] = now
	}
	return out
}

// Reset restarts the clock for the leases of t after a snapshot replaced
// the state: a lease in remaining gets now + that (at most its TTL), any
// other now + its TTL (the renewals the snapshot covers are unknown here).
// remaining is what Remainders recorded when the snapshot was made, on this
// member or another: deadlines that late are never early, and tighter than
// a full TTL.
func (d *Deadlines) Reset(t *Table, remaining map[int64]time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	clear(d.at)
	clear(d.revoked)
	for id, l := range t.leases {
		left := time.Duration(l.TTL) * time.Second
		if r, ok := remaining[id]; ok && r < left {
			left = max(r, 0)
		}
		d.at[id] = deadline{now.Add(left), l.Renewals}
	}
}

// Remainders returns the time left before each lease's deadline (0 once
// past it), for a snapshot: see Reset.
func (d *Deadlines) Remainders() map[int64]time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	out := make(map[int64]time.Duration, len(d.at))
	for id, dl := range d.at {
		out[id] = max(dl.at.Sub(now), 0)
	}
	return out
}

// EncodeRemainders appends remaining (Remainders) to dst: a count, then per
// lease by ascending ID its id (varint) and milliseconds left (uvarint,
// rounded up).
func EncodeRemainders(dst []byte, remaining map[int64]time.Duration) []byte {
	ids := slices.Sorted(maps.Keys(remaining))
	dst = binary.AppendUvarint(dst, uint64(len(ids)))
	for _, id := range ids {
		dst = binary.AppendVarint(dst, id)
		dst = binary.AppendUvarint(dst, uint64((remaining[id]+time.Millisecond-1)/time.Millisecond))
	}
	return dst
}

// DecodeRemainders reads what EncodeRemainders wrote.
func DecodeRemainders(b []byte) (map[int64]time.Duration, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: lease clock: bad count", ErrBadState)
	}
	b = b[k:]
	out := make(map[int64]time.Duration, n)
	for i := uint64(0); i < n; i++ {
		id, k1 := binary.Varint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("%w: lease clock %d: bad id", ErrBadState, i)
		}
		b = b[k1:]
		ms, k2 := binary.Uvarint(b)
		if k2 <= 0 || ms > uint64(MaxTTL)*1000 {
			return nil, fmt.Errorf("%w: lease clock %x: bad time left", ErrBadState, id)
		}
		b = b[k2:]
		out[id] = time.Duration(ms) * time.Millisecond
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: lease clock: %d trailing bytes", ErrBadState, len(b))
	}
	return out, nil
}
