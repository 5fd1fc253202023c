package command

import (
	"encoding/binary"
	"fmt"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// Decode parses a command written by Encode. It is strict: an unknown version or kind, unknown flag bits,
// truncation or trailing bytes are errors (wrapping ErrMalformed), and it never panics. The byte slices of the
// result do not alias b: they share one private copy of it.
func Decode(b []byte) (*Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, ErrTruncated)
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: %w %d", ErrMalformed, ErrUnknownVersion, b[0])
	}
	d := decoder{buf: b[2:]}
	c := &Command{Kind: Kind(b[1])}
	c.ID = d.uvarint()
	switch c.Kind {
	case KindTxn:
		c.Txn = d.optTxn()
	case KindGuardedTxn:
		c.Fence = &Fence{Lock: d.str(), Token: d.varint()}
		c.Txn = d.optTxn()
	case KindCreateSequential:
		d.buf = append([]byte(nil), d.buf...) // one copy; the slices point into it
		c.Sequential = &Sequential{Prefix: d.bytes(), Value: d.bytes(), Lease: d.varint()}
	case KindCompact:
		c.CompactRev = d.varint()
	case KindMemberAttrs:
		m := &MemberAttrs{ID: d.uvarint(), Name: d.str()}
		n := d.count()
		if n < 0 && d.err == nil {
			d.fail("member client URL list is not encoded as a list")
		}
		for i := 0; i < n && d.err == nil; i++ {
			m.ClientURLs = append(m.ClientURLs, d.str())
		}
		c.Member = m
	case KindLeaseGrant, KindLeaseRevoke, KindLeaseRenew:
		c.Lease = &LeaseOp{ID: d.varint(), TTL: d.varint(), Expired: d.flags(1, "lease op") == 1}
	case KindLeaseExpire:
		c.Expired = d.ids("expired lease")
	case KindLeaseRenewBatch:
		c.Renew = d.ids("renewed lease")
	case KindLeaseExpireUnrenewed:
		n := d.count()
		if n < 0 && d.err == nil {
			d.fail("expired lease list is not encoded as a list")
		}
		for i := 0; i < n && d.err == nil; i++ {
			c.Expire = append(c.Expire, ExpiredLease{ID: d.varint(), Renewals: d.uvarint()})
		}
	case KindAlarm:
		c.Alarm = &AlarmOp{Activate: d.flags(1, "alarm") == 1, MemberID: d.uvarint(), Type: d.str()}
	default:
		return nil, fmt.Errorf("%w: %w %d", ErrMalformed, ErrUnknownKind, b[1])
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != d.off {
		return nil, fmt.Errorf("%w: %w (%d)", ErrMalformed, ErrTrailingBytes, len(d.buf)-d.off)
	}
	return c, nil
}

type decoder struct {
	buf []byte
	off int
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
	}
}

func (d *decoder) truncated() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %w", ErrMalformed, ErrTruncated)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if d.off >= len(d.buf) {
		d.truncated()
		return 0
	}
	c := d.buf[d.off]
	d.off++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.buf[d.off:])
	if n <= 0 {
		if n == 0 {
			d.truncated()
		} else {
			d.fail("varint overflow")
		}
		return 0
	}
	if n > 1 && d.buf[d.off+n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf[d.off:])
	if n <= 0 {
		if n == 0 {
			d.truncated()
		} else {
			d.fail("varint overflow")
		}
		return 0
	}
	if n > 1 && d.buf[d.off+n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.off += n
	return v
}

func (d *decoder) int() int {
	v := d.varint()
	if int64(int(v)) != v {
		d.fail("enum value %d out of range", v)
		return 0
	}
	return int(v)
}

// bytes reads a nil-or-slice field; the result aliases the decoder's private buffer (capacity clipped).
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return nil
	}
	n--
	if n > uint64(len(d.buf)-d.off) {
		d.truncated()
		return nil
	}
	b := d.buf[d.off : d.off+int(n) : d.off+int(n)]
	d.off += int(n)
	return b
}

// count reads a list length; -1 means a nil list. Every element takes at least one byte, which bounds it.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err != nil || n == 0 {
		return -1
	}
	n--
	if n > uint64(len(d.buf)-d.off) {
		d.truncated()
		return -1
	}
	return int(n)
}

func (d *decoder) flags(allowed byte, what string) byte {
	f := d.byte()
	if f&^allowed != 0 {
		d.fail("unknown %s flags %#x", what, f)
	}
	return f
}

// ids reads a list of lease IDs.
func (d *decoder) ids(what string) []int64 {
	n := d.count()
	if n < 0 && d.err == nil {
		d.fail("%s list is not encoded as a list", what)
	}
	var ids []int64
	for i := 0; i < n && d.err == nil; i++ {
		ids = append(ids, d.varint())
	}
	return ids
}

// optTxn reads a presence byte and, when present, a txn.
func (d *decoder) optTxn() *mvcc.TxnRequest {
	switch d.byte() {
	case 0:
		return nil
	case 1:
		d.buf = append([]byte(nil), d.buf...) // one copy; the request's slices point into it
		return d.txn(0)
	}
	d.fail("bad txn presence byte")
	return nil
}

