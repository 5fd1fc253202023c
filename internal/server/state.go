package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// The replicated state in a snapshot (raft snapshot Data and the body of a
// snapshot file) is, version 4:
//
//	magic    "CAIRNST4"        8 bytes
//	members  uint32 length + JSON array of Member, sorted by ID
//	leases   uint32 length + lease.Table.Encode (with renewal counts)
//	alarms   uint32 length + JSON array of Alarm (the replicated ones: NOSPACE)
//	store    the rest: mvcc.Store.WriteTo
//
// Versions 1 ("CAIRNST1": no leases, no alarms), 2 ("CAIRNST2": no
// alarms) and 3 ("CAIRNST3": leases without renewal counts) are still read.
//
// The snapshot file adds its own checksum (internal/storage/snap).
var (
	stateMagic   = []byte("CAIRNST4")
	stateMagicV3 = []byte("CAIRNST3")
	stateMagicV2 = []byte("CAIRNST2")
	stateMagicV1 = []byte("CAIRNST1")
)

// state is a decoded snapshot state.
type state struct {
	store   *mvcc.Store
	members *membership
	leases  *lease.Table
	alarms  []Alarm
}

var errBadState = errors.New("server: not a cairn state snapshot (bad magic or version)")

// encodeState streams the state to w (a snapshot file, through a buffer).
func encodeState(w io.Writer, store *mvcc.Store, members, leases, alarms []byte) error {
	hdr := make([]byte, 0, 20+len(members)+len(leases)+len(alarms))
	hdr = append(hdr, stateMagic...)
	for _, sec := range [][]byte{members, leases, alarms} {
		hdr = binary.BigEndian.AppendUint32(hdr, uint32(len(sec)))
		hdr = append(hdr, sec...)
	}
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	_, err := store.WriteTo(w)
	return err
}

func decodeState(data []byte) (*state, error) {
	if len(data) < len(stateMagic) {
		return nil, errBadState
	}
	version := 0
	for v, magic := range [][]byte{stateMagicV1, stateMagicV2, stateMagicV3, stateMagic} {
		if bytes.Equal(data[:len(magic)], magic) {
			version = v + 1
		}
	}
	if version == 0 {
		return nil, errBadState
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
	st := &state{leases: lease.NewTable()}
	mb, err := section("members")
	if err != nil {
		return nil, err
	}
	if st.members, err = unmarshalMembership(mb); err != nil {
		return nil, err
	}
	if version >= 2 {
		lb, err := section("leases")
		if err != nil {
			return nil, err
		}
		decode := lease.Decode
		if version < 4 {
			decode = lease.DecodeWithoutRenewals
		}
		if st.leases, err = decode(lb); err != nil {
			return nil, err
		}
	}
	if version >= 3 {
		ab, err := section("alarms")
		if err != nil {
			return nil, err
		}
		if len(ab) > 0 {
			if err := json.Unmarshal(ab, &st.alarms); err != nil {
				return nil, fmt.Errorf("server: state snapshot alarms: %w", err)
			}
		}
	}
	if st.store, err = mvcc.Restore(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return st, nil
}
