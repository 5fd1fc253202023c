package grpcapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-db/cairn/internal/server"
)

// Version is the etcd API version Cairn reports in Status: the etcd release
// whose v3 API semantics it implements.
const Version = "3.7.3"

// maintenanceServer is etcd's Maintenance service. Downgrade answers
// Unimplemented (Cairn has one storage version).
type maintenanceServer struct {
	pb.UnimplementedMaintenanceServer
	kv   *kvServer
	raft RaftInfo
}

func (m *maintenanceServer) Status(ctx context.Context, r *pb.StatusRequest) (*pb.StatusResponse, error) {
	st := m.kv.s.Status()
	resp := &pb.StatusResponse{
		Header:           m.kv.header(st.Revision),
		Version:          Version,
		Leader:           st.Leader,
		RaftIndex:        m.raft.CommittedIndex(),
		RaftAppliedIndex: st.AppliedIndex,
		RaftTerm:         st.Term,
		DbSize:           m.raft.StateSize(), // the last snapshot's size on disk
		DbSizeInUse:      st.DataBytes,       // what the quota measures
		DbSizeQuota:      st.QuotaBytes,
		IsLearner:        st.IsLearner,
		StorageVersion:   "3.7.0",
		DowngradeInfo:    &pb.DowngradeInfo{},
	}
	if st.Leader == 0 {
		resp.Errors = append(resp.Errors, "etcdserver: no leader")
	}
	return resp, nil
}

func (m *maintenanceServer) Hash(ctx context.Context, r *pb.HashRequest) (*pb.HashResponse, error) {
	h, rev := m.kv.s.Hash()
	return &pb.HashResponse{Header: m.kv.header(rev), Hash: h}, nil
}

func (m *maintenanceServer) HashKV(ctx context.Context, r *pb.HashKVRequest) (*pb.HashKVResponse, error) {
	h, hashRev, compactRev, rev, err := m.kv.s.HashKV(ctx, r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.HashKVResponse{Header: m.kv.header(rev), Hash: h, CompactRevision: compactRev, HashRevision: hashRev}, nil
}

// Alarm lists, raises and clears alarms as etcd's: NOSPACE is replicated
// (raised by the space quota, cleared with DEACTIVATE, e.g. etcdctl alarm
// disarm); CORRUPT is what this member's corruption check found (a corrupt
// member stops by itself), and DEACTIVATE drops it from the list.
func (m *maintenanceServer) Alarm(ctx context.Context, r *pb.AlarmRequest) (*pb.AlarmResponse, error) {
	resp := &pb.AlarmResponse{}
	toPB := func(a server.Alarm) *pb.AlarmMember {
		typ := pb.AlarmType_NOSPACE
		if a.Type == "CORRUPT" {
			typ = pb.AlarmType_CORRUPT
		}
		return &pb.AlarmMember{MemberID: a.MemberID, Alarm: typ}
	}
	switch r.Action {
	case pb.AlarmRequest_GET:
		// Linearizable, as etcd's (which reads alarms through raft): an alarm
		// raised by another member is listed once it is committed.
		if _, _, err := m.kv.s.Range(ctx, &mvccHealthKey, false); err != nil {
			return nil, toGRPC(err)
		}
		for _, a := range m.kv.s.Alarms() {
			resp.Alarms = append(resp.Alarms, toPB(a))
		}
	case pb.AlarmRequest_ACTIVATE, pb.AlarmRequest_DEACTIVATE:
		// As etcd, the answer lists the alarm the call raised or cleared.
		activate := r.Action == pb.AlarmRequest_ACTIVATE
		typ := "NOSPACE"
		if r.Alarm == pb.AlarmType_CORRUPT {
			typ = "CORRUPT"
		}
		had := false
		for _, a := range m.kv.s.Alarms() {
			had = had || (a.MemberID == r.MemberID && a.Type == typ)
		}
		switch {
		case r.Alarm == pb.AlarmType_NOSPACE:
			if err := m.kv.s.SetAlarm(ctx, activate, r.MemberID, typ); err != nil {
				return nil, toGRPC(err)
			}
		case r.Alarm == pb.AlarmType_CORRUPT && !activate:
			m.kv.s.ClearLocalAlarm(r.MemberID, typ)
		default:
			return &pb.AlarmResponse{Header: m.kv.header(m.kv.s.Rev())}, nil // CORRUPT is raised by the check only
		}
		if activate != had {
			resp.Alarms = append(resp.Alarms, toPB(server.Alarm{MemberID: r.MemberID, Type: typ}))
		}
	}
	resp.Header = m.kv.header(m.kv.s.Rev())
	return resp, nil
}

// Defragment succeeds at once: the store lives in memory and its files are
// rewritten whole by every snapshot, so there is nothing to defragment.
func (m *maintenanceServer) Defragment(ctx context.Context, r *pb.DefragmentRequest) (*pb.DefragmentResponse, error) {
	return &pb.DefragmentResponse{Header: m.kv.header(m.kv.s.Rev())}, nil
}

// snapshotChunk is the size of the blobs a Snapshot stream sends (etcd's).
const snapshotChunk = 32 * 1024

// Snapshot streams a backup of the member's state (server.Backup: a
// consistent copy after a linearizable read barrier), ending, like etcd's
// stream, with the SHA-256 of what came before (etcdctl snapshot save
// requires that ending; cairn snapshot status and restore verify the hash).
func (m *maintenanceServer) Snapshot(_ *pb.SnapshotRequest, stream pb.Maintenance_SnapshotServer) error {
	b, info, err := m.kv.s.Backup(stream.Context())
	if err != nil {
		return toGRPC(err)
	}
	for off := 0; off < len(b); off += snapshotChunk {
		end := min(off+snapshotChunk, len(b))
		resp := &pb.SnapshotResponse{Header: m.kv.header(info.Revision), RemainingBytes: uint64(len(b) - end), Blob: b[off:end], Version: Version}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	return nil
}

// MoveLeader hands leadership to another voting member; only the leader
// accepts it (etcdctl move-leader finds the leader first).
func (m *maintenanceServer) MoveLeader(ctx context.Context, r *pb.MoveLeaderRequest) (*pb.MoveLeaderResponse, error) {
	if err := m.kv.s.MoveLeader(ctx, r.TargetID); err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MoveLeaderResponse{Header: m.kv.header(m.kv.s.Rev())}, nil
}
