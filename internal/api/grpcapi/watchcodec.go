package grpcapi

import (
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-db/cairn/internal/watch"
)

// One event sent to many watchers is encoded once. A WatchResponse that
// carries events is assembled from parts instead of marshalled as a whole:
// the header (encoded once per revision and term), the watcher's own few
// bytes (watch_id, fragment), and each event's bytes, which the registry's
// EventCache shares between every response that carries that event in that
// form. Protobuf allows this: a message's fields may come in any order and a
// repeated field is the concatenation of its elements. The parts go to gRPC
// as a mem.BufferSlice through serverCodec, without being copied together.

// serverCodec is gRPC's proto codec that also passes *assembledMessage
// through as it is. It keeps the proto codec's name, so clients see nothing
// different.
type serverCodec struct{ proto encoding.CodecV2 }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*assembledMessage); ok {
		return m.parts, nil
	}
	return c.proto.Marshal(v)
}

func (c serverCodec) Unmarshal(data mem.BufferSlice, v any) error { return c.proto.Unmarshal(data, v) }

func (c serverCodec) Name() string { return c.proto.Name() }

// NewServer returns a gRPC server with opts and the codec that the Watch
// service needs, with every service registered (see Register).
func NewServer(cfg Config, opts ...grpc.ServerOption) *grpc.Server {
	opts = append(opts, grpc.ForceServerCodecV2(serverCodec{proto: encoding.GetCodecV2(encproto.Name)}))
	g := grpc.NewServer(opts...)
	Register(g, cfg)
	return g
}

// assembledMessage is an already encoded message, in parts.
type assembledMessage struct{ parts mem.BufferSlice }

// Field numbers of WatchResponse, from its descriptor.
var (
	watchRespFields  = (&pb.WatchResponse{}).ProtoReflect().Descriptor().Fields()
	fieldHeader      = fieldNumber(watchRespFields, "header")
	fieldWatchID     = fieldNumber(watchRespFields, "watch_id")
	fieldFragment    = fieldNumber(watchRespFields, "fragment")
	fieldWatchEvents = fieldNumber(watchRespFields, "events")
)

func fieldNumber(fields protoreflect.FieldDescriptors, name protoreflect.Name) protowire.Number {
	f := fields.ByName(name)
	if f == nil {
		panic("grpcapi: WatchResponse has no field " + string(name))
	}
	return f.Number()
}

// assemblable reports whether r is a plain events response, the only kind
// assembled from parts (the others are rare and go through toPB).
func assemblable(r *watch.Response) bool {
	return len(r.Events) > 0 && !r.Created && !r.Canceled && r.CompactRevision == 0 && r.CancelReason == ""
}

// assemble encodes r (assemblable) with header, the encoded header field.
func assemble(header []byte, r *watch.Response) *assembledMessage {
	own := make([]byte, 0, 16)
	if r.WatchID != 0 {
		own = protowire.AppendTag(own, fieldWatchID, protowire.VarintType)
		own = protowire.AppendVarint(own, uint64(r.WatchID))
	}
	if r.Fragment {
		own = protowire.AppendTag(own, fieldFragment, protowire.VarintType)
		own = protowire.AppendVarint(own, 1)
	}
	parts := make(mem.BufferSlice, 0, 2+len(r.Events))
	parts = append(parts, mem.SliceBuffer(header), mem.SliceBuffer(own))
	for i := range r.Events {
		var c *watch.EventCache
		if i < len(r.Caches) {
			c = r.Caches[i]
		}
		ev := &r.Events[i]
		parts = append(parts, mem.SliceBuffer(c.Bytes(func() []byte { return encodeEventField(eventToPB(ev)) })))
	}
	return &assembledMessage{parts: parts}
}

// encodeEventField encodes ev as one element of WatchResponse.events.
func encodeEventField(ev proto.Message) []byte {
	return appendMessageField(nil, fieldWatchEvents, ev)
}

func appendMessageField(b []byte, num protowire.Number, m proto.Message) []byte {
	size := proto.Size(m)
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, m)
	if err != nil {
		panic("grpcapi: cannot encode " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error())
	}
	return b
}

// headerCache holds the encoded header field of the latest (revision, term):
// every response of one Notify has the same.
type headerCache struct{ last atomic.Pointer[encodedHeader] }

type encodedHeader struct {
	rev, term uint64
	b         []byte
}

// get returns the encoded header for rev and term, calling build on a miss.
func (h *headerCache) get(rev int64, term uint64, build func() *pb.ResponseHeader) []byte {
	if e := h.last.Load(); e != nil && e.rev == uint64(rev) && e.term == term {
		return e.b
	}
	e := &encodedHeader{rev: uint64(rev), term: term, b: appendMessageField(nil, fieldHeader, build())}
	h.last.Store(e)
	return e.b
}
