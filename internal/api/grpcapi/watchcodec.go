package grpcapi

import (
	"sync"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/cairn-db/cairn/internal/mvcc"
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
// costs less than the difference. See arena for where the buffers live.

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
	buf   mem.SliceBuffer // parts[0] points here when the message has no arena
}

// arena holds the messages of one send batch (a hundred responses for a
// hundred watchers of one stream is common): their bytes in one block, and
// for each the few words gRPC needs to refer to it. gRPC counts the
// references to a message's buffer and hands it back to its pool once the
// transport has written it; the arena is that pool, and when every message
// carved from it is back it is reused for a later batch. At a million
// messages a second, allocating them was most of a member's garbage and
// much of its collector's work. A message that is never handed back (its
// stream failed before it was sent) leaves its arena to the collector.
//
// Memory: an arena holds the encoding of one batch, which the watch
// registry bounds (see watch.Config.MaxPending), for as long as gRPC is
// writing it; a free arena is kept for reuse only up to maxPooledArena, and
// a sync.Pool empties over two garbage collections when nothing takes it.
type arena struct {
	buf   []byte
	heads [][]byte // message i's bytes, which mem.NewBuffer takes by pointer
	msgs  []assembledMessage
	next  int          // messages carved so far
	out   atomic.Int32 // messages not yet handed back
}

var arenas = sync.Pool{New: func() any { return new(arena) }}

// maxPooledArena bounds the arenas kept for reuse: a batch of large events
// leaves its block to the collector.
const maxPooledArena = 1 << 20

// arenaSlack keeps every message's capacity above gRPC's pooling
// threshold: below it, mem.NewBuffer ignores the pool and the arena would
// never come back.
var arenaSlack = func() int {
	n := 1
	for mem.IsBelowBufferPoolingThreshold(n) {
		n *= 2
	}
	return n
}()

// newArena returns an arena for exactly n messages of size bytes in all.
func newArena(n, size int) *arena {
	a := arenas.Get().(*arena)
	if need := size + arenaSlack; cap(a.buf) < need {
		a.buf = make([]byte, 0, need)
	}
	if cap(a.msgs) < n {
		a.msgs = make([]assembledMessage, n)
		a.heads = make([][]byte, n)
	}
	a.buf, a.msgs, a.heads = a.buf[:0], a.msgs[:n], a.heads[:n]
	a.next = 0
	a.out.Store(int32(n))
	return a
}

// Get is never called: gRPC only hands buffers back to this pool.
func (a *arena) Get(int) *[]byte { panic("grpcapi: arena.Get") }

// Put takes back one message's buffer; the last one releases the arena.
func (a *arena) Put(*[]byte) {
	if a.out.Add(-1) == 0 {
		clear(a.msgs)
		clear(a.heads)
		if cap(a.buf) <= maxPooledArena {
			arenas.Put(a)
		}
	}
}

// eventsMemo remembers the encoded events of the last response it was
// asked about: the responses of one batch mostly carry the very same
// events (one write, many watchers), so each distinct set is looked up in
// its cache slots and joined once per batch, not once per watcher.
type eventsMemo struct {
	first *mvcc.Event
	n     int
	cache *watch.EventCache
	b     []byte
}

// get returns the encoded events of r, as repeated WatchResponse.events
// fields.
func (m *eventsMemo) get(r *watch.Response) []byte {
	var cache *watch.EventCache
	if len(r.Caches) > 0 {
		cache = r.Caches[0]
	}
	if len(r.Events) == m.n && &r.Events[0] == m.first && cache == m.cache {
		return m.b
	}
	m.first, m.n, m.cache = &r.Events[0], len(r.Events), cache
	if len(r.Events) == 1 {
		m.b = encodedEvent(r, 0)
		return m.b
	}
	m.b = nil
	for i := range r.Events {
		m.b = append(m.b, encodedEvent(r, i)...)
	}
	return m.b
}

// assembledSize is the exact encoded size of r (assemblable) with header
// and events, its encoded events.
func assembledSize(header []byte, r *watch.Response, events []byte) int {
	size := len(header) + len(events)
	if r.WatchID != 0 {
		size += protowire.SizeTag(fieldWatchID) + protowire.SizeVarint(uint64(r.WatchID))
	}
	if r.Fragment {
		size += protowire.SizeTag(fieldFragment) + protowire.SizeVarint(1)
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

// assemble encodes r (assemblable) with header and events (see
// assembledSize) as the arena's next message; a nil arena, or one with no
// message left, gives a message of its own.
func (a *arena) assemble(header []byte, r *watch.Response, events []byte) *assembledMessage {
	size := assembledSize(header, r, events)
	if a == nil || a.next == len(a.msgs) || cap(a.buf)-len(a.buf) < size+arenaSlack {
		m := &assembledMessage{}
		m.buf = appendAssembled(make([]byte, 0, size), header, r, events)
		m.parts[0] = &m.buf
		return m
	}
	i, off := a.next, len(a.buf)
	a.next++
	a.buf = appendAssembled(a.buf, header, r, events)
	a.heads[i] = a.buf[off:len(a.buf)] // capacity runs to the end of the block: above the threshold
	m := &a.msgs[i]
	m.parts[0] = mem.NewBuffer(&a.heads[i], a)
	return m
}

// appendAssembled appends the encoding of r (assemblable) to b.
func appendAssembled(b, header []byte, r *watch.Response, events []byte) []byte {
	b = append(b, header...)
	if r.WatchID != 0 {
		b = protowire.AppendTag(b, fieldWatchID, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(r.WatchID))
	}
	if r.Fragment {
		b = protowire.AppendTag(b, fieldFragment, protowire.VarintType)
		b = protowire.AppendVarint(b, 1)
	}
	return append(b, events...)
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
