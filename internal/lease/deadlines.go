package lease

import (
	"cmp"
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

// Reset restarts every lease of t at now + its TTL (after a snapshot
// replaced the state: the renewals it covers are unknown here).
func (d *Deadlines) Reset(t *Table) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	clear(d.at)
	clear(d.revoked)
	for id, l := range t.leases {
		d.at[id] = deadline{now.Add(time.Duration(l.TTL) * time.Second), l.Renewals}
	}
}
