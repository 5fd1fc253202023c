package command

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// Version is the format version Encode writes and the only one Decode accepts.
const Version = 1

// Kind says what a Command does.
type Kind uint8

// Command kinds. 0 is never valid; new kinds take new numbers and never reuse one.
const (
	KindTxn     Kind = 1 // run Txn on the MVCC store
	KindCompact Kind = 2 // compact the MVCC store at CompactRev
	// KindMemberAttrs records a member's name and client URLs (published by
	// each member after it starts).
	KindMemberAttrs Kind = 3
	// KindLeaseGrant creates lease Lease.ID with Lease.TTL seconds.
	KindLeaseGrant Kind = 4
	// KindLeaseRevoke deletes lease Lease.ID and all its keys in one revision
	// (a client's revoke, or the leader's when the lease expired).
	KindLeaseRevoke Kind = 5
	// KindLeaseRenew restarts the TTL of lease Lease.ID (a keepalive).
	// Superseded by KindLeaseRenewBatch; still applied.
	KindLeaseRenew Kind = 6
	// KindLeaseExpire revokes the expired leases Expired (proposed by the
	// leader), each with its keys in one revision of its own; a lease that
	// no longer exists is skipped. Superseded by KindLeaseExpireUnrenewed
	// (it would revoke a lease renewed after the leader's decision); still
	// applied, never proposed.
	KindLeaseExpire Kind = 7
	// KindGuardedTxn runs Txn only if Fence.Token is the fencing token of
	// the current holder of lock Fence.Lock (see Fence).
	KindGuardedTxn Kind = 8
	// KindCreateSequential puts Sequential.Prefix followed by the write's
	// revision as 20 zero-padded digits.
	KindCreateSequential Kind = 9
	// KindLeaseRenewBatch restarts the TTL of every lease in Renew (the
	// keepalives that arrived while the previous batch was in flight).
	KindLeaseRenewBatch Kind = 10
	// KindAlarm activates or deactivates Alarm.Type for Alarm.MemberID.
	KindAlarm Kind = 11
	// KindLeaseExpireUnrenewed revokes each lease of Expire whose renewal
	// count is still the one the leader saw when it found the lease past its
	// deadline, each with its keys in one revision of its own. A lease
	// renewed since (a keepalive committed between the decision and this
	// entry) or no longer there is skipped.
	KindLeaseExpireUnrenewed Kind = 12
	// Reserved for later: membership changes, ...
)