func (d *decoder) txn(depth int) *mvcc.TxnRequest {
	if depth > maxDepth {
		d.fail("txn nested deeper than %d", maxDepth)
		return nil
	}
	t := &mvcc.TxnRequest{}
	if n := d.count(); n >= 0 {
		t.Compare = make([]mvcc.Compare, n)
		for i := range t.Compare {
			d.compare(&t.Compare[i])
			if d.err != nil {
				return nil
			}
		}
	}
	t.Success = d.ops(depth)
	t.Failure = d.ops(depth)
	if d.err != nil {
		return nil
	}
	return t
}

func (d *decoder) compare(c *mvcc.Compare) {
	f := d.flags(cmpVersion|cmpCreate|cmpMod|cmpLease, "compare")
	c.Target = mvcc.CompareTarget(d.int())
	c.Result = mvcc.CompareResult(d.int())
	c.Key = d.bytes()
	c.End = d.bytes()
	c.Value = d.bytes()
	if f&cmpVersion != 0 {
		c.Version = d.nonZero()
	}
	if f&cmpCreate != 0 {
		c.CreateRevision = d.nonZero()
	}
	if f&cmpMod != 0 {
		c.ModRevision = d.nonZero()
	}
	if f&cmpLease != 0 {
		c.Lease = d.nonZero()
	}
}

// nonZero reads a varint whose presence flag promised a non-zero value (keeping the encoding canonical).
func (d *decoder) nonZero() int64 {
	v := d.varint()
	if v == 0 && d.err == nil {
		d.fail("zero value behind a presence flag")
	}
	return v
}

func (d *decoder) ops(depth int) []mvcc.Op {
	n := d.count()
	if n < 0 {
		return nil
	}
	ops := make([]mvcc.Op, n)
	for i := range ops {
		d.op(&ops[i], depth)
		if d.err != nil {
			return nil
		}
	}
	return ops
}

func (d *decoder) op(op *mvcc.Op, depth int) {
	f := d.flags(opRange|opPut|opDelete|opTxn, "op")
	if f&opRange != 0 {
		op.Range = d.rangeReq()
	}
	if f&opPut != 0 {
		pf := d.flags(putPrevKV|putIgnoreValue|putIgnoreLease|putLease, "put")
		p := &mvcc.PutRequest{
			PrevKV:      pf&putPrevKV != 0,
			IgnoreValue: pf&putIgnoreValue != 0,
			IgnoreLease: pf&putIgnoreLease != 0,
		}
		p.Key = d.bytes()
		p.Value = d.bytes()
		if pf&putLease != 0 {
			p.Lease = d.nonZero()
		}
		op.Put = p
	}
	if f&opDelete != 0 {
		df := d.flags(delPrevKV, "delete")
		op.Delete = &mvcc.DeleteRequest{PrevKV: df&delPrevKV != 0}
		op.Delete.Key = d.bytes()
		op.Delete.End = d.bytes()
	}
	if f&opTxn != 0 {
		op.Txn = d.txn(depth + 1)
	}
}

func (d *decoder) rangeReq() *mvcc.RangeRequest {
	f := d.flags(rangeKeysOnly|rangeCountOnly|rangeLimit|rangeRevision|rangeSortOrder|rangeSortTarget|rangeFilters, "range")
	r := &mvcc.RangeRequest{KeysOnly: f&rangeKeysOnly != 0, CountOnly: f&rangeCountOnly != 0}
	r.Key = d.bytes()
	r.End = d.bytes()
	if f&rangeLimit != 0 {
		r.Limit = d.nonZero()
	}
	if f&rangeRevision != 0 {
		r.Revision = d.nonZero()
	}
	if f&rangeSortOrder != 0 {
		r.SortOrder = mvcc.SortOrder(d.int())
		if r.SortOrder == 0 && d.err == nil {
			d.fail("zero value behind a presence flag")
		}
	}
	if f&rangeSortTarget != 0 {
		r.SortTarget = mvcc.SortTarget(d.int())
		if r.SortTarget == 0 && d.err == nil {
			d.fail("zero value behind a presence flag")
		}
	}
	if f&rangeFilters != 0 {
		r.MinModRevision = d.varint()
		r.MaxModRevision = d.varint()
		r.MinCreateRevision = d.varint()
		r.MaxCreateRevision = d.varint()
		if r.MinModRevision == 0 && r.MaxModRevision == 0 && r.MinCreateRevision == 0 && r.MaxCreateRevision == 0 && d.err == nil {
			d.fail("zero filters behind a presence flag")
		}
	}
	return r
}

// str reads a string; Encode writes strings as present (never nil) byte
// fields, so an absent one is malformed (this keeps the encoding canonical).
func (d *decoder) str() string {
	b := d.bytes()
	if b == nil && d.err == nil {
		d.fail("string encoded as absent")
	}
	return string(b)
}
