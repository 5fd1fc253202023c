package grpcapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-db/cairn/internal/server"
)

// clusterServer is etcd's Cluster service. Member add, remove, update and
// promote answer Unimplemented until the membership issue lands.
type clusterServer struct {
	pb.UnimplementedClusterServer
	kv *kvServer
}

func (c *clusterServer) MemberList(ctx context.Context, r *pb.MemberListRequest) (*pb.MemberListResponse, error) {
	if r.Linearizable {
		// A linearizable member list waits for a ReadIndex round, as a read does.
		if _, _, err := c.kv.s.Range(ctx, &mvccHealthKey, false); err != nil {
			return nil, toGRPC(err)
		}
	}
	members := c.kv.s.Members()
	resp := &pb.MemberListResponse{Header: c.kv.header(c.kv.s.Rev()), Members: make([]*pb.Member, len(members))}
	for i, m := range members {
		resp.Members[i] = memberToPB(m)
	}
	return resp, nil
}

func memberToPB(m server.Member) *pb.Member {
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}
