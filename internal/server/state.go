package server

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// The replicated state in a snapshot (raft snapshot Data and the body of a
// snapshot file) is, version 1:
//
//	magic    "CAIRNST1"        8 bytes
//	members  uint32 length + JSON array of Member, sorted by ID
//	store    the rest: mvcc.Store.WriteTo
//
// The snapshot file adds its own checksum (internal/storage/snap).
var stateMagic = []byte("CAIRNST1")

var errBadState = errors.New("server: not a cairn state snapshot (bad magic or version)")

// encodeState streams the state to w (a snapshot file, through a buffer).
func encodeState(w io.Writer, store *mvcc.Store, members []byte) error {
	var hdr [12]byte
	copy(hdr[:], stateMagic)
	binary.BigEndian.PutUint32(hdr[8:], uint32(len(members)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	if _, err := w.Write(members); err != nil {
		return err
	}
	_, err := store.WriteTo(w)
	return err
}

func decodeState(data []byte) (*mvcc.Store, *membership, error) {
	if len(data) < len(stateMagic)+4 || !bytes.Equal(data[:len(stateMagic)], stateMagic) {
		return nil, nil, errBadState
	}
	data = data[len(stateMagic):]
	n := binary.BigEndian.Uint32(data)
	data = data[4:]
	if uint64(n) > uint64(len(data)) {
		return nil, nil, fmt.Errorf("server: truncated state snapshot: %w", io.ErrUnexpectedEOF)
	}
	members, err := unmarshalMembership(data[:n])
	if err != nil {
		return nil, nil, err
	}
	store, err := mvcc.Restore(bytes.NewReader(data[n:]))
	if err != nil {
		return nil, nil, err
	}
	return store, members, nil
}
