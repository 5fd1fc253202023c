package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// MaxFrameSize is the largest frame payload (one marshaled raftpb.Message) a
// receiver accepts; a larger length prefix fails the stream with ErrFrameTooLarge.
const MaxFrameSize = 512 << 20

// MaxSnapshotSize is the largest snapshot Data a receiver accepts on
// /raft/snapshot.
const MaxSnapshotSize = 8 << 30

// frameHeaderLen is the size of a frame's length prefix.
const frameHeaderLen = 4

// directAllocLimit bounds how much the decoder allocates up front on the word of
// a length prefix; larger payloads grow as their bytes actually arrive, so a
// lying prefix cannot make the receiver allocate hundreds of MiB.
const directAllocLimit = 1 << 20

// appendFrame appends m as one frame (4-byte big-endian length, then the
// protobuf encoding) to buf.
func appendFrame(buf []byte, m *raftpb.Message) ([]byte, error) {
	start := len(buf)
	buf = append(buf, 0, 0, 0, 0)
	out, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return buf[:start], fmt.Errorf("transport: marshal message: %w", err)
	}
	n := len(out) - start - frameHeaderLen
	if n > MaxFrameSize {
		return out[:start], fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, n)
	}
	binary.BigEndian.PutUint32(out[start:], uint32(n))
	return out, nil
}

// frameReader decodes consecutive frames from a stream.
type frameReader struct {
	r   *bufio.Reader
	buf []byte               // reused payload buffer
	hdr [frameHeaderLen]byte // kept here so it does not escape per frame
}

func newFrameReader(r io.Reader) *frameReader {
	return &frameReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next frame's payload, valid until the following call. It
// returns io.EOF at a clean end of stream (between frames), io.ErrUnexpectedEOF
// for a truncated frame and ErrFrameTooLarge for an oversized length prefix.
func (fr *frameReader) next() ([]byte, error) {
	if _, err := io.ReadFull(fr.r, fr.hdr[:]); err != nil {
		return nil, err // io.EOF when nothing was read, else io.ErrUnexpectedEOF
	}
	n := binary.BigEndian.Uint32(fr.hdr[:])
	if n > MaxFrameSize {
		return nil, fmt.Errorf("%w: length prefix %d > %d", ErrFrameTooLarge, n, MaxFrameSize)
	}
	p, err := readPayload(fr.r, uint64(n), fr.buf)
	if err != nil {
		return nil, err
	}
	if cap(p) <= directAllocLimit {
		fr.buf = p[:0] // keep small buffers for reuse; drop large ones
	}
	return p, nil
}

// readPayload reads exactly n bytes from r, reusing buf when it is big enough.
// Above directAllocLimit the buffer grows with the data actually received.
func readPayload(r io.Reader, n uint64, buf []byte) ([]byte, error) {
	if n <= directAllocLimit {
		if uint64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		buf = buf[:n]
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, noEOF(err)
		}
		return buf, nil
	}
	var b bytes.Buffer
	b.Grow(directAllocLimit)
	got, err := b.ReadFrom(io.LimitReader(r, int64(n)))
	if err != nil {
		return nil, err
	}
	if uint64(got) != n {
		return nil, io.ErrUnexpectedEOF
	}
	return b.Bytes(), nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// decodeMessage unmarshals one frame payload. The result does not alias p.
func decodeMessage(p []byte) (*raftpb.Message, error) {
	if m, ok := decodeFast(p); ok {
		return m, nil
	}
	m := &raftpb.Message{}
	if err := proto.Unmarshal(p, m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return m, nil
}

// Snapshot request body (/raft/snapshot): one frame holding the MsgSnap message
// with Snapshot.Data left empty, then the Data length as an 8-byte big-endian
// integer, then the Data bytes. The receiver puts Data back before Process.

// snapshotHeader returns a shallow copy of m without its snapshot Data, so the
// (possibly tens of MiB) Data is streamed from the caller's slice instead of
// being copied into a marshal buffer. m is not modified.
func snapshotHeader(m *raftpb.Message) *raftpb.Message {
	h := &raftpb.Message{}
	src, dst := m.ProtoReflect(), h.ProtoReflect()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Name() != "snapshot" {
			dst.Set(fd, v)
		}
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	if s := m.GetSnapshot(); s != nil {
		h.Snapshot = &raftpb.Snapshot{Metadata: s.GetMetadata()}
	}
	return h
}

// encodeSnapshotPrefix returns the bytes that precede the snapshot Data.
func encodeSnapshotPrefix(m *raftpb.Message) ([]byte, error) {
	buf, err := appendFrame(nil, snapshotHeader(m))
	if err != nil {
		return nil, err
	}
	return binary.BigEndian.AppendUint64(buf, uint64(len(m.GetSnapshot().GetData()))), nil
}

// decodeSnapshot reads a whole /raft/snapshot body and returns the message with
// its Data restored.
func decodeSnapshot(r io.Reader) (*raftpb.Message, error) {
	fr := newFrameReader(r)
	p, err := fr.next()
	if err != nil {
		return nil, noEOF(err)
	}
	m, err := decodeMessage(p)
	if err != nil {
		return nil, err
	}
	if m.GetType() != raftpb.MsgSnap || m.GetSnapshot() == nil {
		return nil, fmt.Errorf("%w: snapshot request carries %v without snapshot", ErrBadFrame, m.GetType())
	}
	var lb [8]byte
	if _, err := io.ReadFull(fr.r, lb[:]); err != nil {
		return nil, noEOF(err)
	}
	n := binary.BigEndian.Uint64(lb[:])
	if n > MaxSnapshotSize {
		return nil, fmt.Errorf("%w: snapshot data %d bytes > %d", ErrFrameTooLarge, n, uint64(MaxSnapshotSize))
	}
	data, err := readPayload(fr.r, n, nil)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		data = nil
	}
	m.Snapshot.Data = data
	return m, nil
}
