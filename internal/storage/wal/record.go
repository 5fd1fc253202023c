package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Record framing (see doc.go):
//
//	[u32 length][u32 crc][u8 type][payload][zero padding to a multiple of 8]
//
// length counts type+payload (so it is at least 1); crc is CRC-32C over
// type+payload. All integers are little endian.
const (
	recordHeaderSize = 8
	recordAlign      = 8
	maxRecordLen     = 1 << 30
)

type recordType byte

const (
	recSegment   recordType = 1 // segment header: magic, version, seq, first index
	recMetadata  recordType = 2 // opaque metadata given at Create
	recEntry     recordType = 3 // raftpb.Entry (protobuf)
	recHardState recordType = 4 // raftpb.HardState (protobuf)
	recSnapshot  recordType = 5 // snapshot marker: u64 index, u64 term
)

func (t recordType) valid() bool { return t >= recSegment && t <= recSnapshot }

func (t recordType) String() string {
	switch t {
	case recSegment:
		return "segment"
	case recMetadata:
		return "metadata"
	case recEntry:
		return "entry"
	case recHardState:
		return "hardstate"
	case recSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

const (
	segmentMagic   = "CAIRNWAL"
	formatVersion  = 1
	segmentPayload = 8 + 4 + 4 + 8 + 8 // magic, version, reserved, seq, first index
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

func padLen(n int) int { return (n + recordAlign - 1) &^ (recordAlign - 1) }

// beginRecord appends a header placeholder and the type byte; finishRecord
// fills in length and crc once the payload has been appended after it.
func beginRecord(buf []byte, t recordType) ([]byte, int) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0, 0, 0, 0, 0, byte(t))
	return buf, start
}

func finishRecord(buf []byte, start int) []byte {
	body := buf[start+recordHeaderSize:]
	binary.LittleEndian.PutUint32(buf[start:], uint32(len(body)))
	binary.LittleEndian.PutUint32(buf[start+4:], crc32.Checksum(body, crcTable))
	for n := len(buf) - start; n%recordAlign != 0; n++ {
		buf = append(buf, 0)
	}
	return buf
}

func appendRawRecord(buf []byte, t recordType, payload []byte) []byte {
	buf, start := beginRecord(buf, t)
	buf = append(buf, payload...)
	return finishRecord(buf, start)
}

var marshalOpts = proto.MarshalOptions{}

func appendEntryRecord(buf []byte, e *raftpb.Entry) ([]byte, error) {
	buf, start := beginRecord(buf, recEntry)
	buf, err := marshalOpts.MarshalAppend(buf, e)
	if err != nil {
		return buf[:start], err
	}
	if len(buf)-start-recordHeaderSize > maxRecordLen {
		return buf[:start], fmt.Errorf("%w: entry %d is %d bytes", ErrTooLarge, e.GetIndex(), len(buf)-start)
	}
	return finishRecord(buf, start), nil
}

func appendHardStateRecord(buf []byte, hs *raftpb.HardState) ([]byte, error) {
	buf, start := beginRecord(buf, recHardState)
	buf, err := marshalOpts.MarshalAppend(buf, hs)
	if err != nil {
		return buf[:start], err
	}
	return finishRecord(buf, start), nil
}

func appendSnapshotRecord(buf []byte, m Marker) []byte {
	buf, start := beginRecord(buf, recSnapshot)
	buf = binary.LittleEndian.AppendUint64(buf, m.Index)
	buf = binary.LittleEndian.AppendUint64(buf, m.Term)
	return finishRecord(buf, start)
}

func appendSegmentRecord(buf []byte, seq, first uint64) []byte {
	buf, start := beginRecord(buf, recSegment)
	buf = append(buf, segmentMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, formatVersion)
	buf = binary.LittleEndian.AppendUint32(buf, 0)
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = binary.LittleEndian.AppendUint64(buf, first)
	return finishRecord(buf, start)
}

// record is one decoded frame; payload aliases the segment buffer.
type record struct {
	typ     recordType
	payload []byte
}

// errEndOfLog reports a zero header: the zero-filled space after the last
// record.
var errEndOfLog = errors.New("end of log")

// decodeRecord decodes the frame at data[off:]. It returns the record and
// the padded frame size, errEndOfLog at a zero header or at the end of data,
// or another error describing why the bytes at off are not a valid frame.
// It checks framing only; payloads are decoded by the replayer.
func decodeRecord(data []byte, off int) (record, int, error) {
	rest := data[off:]
	if len(rest) < recordHeaderSize {
		if allZero(rest) {
			return record{}, 0, errEndOfLog
		}
		return record{}, 0, errors.New("truncated record header")
	}
	length := binary.LittleEndian.Uint32(rest)
	sum := binary.LittleEndian.Uint32(rest[4:])
	if length == 0 {
		if sum == 0 {
			return record{}, 0, errEndOfLog
		}
		return record{}, 0, errors.New("zero record length")
	}
	if length > maxRecordLen || int64(length) > int64(len(rest)-recordHeaderSize) {
		return record{}, 0, fmt.Errorf("record length %d overruns the segment", length)
	}
	end := recordHeaderSize + int(length)
	size := padLen(end)
	if size > len(rest) {
		return record{}, 0, errors.New("record padding overruns the segment")
	}
	body := rest[recordHeaderSize:end]
	if crc32.Checksum(body, crcTable) != sum {
		return record{}, 0, errors.New("crc mismatch")
	}
	if !allZero(rest[end:size]) {
		return record{}, 0, errors.New("non-zero record padding")
	}
	t := recordType(body[0])
	if !t.valid() {
		return record{}, 0, fmt.Errorf("unknown record type %d", body[0])
	}
	return record{typ: t, payload: body[1:]}, size, nil
}

var zeroBlock [4096]byte

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool { return firstNonZero(b) < 0 }

// firstNonZero returns the index of the first non-zero byte of b, or -1. It
// compares whole blocks (bytes.Equal is vectorized) so scanning the zeroed
// preallocated space of a segment is cheap.
func firstNonZero(b []byte) int {
	off := 0
	for len(b)-off >= len(zeroBlock) {
		if !bytes.Equal(b[off:off+len(zeroBlock)], zeroBlock[:]) {
			break
		}
		off += len(zeroBlock)
	}
	for i, c := range b[off:] {
		if c != 0 {
			return off + i
		}
	}
	return -1
}

func decodeMarker(p []byte) (Marker, error) {
	if len(p) != 16 {
		return Marker{}, fmt.Errorf("snapshot marker is %d bytes, want 16", len(p))
	}
	return Marker{Index: binary.LittleEndian.Uint64(p), Term: binary.LittleEndian.Uint64(p[8:])}, nil
}

type segmentHeader struct {
	version    uint32
	seq, first uint64
}

func decodeSegmentHeader(p []byte) (segmentHeader, error) {
	if len(p) != segmentPayload || string(p[:8]) != segmentMagic {
		return segmentHeader{}, errors.New("bad segment header")
	}
	h := segmentHeader{
		version: binary.LittleEndian.Uint32(p[8:]),
		seq:     binary.LittleEndian.Uint64(p[16:]),
		first:   binary.LittleEndian.Uint64(p[24:]),
	}
	if h.version != formatVersion {
		return h, fmt.Errorf("unsupported format version %d (this build reads %d)", h.version, formatVersion)
	}
	return h, nil
}
