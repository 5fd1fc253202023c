package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A backup is the replicated state at one applied index, in a file that
// etcdctl accepts as an etcd snapshot:
//
//	magic    "CAIRNBK1"                   8 bytes
//	header   uint32 length + JSON BackupInfo
//	state    uint64 length + the state as in a raft snapshot (state.go)
//	padding  zero bytes up to a multiple of 512
//	sha256   of everything before it      32 bytes
//
// etcd appends the SHA-256 of its database to the snapshot stream;
// etcdctl snapshot save requires a stream that ends with one, which it
// recognizes by the size (32 more than a multiple of 512, a bbolt file's
// size being a multiple of its page size), and etcdutl verifies the hash
// on restore. The padding makes Cairn's stream end the same way; ReadBackup
// (cairn snapshot status and restore) verifies the hash.

var backupMagic = []byte("CAIRNBK1")

// ErrBadBackup is returned for a file that is not a complete, intact backup.
var ErrBadBackup = errors.New("server: not an intact cairn backup")

// BackupInfo describes a backup.
type BackupInfo struct {
	Version   int       `json:"version"`
	ClusterID uint64    `json:"cluster_id"`
	MemberID  uint64    `json:"member_id"` // the member that made it
	Index     uint64    `json:"index"`     // raft index applied
	Revision  int64     `json:"revision"`
	Compacted int64     `json:"compact_revision"`
	Keys      int       `json:"keys"`
	Leases    int       `json:"leases"`
	Members   []Member  `json:"members"`
	Created   time.Time `json:"created"`
}

// Backup returns the member's applied state as a backup file's bytes, after
// a linearizable read barrier (the backup contains every write acknowledged
// before the call). The state is cloned under the apply lock (copy-on-write)
// and serialized outside it.
func (s *Server) Backup(ctx context.Context) ([]byte, BackupInfo, error) {
	if err := s.linearizableReadNotify(ctx); err != nil {
		return nil, BackupInfo{}, err
	}
	s.mu.RLock()
	store := s.store.Clone()
	// No lease clock: a backup is restored into a new cluster, whose
	// leases start from their full TTL.
	secs := stateSections{members: s.members.marshal(), leases: s.leases.Encode(nil), alarms: s.marshalAlarmsLocked()}
	info := BackupInfo{Version: 1, ClusterID: s.cfg.ClusterID, MemberID: s.cfg.MemberID, Index: s.applied.Applied(),
		Revision: s.store.Rev(), Compacted: s.store.CompactRev(), Keys: s.store.KeyCount(), Leases: s.leases.Len(),
		Members: s.members.list(), Created: time.Now().UTC()}
	s.mu.RUnlock()
	var state bytes.Buffer
	if err := encodeState(&state, store, secs); err != nil {
		return nil, BackupInfo{}, err
	}
	return EncodeBackup(info, state.Bytes()), info, nil
}

// EncodeBackup returns a backup file's bytes for info and state (an encoded
// state section, as Backup makes; ReadBackup reads them back).
func EncodeBackup(info BackupInfo, state []byte) []byte {
	hdr, _ := json.Marshal(info)
	b := make([]byte, 0, len(backupMagic)+4+len(hdr)+8+len(state)+512+sha256.Size)
	b = append(b, backupMagic...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hdr)))
	b = append(b, hdr...)
	b = binary.BigEndian.AppendUint64(b, uint64(len(state)))
	b = append(b, state...)
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// ReadBackup checks a backup file's checksum and returns its description
// and its state section.
func ReadBackup(b []byte) (BackupInfo, []byte, error) {
	var info BackupInfo
	if len(b) < len(backupMagic)+4+8+sha256.Size || (len(b)-sha256.Size)%512 != 0 {
		return info, nil, fmt.Errorf("%w: %d bytes is not a backup's size (truncated?)", ErrBadBackup, len(b))
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if got := sha256.Sum256(body); !bytes.Equal(got[:], sum) {
		return info, nil, fmt.Errorf("%w: SHA-256 mismatch (damaged or truncated)", ErrBadBackup)
	}
	if !bytes.Equal(body[:len(backupMagic)], backupMagic) {
		return info, nil, fmt.Errorf("%w: bad magic (not made by cairn snapshot save?)", ErrBadBackup)
	}
	body = body[len(backupMagic):]
	n := binary.BigEndian.Uint32(body)
	body = body[4:]
	if uint64(n)+8 > uint64(len(body)) {
		return info, nil, fmt.Errorf("%w: truncated header", ErrBadBackup)
	}
	if err := json.Unmarshal(body[:n], &info); err != nil {
		return info, nil, fmt.Errorf("%w: header: %v", ErrBadBackup, err)
	}
	body = body[n:]
	m := binary.BigEndian.Uint64(body)
	body = body[8:]
	if m > uint64(len(body)) {
		return info, nil, fmt.Errorf("%w: truncated state", ErrBadBackup)
	}
	for _, c := range body[m:] {
		if c != 0 {
			return info, nil, fmt.Errorf("%w: non-zero padding", ErrBadBackup)
		}
	}
	return info, body[:m], nil
}

// RestoredState re-encodes a backup's state for a new cluster: the same
// keys, history and leases, with members as its member table.
func RestoredState(state []byte, members []Member) ([]byte, error) {
	st, err := decodeState(state)
	if err != nil {
		return nil, err
	}
	store, leases := st.store, st.leases
	ms := newMembership()
	for i := range members {
		m := members[i]
		ms.add(&m)
	}
	var out bytes.Buffer
	// The old members' alarms do not carry over to the new cluster.
	if err := encodeState(&out, store, stateSections{members: ms.marshal(), leases: leases.Encode(nil)}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