func (k Kind) String() string {
	switch k {
	case KindTxn:
		return "txn"
	case KindCompact:
		return "compact"
	case KindMemberAttrs:
		return "member-attrs"
	case KindLeaseGrant:
		return "lease-grant"
	case KindLeaseRevoke:
		return "lease-revoke"
	case KindLeaseRenew:
		return "lease-renew"
	case KindLeaseExpire:
		return "lease-expire"
	case KindGuardedTxn:
		return "guarded-txn"
	case KindCreateSequential:
		return "create-sequential"
	case KindLeaseRenewBatch:
		return "lease-renew-batch"
	case KindAlarm:
		return "alarm"
	case KindLeaseExpireUnrenewed:
		return "lease-expire-unrenewed"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Command is one replicated state-machine command.
type Command struct {
	ID         uint64           // request id chosen by the proposer, to match the waiting caller
	Kind       Kind             //
	Txn        *mvcc.TxnRequest // KindTxn
	CompactRev int64            // KindCompact
	Member     *MemberAttrs     // KindMemberAttrs
	Lease      *LeaseOp         // KindLeaseGrant, KindLeaseRevoke, KindLeaseRenew
	Expired    []int64          // KindLeaseExpire
	Expire     []ExpiredLease   // KindLeaseExpireUnrenewed
	Renew      []int64          // KindLeaseRenewBatch
	Alarm      *AlarmOp         // KindAlarm
	Fence      *Fence           // KindGuardedTxn (with Txn)
	Sequential *Sequential      // KindCreateSequential
}

// ExpiredLease is a lease the leader found past its deadline, with the
// renewal count (lease.Table) it had then.
type ExpiredLease struct {
	ID       int64
	Renewals uint64
}

// AlarmOp raises (Activate) or clears an alarm of a member.
type AlarmOp struct {
	Activate bool
	MemberID uint64
	Type     string // "NOSPACE"
}

// Fence names a lock and the fencing token a writer presents: the create
// revision of its key under the lock (Lock + "/..."). The holder of a lock
// is the key under it with the lowest create revision, as clientv3's
// Mutex and etcd's Lock service decide.
type Fence struct {
	Lock  string
	Token int64
}

// Sequential is a sequential create.
type Sequential struct {
	Prefix []byte
	Value  []byte
	Lease  int64
}

// LeaseOp names a lease and, for a grant, its TTL in seconds.
type LeaseOp struct {
	ID  int64
	TTL int64 // KindLeaseGrant only
	// Expired marks a revoke the leader proposed because the lease's TTL ran out.
	Expired bool
}

// MemberAttrs are the attributes a member publishes about itself.
type MemberAttrs struct {
	ID         uint64
	Name       string
	ClientURLs []string
}

// Decode errors; every error Decode returns wraps ErrMalformed and one of the more specific ones where they apply.
var (
	ErrMalformed      = errors.New("command: malformed command")
	ErrUnknownVersion = errors.New("command: unknown format version")
	ErrUnknownKind    = errors.New("command: unknown command kind")
	ErrTruncated      = errors.New("command: truncated")
	ErrTrailingBytes  = errors.New("command: trailing bytes")
)

// maxDepth bounds txn nesting on decode so that hostile input cannot exhaust the stack.
const maxDepth = 1024

// Field-presence flags (see doc.go).
const (
	opRange  = 1 << 0
	opPut    = 1 << 1
	opDelete = 1 << 2
	opTxn    = 1 << 3

	rangeKeysOnly   = 1 << 0
	rangeCountOnly  = 1 << 1
	rangeLimit      = 1 << 2
	rangeRevision   = 1 << 3
	rangeSortOrder  = 1 << 4
	rangeSortTarget = 1 << 5
	rangeFilters    = 1 << 6

	putPrevKV      = 1 << 0
	putIgnoreValue = 1 << 1
	putIgnoreLease = 1 << 2
	putLease       = 1 << 3

	delPrevKV = 1 << 0

	cmpVersion = 1 << 0
	cmpCreate  = 1 << 1
	cmpMod     = 1 << 2
	cmpLease   = 1 << 3
)

// Encode returns the binary form of c.
func Encode(c *Command) []byte { return AppendEncode(nil, c) }

// AppendEncode appends the binary form of c to dst and returns the extended slice.
func AppendEncode(dst []byte, c *Command) []byte {
	dst = append(dst, Version, byte(c.Kind))
	dst = binary.AppendUvarint(dst, c.ID)
	switch c.Kind {
	case KindTxn:
		dst = appendOptTxn(dst, c.Txn)
	case KindGuardedTxn:
		f := c.Fence
		if f == nil {
			f = &Fence{}
		}
		dst = appendBytes(dst, []byte(f.Lock))
		dst = binary.AppendVarint(dst, f.Token)
		dst = appendOptTxn(dst, c.Txn)
	case KindCreateSequential:
		q := c.Sequential
		if q == nil {
			q = &Sequential{}
		}
		dst = appendBytes(dst, q.Prefix)
		dst = appendBytes(dst, q.Value)
		dst = binary.AppendVarint(dst, q.Lease)
	case KindCompact:
		dst = binary.AppendVarint(dst, c.CompactRev)
	case KindMemberAttrs:
		m := c.Member
		if m == nil {
			m = &MemberAttrs{}
		}
		dst = binary.AppendUvarint(dst, m.ID)
		dst = appendBytes(dst, []byte(m.Name))
		dst = appendCount(dst, len(m.ClientURLs), false)
		for _, u := range m.ClientURLs {
			dst = appendBytes(dst, []byte(u))
		}
	case KindLeaseGrant, KindLeaseRevoke, KindLeaseRenew:
		l := c.Lease
		if l == nil {
			l = &LeaseOp{}
		}
		dst = binary.AppendVarint(dst, l.ID)
		dst = binary.AppendVarint(dst, l.TTL)
		expired := byte(0)
		if l.Expired {
			expired = 1
		}
		dst = append(dst, expired)
	case KindLeaseExpire:
		dst = appendIDs(dst, c.Expired)
	case KindLeaseRenewBatch:
		dst = appendIDs(dst, c.Renew)
	case KindLeaseExpireUnrenewed:
		dst = appendCount(dst, len(c.Expire), false)
		for _, e := range c.Expire {
			dst = binary.AppendVarint(dst, e.ID)
			dst = binary.AppendUvarint(dst, e.Renewals)
		}
	case KindAlarm:
		a := c.Alarm
		if a == nil {
			a = &AlarmOp{}
		}
		act := byte(0)
		if a.Activate {
			act = 1
		}
		dst = append(dst, act)
		dst = binary.AppendUvarint(dst, a.MemberID)
		dst = appendBytes(dst, []byte(a.Type))
	}
	return dst
}

// appendBytes writes nil as 0 and any other slice as len+1 then the bytes, keeping nil and empty apart.
func appendBytes(dst, b []byte) []byte {
	if b == nil {
		return append(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(b))+1)
	return append(dst, b...)
}

// appendCount writes the length of a list the same way (0: nil list).
func appendCount(dst []byte, n int, isNil bool) []byte {
	if isNil {
		return append(dst, 0)
	}
	return binary.AppendUvarint(dst, uint64(n)+1)
}

func appendIDs(dst []byte, ids []int64) []byte {
	dst = appendCount(dst, len(ids), false)
	for _, id := range ids {
		dst = binary.AppendVarint(dst, id)
	}
	return dst
}

// appendOptTxn appends a presence byte and, when present, the txn.
func appendOptTxn(dst []byte, t *mvcc.TxnRequest) []byte {
	if t == nil {
		return append(dst, 0)
	}
	return appendTxn(append(dst, 1), t)
}

func appendTxn(dst []byte, t *mvcc.TxnRequest) []byte {
	dst = appendCount(dst, len(t.Compare), t.Compare == nil)
	for i := range t.Compare {
		dst = appendCompare(dst, &t.Compare[i])
	}
	dst = appendOps(dst, t.Success)
	return appendOps(dst, t.Failure)
}

func appendCompare(dst []byte, c *mvcc.Compare) []byte {
	var f byte
	if c.Version != 0 {
		f |= cmpVersion
	}
	if c.CreateRevision != 0 {
		f |= cmpCreate
	}
	if c.ModRevision != 0 {
		f |= cmpMod
	}
	if c.Lease != 0 {
		f |= cmpLease
	}
	dst = append(dst, f)
	dst = binary.AppendVarint(dst, int64(c.Target))
	dst = binary.AppendVarint(dst, int64(c.Result))
	dst = appendBytes(dst, c.Key)
	dst = appendBytes(dst, c.End)
	dst = appendBytes(dst, c.Value)
	if f&cmpVersion != 0 {
		dst = binary.AppendVarint(dst, c.Version)
	}
	if f&cmpCreate != 0 {
		dst = binary.AppendVarint(dst, c.CreateRevision)
	}
	if f&cmpMod != 0 {
		dst = binary.AppendVarint(dst, c.ModRevision)
	}
	if f&cmpLease != 0 {
		dst = binary.AppendVarint(dst, c.Lease)
	}
	return dst
}

func appendOps(dst []byte, ops []mvcc.Op) []byte {
	dst = appendCount(dst, len(ops), ops == nil)
	for i := range ops {
		dst = appendOp(dst, &ops[i])
	}
	return dst
}

func appendOp(dst []byte, op *mvcc.Op) []byte {
	var f byte
	if op.Range != nil {
		f |= opRange
	}
	if op.Put != nil {
		f |= opPut
	}
	if op.Delete != nil {
		f |= opDelete
	}
	if op.Txn != nil {
		f |= opTxn
	}
	dst = append(dst, f)
	if r := op.Range; r != nil {
		dst = appendRange(dst, r)
	}
	if p := op.Put; p != nil {
		var pf byte
		if p.PrevKV {
			pf |= putPrevKV
		}
		if p.IgnoreValue {
			pf |= putIgnoreValue
		}
		if p.IgnoreLease {
			pf |= putIgnoreLease
		}
		if p.Lease != 0 {
			pf |= putLease
		}
		dst = append(dst, pf)
		dst = appendBytes(dst, p.Key)
		dst = appendBytes(dst, p.Value)
		if p.Lease != 0 {
			dst = binary.AppendVarint(dst, p.Lease)
		}
	}
	if d := op.Delete; d != nil {
		var df byte
		if d.PrevKV {
			df |= delPrevKV
		}
		dst = append(dst, df)
		dst = appendBytes(dst, d.Key)
		dst = appendBytes(dst, d.End)
	}
	if t := op.Txn; t != nil {
		dst = appendTxn(dst, t)
	}
	return dst
}

func appendRange(dst []byte, r *mvcc.RangeRequest) []byte {
	var f byte
	if r.KeysOnly {
		f |= rangeKeysOnly
	}
	if r.CountOnly {
		f |= rangeCountOnly
	}
	if r.Limit != 0 {
		f |= rangeLimit
	}
	if r.Revision != 0 {
		f |= rangeRevision
	}
	if r.SortOrder != 0 {
		f |= rangeSortOrder
	}
	if r.SortTarget != 0 {
		f |= rangeSortTarget
	}
	if r.MinModRevision != 0 || r.MaxModRevision != 0 || r.MinCreateRevision != 0 || r.MaxCreateRevision != 0 {
		f |= rangeFilters
	}
	dst = append(dst, f)
	dst = appendBytes(dst, r.Key)
	dst = appendBytes(dst, r.End)
	if f&rangeLimit != 0 {
		dst = binary.AppendVarint(dst, r.Limit)
	}
	if f&rangeRevision != 0 {
		dst = binary.AppendVarint(dst, r.Revision)
	}
	if f&rangeSortOrder != 0 {
		dst = binary.AppendVarint(dst, int64(r.SortOrder))
	}
	if f&rangeSortTarget != 0 {
		dst = binary.AppendVarint(dst, int64(r.SortTarget))
	}
	if f&rangeFilters != 0 {
		dst = binary.AppendVarint(dst, r.MinModRevision)
		dst = binary.AppendVarint(dst, r.MaxModRevision)
		dst = binary.AppendVarint(dst, r.MinCreateRevision)
		dst = binary.AppendVarint(dst, r.MaxCreateRevision)
	}
	return dst
}
