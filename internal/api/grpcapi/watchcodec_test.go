package grpcapi

import (
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/watch"
)

// An assembled response decodes to exactly the WatchResponse that
// marshalling the whole message gives, for every shape of events response.
func TestAssembledWatchResponseDecodes(t *testing.T) {
	a1 := &mvcc.KeyValue{Key: []byte("a"), Value: []byte("1"), CreateRevision: 2, ModRevision: 2, Version: 1}
	a2 := &mvcc.KeyValue{Key: []byte("a"), Value: []byte("2"), CreateRevision: 2, ModRevision: 3, Version: 2, Lease: 7}
	del := &mvcc.KeyValue{Key: []byte("a"), ModRevision: 4}
	big := &mvcc.KeyValue{Key: []byte("b"), Value: make([]byte, 500), CreateRevision: 5, ModRevision: 5, Version: 1}
	caches := make([]watch.EventCache, 3)
	cases := []watch.Response{
		{WatchID: 0, Revision: 2, Events: []mvcc.Event{{Type: mvcc.EventPut, KV: a1}}},
		{WatchID: 5, Revision: 3, Events: []mvcc.Event{{Type: mvcc.EventPut, KV: a2, PrevKV: a1}}, Caches: []*watch.EventCache{&caches[0]}},
		{WatchID: -1, Revision: 9, Fragment: true, Events: []mvcc.Event{
			{Type: mvcc.EventPut, KV: a2}, {Type: mvcc.EventDelete, KV: del, PrevKV: a2},
		}, Caches: []*watch.EventCache{&caches[1], &caches[2]}},
		{WatchID: 1 << 40, Revision: 5, Events: []mvcc.Event{{Type: mvcc.EventPut, KV: big}}},
	}
	// Another watcher of the same write: the same events, found in the memo.
	cases = append(cases, watch.Response{WatchID: 6, Revision: 3, Events: cases[1].Events, Caches: cases[1].Caches})
	var hc headerCache
	codec := serverCodec{proto: encoding.GetCodecV2(encproto.Name)}
	for i, r := range cases {
		if !assemblable(&r) {
			t.Fatalf("case %d is not assemblable", i)
		}
		hdr := &pb.ResponseHeader{ClusterId: 11, MemberId: 12, Revision: r.Revision, RaftTerm: 3}
		for round := 0; round < 2; round++ { // the second round uses the caches
			var a *arena // odd cases have none
			if i%2 == 0 {
				h := hc.get(r.Revision, 3, func() *pb.ResponseHeader { return hdr })
				var memo eventsMemo
				a = newArena(1, assembledSize(h, &r, memo.get(&r)))
			}
			var memo eventsMemo
			parts, err := codec.Marshal(a.assemble(hc.get(r.Revision, 3, func() *pb.ResponseHeader { return hdr }), &r, memo.get(&r)))
			if err != nil {
				t.Fatal(err)
			}
			var got pb.WatchResponse
			if err := proto.Unmarshal(parts.Materialize(), &got); err != nil {
				t.Fatalf("case %d: %v", i, err)
			}
			want := &pb.WatchResponse{Header: hdr, WatchId: r.WatchID, Fragment: r.Fragment}
			for j := range r.Events {
				want.Events = append(want.Events, eventToPB(&r.Events[j]))
			}
			if !proto.Equal(&got, want) {
				t.Fatalf("case %d round %d:\n got %v\nwant %v", i, round, &got, want)
			}
		}
	}
	// A batch carved out of one arena: every message keeps its own bytes
	// once the later ones are assembled, and the arena is released only
	// when gRPC has freed the last of them.
	hdrs := make([][]byte, len(cases))
	var memo eventsMemo
	size := 0
	for i := range cases {
		hdrs[i] = appendMessageField(nil, fieldHeader, &pb.ResponseHeader{Revision: cases[i].Revision})
		size += assembledSize(hdrs[i], &cases[i], memo.get(&cases[i]))
	}
	a := newArena(len(cases), size)
	msgs := make([]*assembledMessage, len(cases))
	for i := range cases {
		msgs[i] = a.assemble(hdrs[i], &cases[i], memo.get(&cases[i]))
	}
	if a.next != len(a.msgs) || len(a.buf) != size {
		t.Fatalf("arena not used exactly: %d of %d messages, %d of %d bytes", a.next, len(a.msgs), len(a.buf), size)
	}
	for i, m := range msgs {
		parts, _ := codec.Marshal(m)
		if _, pooled := parts[0].(mem.SliceBuffer); pooled {
			t.Fatalf("message %d: gRPC would not hand its buffer back", i)
		}
		var got pb.WatchResponse
		if err := proto.Unmarshal(parts.Materialize(), &got); err != nil {
			t.Fatalf("batch message %d: %v", i, err)
		}
		want := &pb.WatchResponse{Header: &pb.ResponseHeader{Revision: cases[i].Revision}, WatchId: cases[i].WatchID, Fragment: cases[i].Fragment}
		for j := range cases[i].Events {
			want.Events = append(want.Events, eventToPB(&cases[i].Events[j]))
		}
		if !proto.Equal(&got, want) {
			t.Fatalf("batch message %d:\n got %v\nwant %v", i, &got, want)
		}
		// What gRPC does: a reference for the transport, then SendMsg's
		// and the transport's frees.
		parts.Ref()
		parts.Free()
		if a.out.Load() != int32(len(cases)-i) {
			t.Fatalf("message %d: %d outstanding before the transport's free", i, a.out.Load())
		}
		parts.Free()
	}
	if a.out.Load() != 0 || a.msgs[0].parts[0] != nil {
		t.Fatalf("arena not released: %d outstanding", a.out.Load())
	}
	if caches[0].Value(func() any { t.Fatal("cache slot was not filled"); return nil }) == nil {
		t.Fatal("empty cached encoding")
	}
	if assemblable(&watch.Response{WatchID: 1, Created: true}) || assemblable(&watch.Response{Revision: 3}) {
		t.Fatal("control and empty responses must go through toPB")
	}
	// Other messages go through the proto codec unchanged.
	in := &pb.RangeResponse{Header: &pb.ResponseHeader{Revision: 4}, Kvs: []*mvccpb.KeyValue{{Key: []byte("k")}}, Count: 1}
	buf, err := codec.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out pb.RangeResponse
	if err := codec.Unmarshal(buf, &out); err != nil || !proto.Equal(in, &out) {
		t.Fatalf("proto round trip: %v %v", &out, err)
	}
}

