package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// The state in a snapshot (raft snapshot Data and the body of a snapshot
// file) is, version 5:
//
//	magic    "CAIRNST5"        8 bytes
//	members  uint32 length + JSON array of Member, sorted by ID
//	leases   uint32 length + lease.Table.Encode (with renewal counts)
//	alarms   uint32 length + JSON array of Alarm (the replicated ones: NOSPACE)
//	clock    uint32 length + lease.EncodeRemainders: the time each lease had
//	         left on the member that made the snapshot (not replicated state:
//	         a member restoring the snapshot starts its lease clock from it
//	         instead of a full TTL; empty in backups)
//	store    the rest: mvcc.Store.WriteTo
//
// Versions 1 ("CAIRNST1": no leases, no alarms), 2 ("CAIRNST2": no
// alarms), 3 ("CAIRNST3": leases without renewal counts) and 4
// ("CAIRNST4": no clock) are still read.
//
// The snapshot file adds its own checksum (internal/storage/snap).
var (
	stateMagic   = []byte("CAIRNST5")
	stateMagicV4 = []byte("CAIRNST4")
	stateMagicV3 = []byte("CAIRNST3")
	stateMagicV2 = []byte("CAIRNST2")
	stateMagicV1 = []byte("CAIRNST1")
)

// state is a decoded snapshot state.
type state struct {
	store      *mvcc.Store
	members    *membership
	leases     *lease.Table
	alarms     []Alarm
	leaseClock map[int64]time.Duration // nil: not recorded
}

// stateSections are the encoded sections of a state before its store.
type stateSections struct {
	members, leases, alarms, leaseClock []byte
}

var errBadState = errors.New("server: not a cairn state snapshot (bad magic or version)")

// encodeState streams the state to w (a snapshot file, through a buffer).
func encodeState(w io.Writer, store *mvcc.Store, secs stateSections) error {
	hdr := make([]byte, 0, 24+len(secs.members)+len(secs.leases)+len(secs.alarms)+len(secs.leaseClock))
	hdr = append(hdr, stateMagic...)
	for _, sec := range [][]byte{secs.members, secs.leases, secs.alarms, secs.leaseClock} {
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
	for v, magic := range [][]byte{stateMagicV1, stateMagicV2, stateMagicV3, stateMagicV4, stateMagic} {
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
	if version >= 5 {
		cb, err := section("lease clock")
		if err != nil {
			return nil, err
		}
		if len(cb) > 0 {
			if st.leaseClock, err = lease.DecodeRemainders(cb); err != nil {
				return nil, err
			}
		}
	}
	if st.store, err = mvcc.Restore(bytes.NewReader(data)); err != nil {
		return nil, err
	}
	return st, nil
}
