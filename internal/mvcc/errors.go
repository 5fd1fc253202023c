package mvcc

import "errors"

// Errors returned by the store and by the validators. Texts match etcd's so that clients see the same messages.
var (
	// ErrCompacted: a read or compaction asked for a revision that has been compacted away.
	ErrCompacted = errors.New("mvcc: required revision has been compacted")
	// ErrFutureRev: a read, hash or compaction asked for a revision above the current one.
	ErrFutureRev = errors.New("mvcc: required revision is a future revision")
	// ErrKeyNotFound: a put with IgnoreValue or IgnoreLease on a missing key; also an empty Op in ValidateTxn.
	ErrKeyNotFound = errors.New("etcdserver: key not found")
	// ErrLeaseNotFound: a put names a lease that does not exist.
	ErrLeaseNotFound = errors.New("etcdserver: requested lease not found")
	// ErrTooManyOps: a txn has more operations than allowed.
	ErrTooManyOps = errors.New("etcdserver: too many operations in txn request")
	// ErrDuplicateKey: a txn branch writes a key twice (two puts, or a put inside a delete range).
	ErrDuplicateKey = errors.New("etcdserver: duplicate key given in txn request")
	// ErrEmptyKey: a request has an empty key.
	ErrEmptyKey = errors.New("etcdserver: key is not provided")
	// ErrValueProvided: a put has IgnoreValue and a value.
	ErrValueProvided = errors.New("etcdserver: value is provided")
	// ErrLeaseProvided: a put has IgnoreLease and a lease.
	ErrLeaseProvided = errors.New("etcdserver: lease is provided")
	// ErrInvalidSortOption: a range has an unknown SortOrder or SortTarget.
	ErrInvalidSortOption = errors.New("etcdserver: invalid sort option")
	// ErrInvalidOp: an Op sets more than one of Range, Put, Delete, Txn (not expressible in etcd's protobuf).
	ErrInvalidOp = errors.New("mvcc: op sets more than one operation")
	// ErrBadSnapshot: Restore was given data that is not a valid snapshot of this format.
	ErrBadSnapshot = errors.New("mvcc: bad snapshot")
)
