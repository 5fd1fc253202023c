package mvcc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
)

// Snapshot format, version 1 (all integers varint-encoded as in encoding/binary unless noted):
//
//	magic      8 bytes  "CAIRNMVC"
//	version    1 byte   1
//	rev        varint   current revision (>= 1)
//	compactRev varint   compaction revision (-1: never compacted)
//	nkeys      uvarint
//	nkeys times, keys in strictly ascending byte order:
//	  klen uvarint, key bytes, nvers uvarint (>= 1)
//	  nvers times, in strictly ascending (mod, sub) order:
//	    flags byte (bit 0: tombstone; other bits zero), mod uvarint, sub uvarint
//	    unless tombstone: create uvarint, ver uvarint, lease varint, vlen uvarint, value bytes
//	crc        4 bytes  big-endian CRC-32C (Castagnoli) of every byte above
const (
	snapMagic   = "CAIRNMVC"
	snapVersion = 1
)

// WriteTo serializes the whole state. To snapshot while writes go on, Clone under the write lock and call WriteTo
// on the clone in another goroutine.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	crc := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	cw := &countWriter{w: io.MultiWriter(w, crc)}
	bw := bufio.NewWriterSize(cw, 64<<10)
	buf := make([]byte, 0, 64)

	buf = append(buf, snapMagic...)
	buf = append(buf, snapVersion)
	buf = binary.AppendVarint(buf, s.rev)
	buf = binary.AppendVarint(buf, s.compactRev)
	buf = binary.AppendUvarint(buf, uint64(s.tree.Len()))
	_, _ = bw.Write(buf)
	s.tree.Ascend(func(e *keyEntry) bool {
		buf = binary.AppendUvarint(buf[:0], uint64(len(e.key)))
		_, _ = bw.Write(buf)
		_, _ = bw.Write(e.key)
		buf = binary.AppendUvarint(buf[:0], uint64(len(e.revs)))
		_, _ = bw.Write(buf)
		for i := range e.revs {
			v := &e.revs[i]
			buf = buf[:0]
			if v.tomb {
				buf = append(buf, 1)
			} else {
				buf = append(buf, 0)
			}
			buf = binary.AppendUvarint(buf, uint64(v.mod))
			buf = binary.AppendUvarint(buf, uint64(v.sub))
			if !v.tomb {
				buf = binary.AppendUvarint(buf, uint64(v.create))
				buf = binary.AppendUvarint(buf, uint64(v.ver))
				buf = binary.AppendVarint(buf, v.lease)
				buf = binary.AppendUvarint(buf, uint64(len(v.value)))
			}
			_, _ = bw.Write(buf)
			if !v.tomb {
				_, _ = bw.Write(v.value)
			}
		}
		return true
	})
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	n := cw.n
	m, err := w.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
	return n + int64(m), err
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

// Restore reads a snapshot written by WriteTo and returns the store it describes. It rejects an unknown format
// version, a bad checksum, truncation and any inconsistent content with an error wrapping ErrBadSnapshot (or the
// reader's own error). It reads exactly the snapshot's bytes when r is an io.ByteReader (such as *bufio.Reader),
// so a snapshot can be embedded in a larger stream; otherwise it buffers r and may read past the end.
func Restore(r io.Reader) (*Store, error) {
	br, ok := r.(io.ByteReader)
	if !ok {
		b := bufio.NewReaderSize(r, 64<<10)
		r, br = b, b
	}
	d := &snapDecoder{r: r, br: br, crc: crc32.New(crc32.MakeTable(crc32.Castagnoli))}
	s, err := d.decode()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: truncated: %w", ErrBadSnapshot, err)
		}
		return nil, err
	}
	s.recomputeSize()
	return s, nil
}

type snapDecoder struct {
	r   io.Reader
	br  io.ByteReader
	crc hash.Hash32
	one [1]byte
}

func (d *snapDecoder) ReadByte() (byte, error) {
	b, err := d.br.ReadByte()
	if err != nil {
		return 0, err
	}
	d.one[0] = b
	_, _ = d.crc.Write(d.one[:])
	return b, nil
}

func (d *snapDecoder) uvarint() (uint64, error) { return binary.ReadUvarint(d) }
func (d *snapDecoder) varint() (int64, error)   { return binary.ReadVarint(d) }

// int reads a uvarint that must fit in a non-negative int64.
func (d *snapDecoder) int() (int64, error) {
	u, err := d.uvarint()
	if err != nil {
		return 0, err
	}
	if u > 1<<62 {
		return 0, fmt.Errorf("%w: integer %d out of range", ErrBadSnapshot, u)
	}
	return int64(u), nil
}

