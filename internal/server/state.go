package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// The replicated state in a snapshot (raft snapshot Data and the body of a
// snapshot file) is, version 2:
//
//	magic    "CAIRNST2"        8 bytes
//	members  uint32 length + JSON array of Member, sorted by ID
//	leases   uint32 length + lease.Table.Encode
//	store    the rest: mvcc.Store.WriteTo
//
// Version 1 ("CAIRNST1") has no leases section; it is still read.
//
// The snapshot file adds its own checksum (internal/storage/snap).
var (
	stateMagic   = []byte("CAIRNST2")
	stateMagicV1 = []byte("CAIRNST1")
)

var errBadState = errors.New("server: not a cairn state snapshot (bad magic or version)")

// encodeState streams the state to w (a snapshot file, through a buffer).
func encodeState(w io.Writer, store *mvcc.Store, members, leases []byte) error {
	hdr := make([]byte, 0, 16+len(members)+len(leases))
	hdr = append(hdr, stateMagic...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(members)))
	hdr = append(hdr, members...)
	hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(leases)))
	hdr = append(hdr, leases...)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := store.WriteTo(w)
	return err
}

func decodeState(data []byte) (*mvcc.Store, *membership, *lease.Table, error) {
	if len(data) < len(stateMagic) {
		return nil, nil, nil, errBadState
	}
	v2 := bytes.Equal(data[:len(stateMagic)], stateMagic)
	if !v2 && !bytes.Equal(data[:len(stateMagicV1)], stateMagicV1) {
		return nil, nil, nil, errBadState
	}
	data = data[len(stateMagic):]
	section := func(what string) ([]byte, error) {
		if len(data) < 4 {
			return nil, fmt.Errorf("server: truncated state snapshot (%s): %w", what, io.ErrUnexpectedEOF)
		}
		n := binary.BigEndian.Uint32(data)
		data = data[4:]
		if uint64(n) > uint64(len(data)) {
			return nil, fmt.Errorf("server: truncated state snapshot (%s): %w", what, io.ErrUnexpectedEOF)
		}
		b := data[:n]
		data = data[n:]
		return b, nil
	}
	mb, err := section("members")
	if err != nil {
		return nil, nil, nil, err
	}
	members, err := unmarshalMembership(mb)
	if err != nil {
		return nil, nil, nil, err
	}
	leases := lease.NewTable()
	if v2 {
		lb, err := section("leases")
		if err != nil {
			return nil, nil, nil, err
		}
		if leases, err = lease.Decode(lb); err != nil {
			return nil, nil, nil, err
		}
	}
	store, err := mvcc.Restore(bytes.NewReader(data))
	if err != nil {
		return nil, nil, nil, err
	}
	return store, members, leases, nil
}
