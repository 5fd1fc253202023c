// Package lease holds the replicated lease table and the member-local
// clock of lease deadlines.
//
// # What it owns
//
// Table is part of the replicated state: which leases exist, their granted
// TTL, how many times each was granted or renewed, and which keys are
// attached to each. It changes only on apply (Grant, Renew, Revoke, Track),
// deterministically, and goes into snapshots (Encode, Decode).
//
// The renewal count makes expiry safe against a keepalive in flight: the
// leader proposes an expiry with the count it saw when it found the lease
// past its deadline, and apply keeps a lease whose count moved since (a
// renewal committed between the decision and the expiry).
//
// Deadlines is not replicated: every member sets a lease's deadline to
// "now + TTL" when it applies the lease's grant or renewal, with its own
// monotonic clock. Only the leader acts on them (Expired), proposing a
// revoke through the log; followers keep theirs so that a new leader starts
// from the renewals it applied instead of resetting every TTL (etcd's
// behaviour on a leader change).
//
// # Entry points
//
//	t := lease.NewTable()
//	t.Grant(id, ttl) / t.Renew(id) / t.Revoke(id) / t.Track(events) // on apply
//	d := lease.NewDeadlines(now)
//	d.Renew(id, ttl, renewals) / d.Forget(id) / d.Due(...)          // member-local
package lease

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// Limits, as etcd's.
const (
	// MaxTTL is the largest TTL a grant may ask for, in seconds.
	MaxTTL = 9_000_000_000
)

// Errors, with etcd's texts (the API maps them to etcd's gRPC codes).
var (
	ErrNotFound    = mvcc.ErrLeaseNotFound // "etcdserver: requested lease not found"
	ErrExists      = errors.New("etcdserver: lease already exists")
	ErrTTLTooLarge = errors.New("etcdserver: too large lease TTL")
	ErrBadState    = errors.New("lease: malformed lease table")
)

// Lease is one lease of the table.
type Lease struct {
	ID       int64
	TTL      int64  // granted, in seconds
	Renewals uint64 // grants and renewals applied: 1 after the grant
	keys     map[string]struct{}
}

// Table is the replicated lease table. It is not safe for concurrent use;
// the server guards it with the store's lock.
type Table struct {
	leases map[int64]*Lease
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{leases: map[int64]*Lease{}} }

// Exists reports whether lease id exists (an mvcc.LeaseChecker).
func (t *Table) Exists(id int64) bool { _, ok := t.leases[id]; return ok }

// Grant creates lease id with ttl seconds.
func (t *Table) Grant(id, ttl int64) error {
	if id == 0 {
		return fmt.Errorf("lease: grant of lease 0")
	}
	if _, ok := t.leases[id]; ok {
		return ErrExists
	}
	t.leases[id] = &Lease{ID: id, TTL: ttl, Renewals: 1, keys: map[string]struct{}{}}
	return nil
}

// Renew counts a renewal of lease id and returns its TTL and renewal count.
func (t *Table) Renew(id int64) (ttl int64, renewals uint64, ok bool) {
	l, ok := t.leases[id]
	if !ok {
		return 0, 0, false
	}
	l.Renewals++
	return l.TTL, l.Renewals, true
}

// Renewals returns lease id's renewal count (see Lease.Renewals).
func (t *Table) Renewals(id int64) (uint64, bool) {
	l, ok := t.leases[id]
	if !ok {
		return 0, false
	}
	return l.Renewals, true
}

// Revoke removes lease id and returns its keys, sorted, for the caller to
// delete in one revision.
func (t *Table) Revoke(id int64) ([]string, error) {
	l, ok := t.leases[id]
	if !ok {
		return nil, ErrNotFound
	}
	delete(t.leases, id)
	return sortedKeys(l.keys), nil
}

