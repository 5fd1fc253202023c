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
// carries events is assembled instead of marshalled as a whole: the header
// (encoded once per revision and term), the watcher's own few bytes
// (watch_id, fragment) and each event's bytes, which the registry's
// EventCache shares between every response that carries that event in that
// form. Protobuf allows this: a message's fields may come in any order and a
// repeated field is the concatenation of its elements. The parts are copied
// into one buffer (about a hundred bytes for a small event): gRPC handles a
// message of one buffer with less work than one of several, and the copy
// costs less than the difference. See assembler for where the buffers live.

// serverCodec is gRPC's proto codec that also passes *assembledMessage
// through as it is. It keeps the proto codec's name, so clients see nothing
// different.
type serverCodec struct{ proto encoding.CodecV2 }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*assembledMessage); ok {
		return m.parts[:], nil
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

// assembledMessage is an already encoded message of one buffer.
type assembledMessage struct {
	parts [1]mem.Buffer
	buf   mem.SliceBuffer // parts[0] points here: no allocation to box it
}

// assembler builds the messages of one batch of responses. The batch's
// messages and their bytes are carved out of two allocations made for the
// whole batch (a hundred responses for a hundred watchers of one stream is
// common), instead of one or two per message: at a million messages a
// second, allocation and the garbage collector's scanning were a tenth of
// a member's CPU. Nothing is reused: gRPC keeps a message's buffer until
// its transport has written it, and the memory is freed by the collector
// once every message of the batch has been written.
type assembler struct {
	msgs []assembledMessage
	buf  []byte
}

// reserve makes room for n messages of size bytes in all.
func (a *assembler) reserve(n, size int) {
	a.msgs = make([]assembledMessage, n)
	a.buf = make([]byte, 0, size)
}

// assembledSize is the exact encoded size of r (assemblable) with header.
func assembledSize(header []byte, r *watch.Response) int {
	size := len(header)
	if r.WatchID != 0 {
		size += protowire.SizeTag(fieldWatchID) + protowire.SizeVarint(uint64(r.WatchID))
	}
	if r.Fragment {
		size += protowire.SizeTag(fieldFragment) + protowire.SizeVarint(1)
	}
	for i := range r.Events {
		size += len(encodedEvent(r, i))
	}
	return size
}

// encodedEvent is event i of r encoded as one element of
// WatchResponse.events, from its shared cache slot when r has one.
func encodedEvent(r *watch.Response, i int) []byte {
	var c *watch.EventCache
	if i < len(r.Caches) {
		c = r.Caches[i]
	}
	ev := &r.Events[i]
	return c.Value(func() any { return encodeEventField(eventToPB(ev)) }).([]byte)
}

// assemble encodes r (assemblable) with header, the encoded header field,
// in the room reserved (or in a new allocation when there is none left).
func (a *assembler) assemble(header []byte, r *watch.Response) *assembledMessage {
	size := assembledSize(header, r)
	var m *assembledMessage
	if len(a.msgs) > 0 {
		m, a.msgs = &a.msgs[0], a.msgs[1:]
	} else {
		m = &assembledMessage{}
	}
	var b []byte
	if cap(a.buf)-len(a.buf) >= size {
		n := len(a.buf)
		b, a.buf = a.buf[n:n:n+size], a.buf[:n+size]
	} else {
		b = make([]byte, 0, size)
	}
	b = append(b, header...)
	if r.WatchID != 0 {
		b = protowire.AppendTag(b, fieldWatchID, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.WatchID))
	}
	if r.Fragment {
		b = protowire.AppendTag(b, fieldFragment, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	for i := range r.Events {
		b = append(b, encodedEvent(r, i)...)
	}
	m.buf = b
	m.parts[0] = &m.buf
	return m
}

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
