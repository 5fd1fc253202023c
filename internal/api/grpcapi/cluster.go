package grpcapi

import (
	"context"
	"errors"
	"net/url"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cairn-db/cairn/internal/server"
)

// clusterServer is etcd's Cluster service.
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
	return &pb.MemberListResponse{Header: c.kv.header(c.kv.s.Rev()), Members: membersToPB(c.kv.s.Members())}, nil
}

func memberToPB(m server.Member) *pb.Member {
	return &pb.Member{ID: m.ID, Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs, IsLearner: m.IsLearner}
}

func membersToPB(ms []server.Member) []*pb.Member {
	out := make([]*pb.Member, len(ms))
	for i, m := range ms {
		out[i] = memberToPB(m)
	}
	return out
}

func (c *clusterServer) MemberAdd(ctx context.Context, r *pb.MemberAddRequest) (*pb.MemberAddResponse, error) {
	m, ms, err := c.kv.s.MemberAdd(ctx, r.PeerURLs, r.IsLearner)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MemberAddResponse{Header: c.kv.header(c.kv.s.Rev()), Member: memberToPB(m), Members: membersToPB(ms)}, nil
}

func (c *clusterServer) MemberRemove(ctx context.Context, r *pb.MemberRemoveRequest) (*pb.MemberRemoveResponse, error) {
	ms, err := c.kv.s.MemberRemove(ctx, r.ID)
	if errors.Is(err, server.ErrNotLeader) {
		conn, err := c.leaderConn()
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		return pb.NewClusterClient(conn).MemberRemove(ctx, r)
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MemberRemoveResponse{Header: c.kv.header(c.kv.s.Rev()), Members: membersToPB(ms)}, nil
}

func (c *clusterServer) MemberUpdate(ctx context.Context, r *pb.MemberUpdateRequest) (*pb.MemberUpdateResponse, error) {
	ms, err := c.kv.s.MemberUpdate(ctx, r.ID, r.PeerURLs)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MemberUpdateResponse{Header: c.kv.header(c.kv.s.Rev()), Members: membersToPB(ms)}, nil
}

// MemberPromote is decided by the leader (it alone knows whether the
// learner caught up): another member forwards the call to it, as etcd does.
func (c *clusterServer) MemberPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	ms, err := c.kv.s.MemberPromote(ctx, r.ID)
	if errors.Is(err, server.ErrNotLeader) {
		return c.forwardPromote(ctx, r)
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.MemberPromoteResponse{Header: c.kv.header(c.kv.s.Rev()), Members: membersToPB(ms)}, nil
}

func (c *clusterServer) forwardPromote(ctx context.Context, r *pb.MemberPromoteRequest) (*pb.MemberPromoteResponse, error) {
	conn, err := c.leaderConn()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return pb.NewClusterClient(conn).MemberPromote(ctx, r)
}

// leaderConn dials the leader's client URL, for the calls only the leader
// decides (promote, remove).
func (c *clusterServer) leaderConn() (*grpc.ClientConn, error) {
	lead := c.kv.s.Leader()
	for _, m := range c.kv.s.Members() {
		if m.ID != lead || len(m.ClientURLs) == 0 {
			continue
		}
		u, err := url.Parse(m.ClientURLs[0])
		if err != nil {
			break
		}
		conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, toGRPC(err)
		}
		return conn, nil
	}
	return nil, rpctypes.ErrGRPCNoLeader
}
