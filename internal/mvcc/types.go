package mvcc

// KeyValue is one version of a key as seen by a read. The byte slices are shared with the store and with the
// request that wrote them: callers must treat them as read-only.
type KeyValue struct {
	Key            []byte
	CreateRevision int64 // revision of the put that created the key's current generation
	ModRevision    int64 // revision of the last write to the key
	Version        int64 // number of puts in the current generation (1 for a new key)
	Value          []byte
	Lease          int64 // 0: no lease
}

// SortOrder is the order of a range result; the values match etcd's RangeRequest_SortOrder.
type SortOrder int

// Sort orders.
const (
	SortNone    SortOrder = 0
	SortAscend  SortOrder = 1
	SortDescend SortOrder = 2
)

// SortTarget is the field a range result is sorted by; the values match etcd's RangeRequest_SortTarget.
type SortTarget int

// Sort targets.
const (
	SortByKey     SortTarget = 0
	SortByVersion SortTarget = 1
	SortByCreate  SortTarget = 2
	SortByMod     SortTarget = 3
	SortByValue   SortTarget = 4
)

// RangeRequest reads keys. End selects the interval: nil or empty reads the single key Key; []byte{0} reads every
// key >= Key; anything else reads [Key, End).
type RangeRequest struct {
	Key, End []byte
	// Limit caps the number of KVs returned (0 or negative: no limit); More reports that it cut the result.
	Limit int64
	// Revision is the revision to read at; 0 (or negative, outside a txn) means the current revision.
	Revision   int64
	SortOrder  SortOrder
	SortTarget SortTarget
	// KeysOnly drops values. Like etcd 3.7, unless SortTarget is SortByValue it also reports Lease as 0.
	KeysOnly bool
	// CountOnly returns no KVs, only Count.
	CountOnly bool
	// Revision filters; 0 disables each. They prune KVs but never change Count.
	MinModRevision, MaxModRevision, MinCreateRevision, MaxCreateRevision int64
}

// RangeResult is the answer to a RangeRequest.
type RangeResult struct {
	KVs []*KeyValue
	// More is true when Limit removed KVs (after filters and sort).
	More bool
	// Count is the number of keys in the interval at the revision read, ignoring Limit and revision filters.
	Count int64
}

// PutRequest writes one key.
type PutRequest struct {
	Key, Value []byte
	Lease      int64
	// PrevKV asks for the key's value before this put.
	PrevKV bool
	// IgnoreValue keeps the key's current value (the key must exist).
	IgnoreValue bool
	// IgnoreLease keeps the key's current lease (the key must exist).
	IgnoreLease bool
}

// PutResult is the answer to a PutRequest.
type PutResult struct {
	PrevKV *KeyValue // set when PrevKV was asked for and the key existed
}

// DeleteRequest deletes the live keys of an interval (End as in RangeRequest).
type DeleteRequest struct {
	Key, End []byte
	PrevKV   bool
}

// DeleteResult is the answer to a DeleteRequest.
type DeleteResult struct {
	Deleted int64
	PrevKVs []*KeyValue // set when PrevKV was asked for
}

// CompareTarget is the field a Compare looks at; the values match etcd's Compare_CompareTarget.
type CompareTarget int

// Compare targets.
const (
	CompareVersion CompareTarget = 0
	CompareCreate  CompareTarget = 1
	CompareMod     CompareTarget = 2
	CompareValue   CompareTarget = 3
	CompareLease   CompareTarget = 4
)

// CompareResult is the relation a Compare tests; the values match etcd's Compare_CompareResult.
type CompareResult int

// Compare results.
const (
	CompareEqual    CompareResult = 0
	CompareGreater  CompareResult = 1
	CompareLess     CompareResult = 2
	CompareNotEqual CompareResult = 3
)

// Compare is one guard of a TxnRequest: "the Target of every key in [Key, End) stands in relation Result to the
// given operand". Only the operand field that matches Target is used.
type Compare struct {
	Target CompareTarget
	Result CompareResult
	Key    []byte
	End    []byte // as in RangeRequest

	Version        int64
	CreateRevision int64
	ModRevision    int64
	Lease          int64
	Value          []byte
}

// Op is one operation of a txn branch; exactly one field is set. An Op with no field set is skipped (like an empty
// etcd RequestOp) and yields an empty OpResult.
type Op struct {
	Range  *RangeRequest
	Put    *PutRequest
	Delete *DeleteRequest
	Txn    *TxnRequest
}

// TxnRequest runs Success when every Compare holds, otherwise Failure. Put and Delete are a TxnRequest with no
// compares and one Success op.
type TxnRequest struct {
	Compare []Compare
	Success []Op
	Failure []Op
}

// OpResult is the result of one Op; the field matching the Op is set.
type OpResult struct {
	Range  *RangeResult
	Put    *PutResult
	Delete *DeleteResult
	Txn    *TxnResult
}

// TxnResult is the answer to a TxnRequest: which branch ran and one result per op of that branch.
type TxnResult struct {
	Succeeded bool
	Results   []OpResult
}

// EventType is the kind of an Event.
type EventType int

// Event types (values match etcd's mvccpb.Event_EventType).
const (
	EventPut    EventType = 0
	EventDelete EventType = 1
)

// Event is one change made by a Txn, in the order the txn made them. For a delete, KV holds only Key and
// ModRevision (the delete's revision). PrevKV is the key's previous live version, nil if it had none.
type Event struct {
	Type   EventType
	KV     *KeyValue
	PrevKV *KeyValue
}

// LeaseChecker reports whether the lease id exists. A nil LeaseChecker means no lease exists.
type LeaseChecker func(id int64) bool
