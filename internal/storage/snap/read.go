package snap

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"path/filepath"

	"github.com/cairn-db/cairn/internal/storage/vfs"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// layout is where the parts of a verified snapshot file are.
type layout struct {
	meta      Meta
	bodyOff   int64
	bodyLen   int64
	headerCRC uint32 // crc of the header alone, to resume over the body
	crc       uint32 // expected final crc
}

// corrupt wraps a reason in ErrCorrupt with the file name.
func corrupt(path, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, filepath.Base(path), fmt.Sprintf(format, args...))
}

// parseHeader decodes the header at the start of r (a file of size bytes).
func parseHeader(r io.ReaderAt, size int64, path string) (layout, []byte, error) {
	var l layout
	if size < headerFixed+trailerSize {
		return l, nil, corrupt(path, "file is %d bytes, too short", size)
	}
	fixed := make([]byte, headerFixed)
	if _, err := r.ReadAt(fixed, 0); err != nil {
		return l, nil, fmt.Errorf("snap: read %s: %w", path, err)
	}
	if string(fixed[:8]) != magic {
		return l, nil, corrupt(path, "bad magic")
	}
	if v := binary.LittleEndian.Uint32(fixed[8:]); v != formatVersion {
		return l, nil, corrupt(path, "unsupported format version %d", v)
	}
	metaLen := int64(binary.LittleEndian.Uint32(fixed[12:]))
	if metaLen < 16 || metaLen > maxMetaLen || headerFixed+metaLen+trailerSize > size {
		return l, nil, corrupt(path, "bad meta length %d", metaLen)
	}
	header := make([]byte, headerFixed+metaLen)
	copy(header, fixed)
	if _, err := r.ReadAt(header[headerFixed:], headerFixed); err != nil {
		return l, nil, fmt.Errorf("snap: read %s: %w", path, err)
	}
	meta := header[headerFixed:]
	l.meta.Index = binary.LittleEndian.Uint64(meta)
	l.meta.Term = binary.LittleEndian.Uint64(meta[8:])
	l.meta.ConfState = &raftpb.ConfState{}
	if err := proto.Unmarshal(meta[16:], l.meta.ConfState); err != nil {
		return l, nil, corrupt(path, "conf state: %v", err)
	}
	l.bodyOff = int64(len(header))
	l.bodyLen = size - l.bodyOff - trailerSize
	return l, header, nil
}

// verify checks the whole file against its trailer and returns its layout.
func verify(f vfs.File, path string) (layout, error) {
	fi, err := f.Stat()
	if err != nil {
		return layout{}, fmt.Errorf("snap: stat %s: %w", path, err)
	}
	size := fi.Size()
	l, header, err := parseHeader(f, size, path)
	if err != nil {
		return l, err
	}
	l.headerCRC = crc32.Update(0, crcTable, header)
	h := crc32.New(crcTable)
	buf := make([]byte, bufSize)
	if _, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, size-4), buf); err != nil {
		return l, fmt.Errorf("snap: read %s: %w", path, err)
	}
	trailer := make([]byte, trailerSize)
	if _, err := f.ReadAt(trailer, size-trailerSize); err != nil {
		return l, fmt.Errorf("snap: read %s: %w", path, err)
	}
	if n := int64(binary.LittleEndian.Uint64(trailer)); n != l.bodyLen {
		return l, corrupt(path, "trailer says body is %d bytes, file holds %d", n, l.bodyLen)
	}
	l.crc = binary.LittleEndian.Uint32(trailer[8:])
	if got := h.Sum32(); got != l.crc {
		return l, corrupt(path, "crc mismatch (file %08x, computed %08x)", l.crc, got)
	}
	return l, nil
}

// open verifies the snapshot at path and returns a reader over its body.
func open(fs vfs.FS, path string, sf snapFile) (Meta, io.ReadCloser, error) {
	f, err := fs.Open(path)
	if err != nil {
		return Meta{}, nil, fmt.Errorf("snap: open: %w", err)
	}
	l, err := verify(f, path)
	if err == nil && (l.meta.Index != sf.index || l.meta.Term != sf.term) {
		err = corrupt(path, "header says index %d term %d", l.meta.Index, l.meta.Term)
	}
	if err != nil {
		f.Close()
		return Meta{}, nil, err
	}
	return l.meta, &bodyReader{
		f: f, path: path, l: l,
		r:   io.NewSectionReader(f, l.bodyOff, l.bodyLen),
		crc: l.headerCRC,
	}, nil
}

// bodyReader streams a snapshot body, re-checking the crc as it goes: if the
// file changed since Load verified it, the final Read returns ErrCorrupt
// instead of io.EOF.
type bodyReader struct {
	f    vfs.File
	path string
	l    layout
	r    io.Reader
	crc  uint32
	done bool
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.crc = crc32.Update(b.crc, crcTable, p[:n])
	if errors.Is(err, io.EOF) && !b.done {
		b.done = true
		b.crc = crc32.Update(b.crc, crcTable, binary.LittleEndian.AppendUint64(nil, uint64(b.l.bodyLen)))
		if b.crc != b.l.crc {
			return n, corrupt(b.path, "crc mismatch while reading the body")
		}
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.f.Close() }