// bytes reads n bytes, growing the buffer as data arrives so that a corrupt length cannot force a huge allocation.
func (d *snapDecoder) bytes(n int64) ([]byte, error) {
	const chunk = 64 << 10
	if n > 1<<40 {
		return nil, fmt.Errorf("%w: length %d out of range", ErrBadSnapshot, n)
	}
	b := make([]byte, 0, min(n, chunk))
	for int64(len(b)) < n {
		want := min(n-int64(len(b)), chunk)
		start := len(b)
		b = append(b, make([]byte, want)...)
		if _, err := io.ReadFull(d.r, b[start:]); err != nil {
			return nil, err
		}
	}
	_, _ = d.crc.Write(b)
	return b, nil
}

func (d *snapDecoder) decode() (*Store, error) {
	magic, err := d.bytes(int64(len(snapMagic)))
	if err != nil {
		return nil, err
	}
	if string(magic) != snapMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrBadSnapshot)
	}
	ver, err := d.ReadByte()
	if err != nil {
		return nil, err
	}
	if ver != snapVersion {
		return nil, fmt.Errorf("%w: unknown format version %d", ErrBadSnapshot, ver)
	}
	s := New()
	if s.rev, err = d.varint(); err != nil {
		return nil, err
	}
	if s.compactRev, err = d.varint(); err != nil {
		return nil, err
	}
	if s.rev < 1 || s.compactRev < -1 || s.compactRev > s.rev {
		return nil, fmt.Errorf("%w: revision %d, compaction revision %d", ErrBadSnapshot, s.rev, s.compactRev)
	}
	nkeys, err := d.int()
	if err != nil {
		return nil, err
	}
	var prevKey []byte
	for k := int64(0); k < nkeys; k++ {
		e, err := d.entry(s)
		if err != nil {
			return nil, err
		}
		if k > 0 && bytes.Compare(prevKey, e.key) >= 0 {
			return nil, fmt.Errorf("%w: keys out of order", ErrBadSnapshot)
		}
		prevKey = e.key
		if e.latest() != nil {
			s.keyCount++
		}
		s.tree.ReplaceOrInsert(e)
	}
	want := d.crc.Sum32()
	var sum [4]byte
	for i := range sum {
		if sum[i], err = d.br.ReadByte(); err != nil {
			return nil, err
		}
	}
	if got := binary.BigEndian.Uint32(sum[:]); got != want {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrBadSnapshot)
	}
	return s, nil
}

func (d *snapDecoder) entry(s *Store) (*keyEntry, error) {
	klen, err := d.int()
	if err != nil {
		return nil, err
	}
	key, err := d.bytes(klen)
	if err != nil {
		return nil, err
	}
	nvers, err := d.int()
	if err != nil {
		return nil, err
	}
	if nvers < 1 {
		return nil, fmt.Errorf("%w: key %q has no versions", ErrBadSnapshot, key)
	}
	e := &keyEntry{key: key, revs: make([]version, 0, min(nvers, 16)), cow: s.cow}
	bad := func(what string) error { return fmt.Errorf("%w: key %q: %s", ErrBadSnapshot, key, what) }
	for i := int64(0); i < nvers; i++ {
		var v version
		flags, err := d.ReadByte()
		if err != nil {
			return nil, err
		}
		if flags > 1 {
			return nil, bad("unknown version flags")
		}
		v.tomb = flags == 1
		if v.mod, err = d.int(); err != nil {
			return nil, err
		}
		if v.sub, err = d.int(); err != nil {
			return nil, err
		}
		if !v.tomb {
			if v.create, err = d.int(); err != nil {
				return nil, err
			}
			if v.ver, err = d.int(); err != nil {
				return nil, err
			}
			if v.lease, err = d.varint(); err != nil {
				return nil, err
			}
			vlen, err := d.int()
			if err != nil {
				return nil, err
			}
			if v.value, err = d.bytes(vlen); err != nil {
				return nil, err
			}
		}
		if v.mod < 1 || v.mod > s.rev {
			return nil, bad("revision out of range")
		}
		if !v.tomb && (v.create < 1 || v.create > v.mod || v.ver < 1) {
			return nil, bad("bad create revision or version")
		}
		if n := len(e.revs); n > 0 {
			p := &e.revs[n-1]
			if p.mod > v.mod || (p.mod == v.mod && p.sub >= v.sub) {
				return nil, bad("versions out of order")
			}
			switch {
			case v.tomb:
				if p.tomb {
					return nil, bad("two tombstones in a row")
				}
			case p.tomb:
				if v.ver != 1 || v.create != v.mod {
					return nil, bad("new generation does not start at version 1")
				}
			default:
				if v.ver != p.ver+1 || v.create != p.create {
					return nil, bad("version chain broken")
				}
			}
		}
		e.revs = append(e.revs, v)
	}
	return e, nil
}
