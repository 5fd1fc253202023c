package main

import (
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc/encoding"
	encproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The receivers decode only what they measure (watch ID, flags, each
// event's mod revision and value) by scanning the wire bytes, instead of
// building a WatchResponse with its Events and KeyValues. At 50,000
// watchers the driver shares two cores with the servers, and full decoding
// was the larger part of its CPU; scanning makes the figures measure the
// servers more and the driver less. Both systems get the same driver.

// rawMsg receives a message's bytes through rawCodec, in a buffer reused
// from one message to the next.
type rawMsg struct{ b []byte }

// rawCodec is the proto codec, except that it leaves a *rawMsg undecoded.
type rawCodec struct{ proto encoding.CodecV2 }

func newRawCodec() rawCodec { return rawCodec{proto: encoding.GetCodecV2(encproto.Name)} }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if m, ok := v.(*rawMsg); ok {
		m.b = m.b[:0] // the receiver is done with the previous message
		for _, b := range data {
			m.b = append(m.b, b.ReadOnlyData()...)
		}
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

func (c rawCodec) Name() string { return c.proto.Name() }

// lightResponse is the part of a WatchResponse the receivers use.
type lightResponse struct {
	watchID         int64
	created         bool
	canceled        bool
	compactRevision int64
	cancelReason    string
	events          []lightEvent
}

type lightEvent struct {
	hasKV  bool
	modRev int64
	value  []byte // aliases the message bytes
}

func fieldNum(m protoreflect.ProtoMessage, name protoreflect.Name) protowire.Number {
	f := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if f == nil {
		panic("watchbench: no field " + string(name))
	}
	return f.Number()
}

var (
	fWatchID      = fieldNum(&pb.WatchResponse{}, "watch_id")
	fCreated      = fieldNum(&pb.WatchResponse{}, "created")
	fCanceled     = fieldNum(&pb.WatchResponse{}, "canceled")
	fCompactRev   = fieldNum(&pb.WatchResponse{}, "compact_revision")
	fCancelReason = fieldNum(&pb.WatchResponse{}, "cancel_reason")
	fEvents       = fieldNum(&pb.WatchResponse{}, "events")
	fEventKV      = fieldNum(&mvccpb.Event{}, "kv")
	fKVModRev     = fieldNum(&mvccpb.KeyValue{}, "mod_revision")
	fKVValue      = fieldNum(&mvccpb.KeyValue{}, "value")
)

// decodeLight scans b (a WatchResponse) into r, reusing r.events.
func decodeLight(b []byte, r *lightResponse) error {
	*r = lightResponse{events: r.events[:0]}
	return scanFields(b, func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error {
		switch {
		case num == fWatchID && typ == protowire.VarintType:
			r.watchID = int64(v)
		case num == fCreated && typ == protowire.VarintType:
			r.created = v != 0
		case num == fCanceled && typ == protowire.VarintType:
			r.canceled = v != 0
		case num == fCompactRev && typ == protowire.VarintType:
			r.compactRevision = int64(v)
		case num == fCancelReason && typ == protowire.BytesType:
			r.cancelReason = string(sub)
		case num == fEvents && typ == protowire.BytesType:
			var ev lightEvent
			err := scanFields(sub, func(num protowire.Number, typ protowire.Type, _ uint64, kv []byte) error {
				if num != fEventKV || typ != protowire.BytesType {
					return nil
				}
				ev.hasKV = true
				return scanFields(kv, func(num protowire.Number, typ protowire.Type, v uint64, val []byte) error {
					switch {
					case num == fKVModRev && typ == protowire.VarintType:
						ev.modRev = int64(v)
					case num == fKVValue && typ == protowire.BytesType:
						ev.value = val
					}
					return nil
				})
			})
			if err != nil {
				return err
			}
			r.events = append(r.events, ev)
		}
		return nil
	})
}

// scanFields calls fn for each field of the message b: varints with their
// value, length-delimited fields with their bytes; other types are skipped.
func scanFields(b []byte, fn func(num protowire.Number, typ protowire.Type, v uint64, sub []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("watchbench: bad tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v uint64
		var sub []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			sub, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("watchbench: bad field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
		if typ == protowire.VarintType || typ == protowire.BytesType {
			if err := fn(num, typ, v, sub); err != nil {
				return err
			}
		}
	}
	return nil
}