// Get returns lease id's granted TTL and attached keys (sorted).
func (t *Table) Get(id int64) (ttl int64, keys []string, ok bool) {
	l, ok := t.leases[id]
	if !ok {
		return 0, nil, false
	}
	return l.TTL, sortedKeys(l.keys), true
}

// IDs returns every lease ID, ascending.
func (t *Table) IDs() []int64 {
	ids := make([]int64, 0, len(t.leases))
	for id := range t.leases {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Len is the number of leases.
func (t *Table) Len() int { return len(t.leases) }

// Track keeps key attachments in step with applied events: a key leaves
// the lease it had (PrevKV) and joins the one it has now (a put's KV).
// Events must carry PrevKV, as mvcc.Store.Txn's do.
func (t *Table) Track(evs []mvcc.Event) {
	for i := range evs {
		ev := &evs[i]
		if p := ev.PrevKV; p != nil && p.Lease != 0 {
			if l := t.leases[p.Lease]; l != nil {
				delete(l.keys, string(p.Key))
			}
		}
		if ev.Type == mvcc.EventPut && ev.KV.Lease != 0 {
			if l := t.leases[ev.KV.Lease]; l != nil {
				l.keys[string(ev.KV.Key)] = struct{}{}
			}
		}
	}
}

// Attach records that key is attached to lease id (used when rebuilding
// attachments from a restored store).
func (t *Table) Attach(id int64, key []byte) {
	if l := t.leases[id]; l != nil {
		l.keys[string(key)] = struct{}{}
	}
}

// Clone returns an independent copy (for a snapshot taken off the apply path).
func (t *Table) Clone() *Table {
	c := &Table{leases: make(map[int64]*Lease, len(t.leases))}
	for id, l := range t.leases {
		c.leases[id] = &Lease{ID: id, TTL: l.TTL, Renewals: l.Renewals, keys: maps.Clone(l.keys)}
	}
	return c
}

// Encode appends the table's replicated content (IDs, TTLs and renewal
// counts; attachments are rebuilt from the store on restore) to dst:
//
//	count uvarint, then per lease, by ascending ID:
//	id varint, ttl varint, renewals uvarint
func (t *Table) Encode(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t.leases)))
	for _, id := range t.IDs() {
		l := t.leases[id]
		dst = binary.AppendVarint(dst, id)
		dst = binary.AppendVarint(dst, l.TTL)
		dst = binary.AppendUvarint(dst, l.Renewals)
	}
	return dst
}

// Decode reads a table Encode wrote.
func Decode(b []byte) (*Table, error) { return decode(b, true) }

// DecodeWithoutRenewals reads the older encoding that had no renewal
// counts (state snapshots before version 4); every count starts at 1, as
// on every member that restores the same snapshot.
func DecodeWithoutRenewals(b []byte) (*Table, error) { return decode(b, false) }

func decode(b []byte, withRenewals bool) (*Table, error) {
	t := NewTable()
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: bad count", ErrBadState)
	}
	b = b[k:]
	for i := uint64(0); i < n; i++ {
		id, k1 := binary.Varint(b)
		if k1 <= 0 {
			return nil, fmt.Errorf("%w: lease %d: bad id", ErrBadState, i)
		}
		b = b[k1:]
		ttl, k2 := binary.Varint(b)
		if k2 <= 0 {
			return nil, fmt.Errorf("%w: lease %d: bad ttl", ErrBadState, i)
		}
		b = b[k2:]
		if err := t.Grant(id, ttl); err != nil {
			return nil, fmt.Errorf("%w: lease %x: %v", ErrBadState, id, err)
		}
		if withRenewals {
			r, k3 := binary.Uvarint(b)
			if k3 <= 0 || r == 0 {
				return nil, fmt.Errorf("%w: lease %x: bad renewal count", ErrBadState, id)
			}
			b = b[k3:]
			t.leases[id].Renewals = r
		}
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadState, len(b))
	}
	return t, nil
}

func sortedKeys(m map[string]struct{}) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
