package mvcc

import (
	"errors"
	"fmt"
	"testing"
)

func TestValidateTxn(t *testing.T) {
	putOp := func(k string) Op { return Op{Put: &PutRequest{Key: b(k)}} }
	delOp := func(k, end string) Op {
		d := &DeleteRequest{Key: b(k)}
		if end != "" {
			d.End = b(end)
		}
		return Op{Delete: d}
	}
	txnOp := func(succ, fail []Op) Op { return Op{Txn: &TxnRequest{Success: succ, Failure: fail}} }
	many := func(n int) []Op {
		ops := make([]Op, n)
		for i := range ops {
			ops[i] = putOp(fmt.Sprint(i))
		}
		return ops
	}
	for _, tc := range []struct {
		name string
		r    TxnRequest
		max  int
		want error
	}{
		{"ok", TxnRequest{Success: []Op{putOp("a"), putOp("b")}}, 128, nil},
		{"success at limit", TxnRequest{Success: many(3)}, 3, nil},
		{"too many success", TxnRequest{Success: many(4)}, 3, ErrTooManyOps},
		{"too many compares", TxnRequest{Compare: make([]Compare, 4)}, 3, ErrTooManyOps},
		{"max not sum", TxnRequest{Compare: []Compare{{Key: b("a")}, {Key: b("b")}}, Success: many(3), Failure: many(3)}, 3, nil},
		{"nested budget", TxnRequest{Success: []Op{txnOp(many(2), nil)}}, 2, ErrTooManyOps},
		{"nested within budget", TxnRequest{Success: []Op{txnOp(many(1), nil)}}, 2, nil},
		{"compare empty key", TxnRequest{Compare: []Compare{{}}}, 8, ErrEmptyKey},
		{"put empty key", TxnRequest{Success: []Op{putOp("")}}, 8, ErrEmptyKey},
		{"range empty key", TxnRequest{Failure: []Op{{Range: &RangeRequest{}}}}, 8, ErrEmptyKey},
		{"delete empty key", TxnRequest{Success: []Op{delOp("", "")}}, 8, ErrEmptyKey},
		{"nested empty key", TxnRequest{Success: []Op{txnOp(nil, []Op{putOp("")})}}, 8, ErrEmptyKey},
		{"value provided", TxnRequest{Success: []Op{{Put: &PutRequest{Key: b("a"), Value: b("v"), IgnoreValue: true}}}}, 8, ErrValueProvided},
		{"lease provided", TxnRequest{Success: []Op{{Put: &PutRequest{Key: b("a"), Lease: 1, IgnoreLease: true}}}}, 8, ErrLeaseProvided},
		{"bad sort", TxnRequest{Success: []Op{{Range: &RangeRequest{Key: b("a"), SortTarget: 9}}}}, 8, ErrInvalidSortOption},
		{"empty op", TxnRequest{Success: []Op{{}}}, 8, ErrKeyNotFound},
		{"double op", TxnRequest{Success: []Op{{Put: &PutRequest{Key: b("a")}, Range: &RangeRequest{Key: b("a")}}}}, 8, ErrInvalidOp},
		{"duplicate put", TxnRequest{Success: []Op{putOp("a"), putOp("a")}}, 8, ErrDuplicateKey},
		{"same put in both branches", TxnRequest{Success: []Op{putOp("a")}, Failure: []Op{putOp("a")}}, 8, nil},
		{"put in delete point", TxnRequest{Success: []Op{delOp("a", ""), putOp("a")}}, 8, ErrDuplicateKey},
		{"put in delete range", TxnRequest{Success: []Op{putOp("b"), delOp("a", "c")}}, 8, ErrDuplicateKey},
		{"put at delete range end", TxnRequest{Success: []Op{putOp("c"), delOp("a", "c")}}, 8, nil},
		{"delete gte quirk", TxnRequest{Success: []Op{putOp("b"), delOp("a", "\x00")}}, 8, nil},
		{"inverted delete", TxnRequest{Success: []Op{putOp("b"), delOp("c", "a")}}, 8, nil},
		{"two deletes fine", TxnRequest{Success: []Op{delOp("a", "c"), delOp("b", "d")}}, 8, nil},
		{"nested put vs outer put", TxnRequest{Success: []Op{putOp("a"), txnOp([]Op{putOp("a")}, nil)}}, 8, ErrDuplicateKey},
		{"nested put vs outer delete", TxnRequest{Success: []Op{delOp("a", "b"), txnOp([]Op{putOp("a")}, nil)}}, 8, ErrDuplicateKey},
		{"nested delete vs outer put", TxnRequest{Success: []Op{putOp("a"), txnOp(nil, []Op{delOp("a", "")})}}, 8, ErrDuplicateKey},
		{"nested then/else same key", TxnRequest{Success: []Op{txnOp([]Op{putOp("a")}, []Op{putOp("a")})}}, 8, nil},
		{"two nested txns same key", TxnRequest{Success: []Op{txnOp([]Op{putOp("a")}, nil), txnOp(nil, []Op{putOp("a")})}}, 8, ErrDuplicateKey},
		{"else key seen before", TxnRequest{Success: []Op{txnOp([]Op{putOp("b")}, nil), txnOp([]Op{putOp("c")}, []Op{putOp("b")})}}, 8, ErrDuplicateKey},
		{"earlier nested delete vs later nested put", TxnRequest{Success: []Op{txnOp([]Op{delOp("a", "")}, nil), txnOp([]Op{putOp("a")}, nil)}}, 8, ErrDuplicateKey},
		// etcd quirk: a nested put is not checked against the deletes of nested txns after it.
		{"later nested delete vs earlier nested put", TxnRequest{Success: []Op{txnOp([]Op{putOp("a")}, nil), txnOp([]Op{delOp("a", "")}, nil)}}, 8, nil},
		{"deep nesting", TxnRequest{Success: []Op{putOp("x"), txnOp([]Op{txnOp([]Op{putOp("x")}, nil)}, nil)}}, 8, ErrDuplicateKey},
		{"failure branch checked", TxnRequest{Failure: []Op{putOp("a"), putOp("a")}}, 8, ErrDuplicateKey},
	} {
		if err := ValidateTxn(&tc.r, tc.max); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestValidateSingle(t *testing.T) {
	if err := ValidateRange(&RangeRequest{Key: b("a"), SortOrder: SortDescend, SortTarget: SortByValue}); err != nil {
		t.Error(err)
	}
	if err := ValidateRange(&RangeRequest{Key: b("a"), SortOrder: 3}); !errors.Is(err, ErrInvalidSortOption) {
		t.Error(err)
	}
	if err := ValidatePut(&PutRequest{Key: b("a"), IgnoreValue: true, IgnoreLease: true}); err != nil {
		t.Error(err)
	}
	if err := ValidateDelete(&DeleteRequest{}); !errors.Is(err, ErrEmptyKey) {
		t.Error(err)
	}
}

func TestErrorTexts(t *testing.T) {
	for err, want := range map[error]string{
		ErrCompacted:     "mvcc: required revision has been compacted",
		ErrFutureRev:     "mvcc: required revision is a future revision",
		ErrKeyNotFound:   "etcdserver: key not found",
		ErrLeaseNotFound: "etcdserver: requested lease not found",
		ErrTooManyOps:    "etcdserver: too many operations in txn request",
		ErrDuplicateKey:  "etcdserver: duplicate key given in txn request",
		ErrEmptyKey:      "etcdserver: key is not provided",
	} {
		if err.Error() != want {
			t.Errorf("%q, want %q", err, want)
		}
	}
}