// A batch of 100 responses to one write, as a stream of 100 watchers gets
// it: assembled and freed the way gRPC frees them. "memo" looks the
// events up once per batch, "per-response" once per response.
func BenchmarkAssembleBatch(b *testing.B) {
	kv := &mvcc.KeyValue{Key: []byte("wb/k03"), Value: make([]byte, 32), CreateRevision: 2, ModRevision: 9, Version: 3}
	caches := make([]watch.EventCache, 1)
	evs := []mvcc.Event{{Type: mvcc.EventPut, KV: kv}}
	batch := make([]watch.Response, 100)
	for i := range batch {
		batch[i] = watch.Response{WatchID: int64(i), Revision: 9, Events: evs, Caches: []*watch.EventCache{&caches[0]}}
	}
	hdr := appendMessageField(nil, fieldHeader, &pb.ResponseHeader{ClusterId: 1 << 60, MemberId: 1 << 61, Revision: 9, RaftTerm: 2})
	codec := serverCodec{proto: encoding.GetCodecV2(encproto.Name)}
	for _, shared := range []bool{true, false} {
		name := map[bool]string{true: "memo", false: "per-response"}[shared]
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var memo eventsMemo
				get := func(r *watch.Response) []byte {
					if !shared {
						memo = eventsMemo{}
					}
					return memo.get(r)
				}
				size := 0
				for i := range batch {
					size += assembledSize(hdr, &batch[i], get(&batch[i]))
				}
				a := newArena(len(batch), size)
				for i := range batch {
					parts, _ := codec.Marshal(a.assemble(hdr, &batch[i], get(&batch[i])))
					parts.Free()
				}
			}
		})
	}
}
