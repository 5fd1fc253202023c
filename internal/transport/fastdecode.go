package transport

import (
	"math"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
)

// A fast path for decoding the common raftpb.Message shapes (heartbeats,
// votes, appends with entries and their responses). The generated proto2
// types hold every scalar behind a pointer, which makes the generic
// unmarshaler allocate once per field; here a message and its scalars share
// one allocation. Anything unusual — a snapshot, responses, an unknown field
// or enum value, an unexpected wire type, malformed input — returns ok=false
// and the caller falls back to proto.Unmarshal, so the result always equals
// what proto.Unmarshal would produce (FuzzFastDecode checks this).

type msgBlock struct {
	m   raftpb.Message
	typ raftpb.MessageType
	rej bool
	v   [8]uint64 // to, from, term, logTerm, index, commit, rejectHint, vote
}

type entryBlock struct {
	e   raftpb.Entry
	typ raftpb.EntryType
	v   [2]uint64 // term, index
}

func decodeFast(b []byte) (*raftpb.Message, bool) {
	blk := &msgBlock{}
	m := &blk.m
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch wt {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			var slot *uint64
			switch num {
			case 1:
				if v > math.MaxInt32 {
					return nil, false
				}
				if _, known := raftpb.MessageType_name[int32(v)]; !known {
					return nil, false
				}
				blk.typ = raftpb.MessageType(v)
				m.Type = &blk.typ
				continue
			case 10:
				blk.rej = v != 0
				m.Reject = &blk.rej
				continue
			case 2:
				slot, m.To = &blk.v[0], &blk.v[0]
			case 3:
				slot, m.From = &blk.v[1], &blk.v[1]
			case 4:
				slot, m.Term = &blk.v[2], &blk.v[2]
			case 5:
				slot, m.LogTerm = &blk.v[3], &blk.v[3]
			case 6:
				slot, m.Index = &blk.v[4], &blk.v[4]
			case 8:
				slot, m.Commit = &blk.v[5], &blk.v[5]
			case 11:
				slot, m.RejectHint = &blk.v[6], &blk.v[6]
			case 13:
				slot, m.Vote = &blk.v[7], &blk.v[7]
			default:
				return nil, false
			}
			*slot = v
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			switch num {
			case 7:
				e, ok := decodeEntryFast(v)
				if !ok {
					return nil, false
				}
				m.Entries = append(m.Entries, e)
			case 12:
				m.Context = append(make([]byte, 0, len(v)), v...)
			default:
				return nil, false
			}
		default:
			return nil, false
		}
	}
	return m, true
}

func decodeEntryFast(b []byte) (*raftpb.Entry, bool) {
	blk := &entryBlock{}
	e := &blk.e
	for len(b) > 0 {
		num, wt, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, false
		}
		b = b[n:]
		switch {
		case wt == protowire.VarintType && num >= 1 && num <= 3:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			switch num {
			case 1:
				if v > math.MaxInt32 {
					return nil, false
				}
				if _, known := raftpb.EntryType_name[int32(v)]; !known {
					return nil, false
				}
				blk.typ = raftpb.EntryType(v)
				e.Type = &blk.typ
			case 2:
				blk.v[0] = v
				e.Term = &blk.v[0]
			case 3:
				blk.v[1] = v
				e.Index = &blk.v[1]
			}
		case wt == protowire.BytesType && num == 4:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, false
			}
			b = b[n:]
			e.Data = append(make([]byte, 0, len(v)), v...)
		default:
			return nil, false
		}
	}
	return e, true
}
