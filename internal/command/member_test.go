package command

import (
	"reflect"
	"testing"
)

func TestMemberAttrsRoundTrip(t *testing.T) {
	for _, m := range []*MemberAttrs{
		{ID: 1, Name: "a", ClientURLs: []string{"http://127.0.0.1:2379", "http://[::1]:2379"}},
		{ID: 1<<64 - 1},
		{ID: 7, Name: "no-urls"},
	} {
		c := &Command{ID: 42, Kind: KindMemberAttrs, Member: m}
		got, err := Decode(Encode(c))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %+v want %+v", got.Member, m)
		}
	}
	// An absent name is not canonical and is rejected.
	b := Encode(&Command{ID: 1, Kind: KindMemberAttrs, Member: &MemberAttrs{ID: 1}})
	b[4] = 0 // [version][kind][id=1][member id=1][name...]
	if _, err := Decode(b); err == nil {
		t.Fatal("absent name accepted")
	}
}
