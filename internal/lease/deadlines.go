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
	at      map[int64]time.Time
	revoked map[int64]time.Time // when the leader last proposed the lease's expiry
}

// NewDeadlines returns an empty clock reading time from now (time.Now in
// production, a fake in tests).
func NewDeadlines(now func() time.Time) *Deadlines {
	return &Deadlines{now: now, at: map[int64]time.Time{}, revoked: map[int64]time.Time{}}
}

// Renew sets lease id's deadline to now + ttl seconds (on applying its
// grant or a renewal).
func (d *Deadlines) Renew(id, ttl int64) {
	d.mu.Lock()
	d.at[id] = d.now().Add(time.Duration(ttl) * time.Second)
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
	return at.Sub(d.now()), true
}

// Due returns up to max leases whose deadline passed more than slack ago,
// earliest first, leaving out those returned less than retry ago: the
// leader proposes their revocation, and proposes again if a revoke got lost.
func (d *Deadlines) Due(slack, retry time.Duration, max int) []int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	type due struct {
		id int64
		at time.Time
	}
	var ds []due
	for id, at := range d.at {
		if now.Sub(at) < slack {
			continue
		}
		if last, ok := d.revoked[id]; ok && now.Sub(last) < retry {
			continue
		}
		ds = append(ds, due{id, at})
	}
	slices.SortFunc(ds, func(a, b due) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	if len(ds) > max {
		ds = ds[:max]
	}
	ids := make([]int64, len(ds))
	for i, x := range ds {
		ids[i] = x.id
		d.revoked[x.id] = now
	}
	return ids
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
		d.at[id] = now.Add(time.Duration(l.TTL) * time.Second)
	}
}
