package command

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// Lease, fencing and sequential commands survive encoding.
func TestCoordinationRoundTrip(t *testing.T) {
	for _, c := range []*Command{
		{ID: 1, Kind: KindLeaseGrant, Lease: &LeaseOp{ID: 0x694d5765fc71500b, TTL: 60}},
		{ID: 2, Kind: KindLeaseRevoke, Lease: &LeaseOp{ID: 7}},
		{Kind: KindLeaseRevoke, Lease: &LeaseOp{ID: 1<<63 - 1, Expired: true}},
		{ID: 3, Kind: KindLeaseRenew, Lease: &LeaseOp{ID: -5}},
		{Kind: KindLeaseExpire, Expired: []int64{1, -2, 1 << 62}},
		{Kind: KindLeaseExpireUnrenewed, Expire: []ExpiredLease{{ID: 1, Renewals: 1}, {ID: -2, Renewals: 1 << 40}}},
		{ID: 6, Kind: KindLeaseRenewBatch, Renew: []int64{7, 8}},
		{ID: 7, Kind: KindAlarm, Alarm: &AlarmOp{Activate: true, MemberID: 1 << 60, Type: "NOSPACE"}},
		{ID: 8, Kind: KindAlarm, Alarm: &AlarmOp{MemberID: 3, Type: "NOSPACE"}},
		{ID: 4, Kind: KindGuardedTxn, Fence: &Fence{Lock: "locks/db", Token: 42}, Txn: &mvcc.TxnRequest{
			Success: []mvcc.Op{{Put: &mvcc.PutRequest{Key: []byte("k"), Value: []byte("v")}}}}},
		{ID: 5, Kind: KindCreateSequential, Sequential: &Sequential{Prefix: []byte("q/"), Value: []byte("x"), Lease: 9}},
	} {
		got, err := Decode(Encode(c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %+v %+v want %+v %+v", got, got.Lease, c, c.Lease)
		}
	}
	b := Encode(&Command{ID: 1, Kind: KindLeaseRevoke, Lease: &LeaseOp{ID: 7}})
	b[len(b)-1] = 2 // an unknown flag
	if _, err := Decode(b); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unknown flag: %v", err)
	}
	if _, err := Decode(b[:len(b)-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
}
