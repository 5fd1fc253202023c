package main

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/protobuf/proto"
)

func TestDecodeLight(t *testing.T) {
	in := &pb.WatchResponse{
		Header:  &pb.ResponseHeader{Revision: 9, ClusterId: 1},
		WatchId: 42, CompactRevision: 3, Canceled: true, CancelReason: "why", Created: true,
		Events: []*mvccpb.Event{
			{Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 7, Value: []byte("seq=00000005 x")}, PrevKv: &mvccpb.KeyValue{ModRevision: 6}},
			{Type: mvccpb.DELETE, Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 8}},
			{},
		},
	}
	b, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var r lightResponse
	if err := decodeLight(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.watchID != 42 || !r.created || !r.canceled || r.compactRevision != 3 || r.cancelReason != "why" || len(r.events) != 3 {
		t.Fatalf("decoded %+v", r)
	}
	if e := r.events[0]; !e.hasKV || e.modRev != 7 || string(e.value) != "seq=00000005 x" {
		t.Fatalf("event 0: %+v", e)
	}
	if e := r.events[1]; !e.hasKV || e.modRev != 8 || e.value != nil {
		t.Fatalf("event 1: %+v", e)
	}
	if r.events[2].hasKV {
		t.Fatal("event 2 has no kv")
	}
	if err := decodeLight([]byte{0xff}, &r); err == nil {
		t.Fatal("garbage decoded")
	}
}

func BenchmarkDecodeLight(b *testing.B) {
	in := &pb.WatchResponse{
		Header:  &pb.ResponseHeader{Revision: 9, ClusterId: 1 << 60, MemberId: 1 << 61, RaftTerm: 2},
		WatchId: 42,
		Events:  []*mvccpb.Event{{Kv: &mvccpb.KeyValue{Key: []byte("wb/key"), ModRevision: 7, CreateRevision: 2, Version: 5, Value: make([]byte, 32)}}},
	}
	m, err := proto.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	var r lightResponse
	for b.Loop() {
		if err := decodeLight(m, &r); err != nil {
			b.Fatal(err)
		}
	}
}
