package grpcapi

import (
	"context"
	"errors"
	"strconv"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// The Lock and Election services are etcd's recipes run on the server
// (clientv3/concurrency over a client of this member's own KV, Lease and
// Watch API), exactly as etcd serves them, so that `etcdctl lock`,
// `etcdctl elect` and gRPC clients of v3lockpb / v3electionpb see etcd's
// behaviour. The client comes from Config.Self, made by the daemon once
// the member serves.

// lockServer is etcd's Lock service.
type lockServer struct {
	v3lockpb.UnimplementedLockServer
	self func() *clientv3.Client
}

// Lock waits until it owns the lock Name under the caller's lease (the key
// is Name/<lease in hex>) and returns that key. The lease is re-checked
// before the lock is granted: a lease that expired while waiting fails.
func (l *lockServer) Lock(ctx context.Context, req *v3lockpb.LockRequest) (*v3lockpb.LockResponse, error) {
	s, err := session(ctx, l.self, req.Lease)
	if err != nil {
		return nil, toGRPC(err)
	}
	m := concurrency.NewMutex(s, string(req.Name))
	if err := m.Lock(ctx); err != nil {
		return nil, toGRPC(err)
	}
	// The fencing token (the key's create revision) goes in the response
	// header metadata: LockResponse has no field for it.
	if c, err := selfClient(l.self); err == nil {
		if r, err := c.Get(ctx, m.Key()); err == nil && len(r.Kvs) == 1 {
			_ = grpc.SetHeader(ctx, metadata.Pairs(FencingTokenKey, strconv.FormatInt(r.Kvs[0].CreateRevision, 10)))
		}
	}
	return &v3lockpb.LockResponse{Header: m.Header(), Key: []byte(m.Key())}, nil
}

// Unlock deletes the lock's key.
func (l *lockServer) Unlock(ctx context.Context, req *v3lockpb.UnlockRequest) (*v3lockpb.UnlockResponse, error) {
	c, err := selfClient(l.self)
	if err != nil {
		return nil, err
	}
	resp, err := c.Delete(ctx, string(req.Key))
	if err != nil {
		return nil, toGRPC(err)
	}
	return &v3lockpb.UnlockResponse{Header: resp.Header}, nil
}

// errMissingLeaderKey is etcd's error for a Proclaim or Resign without a leader key.
var errMissingLeaderKey = errors.New(`"leader" field must be provided`)

// electionServer is etcd's Election service.
type electionServer struct {
	epb.UnimplementedElectionServer
	self func() *clientv3.Client
}

func (e *electionServer) Campaign(ctx context.Context, req *epb.CampaignRequest) (*epb.CampaignResponse, error) {
	s, err := session(ctx, e.self, req.Lease)
	if err != nil {
		return nil, toGRPC(err)
	}
	el := concurrency.NewElection(s, string(req.Name))
	if err := el.Campaign(ctx, string(req.Value)); err != nil {
		return nil, toGRPC(err)
	}
	return &epb.CampaignResponse{Header: el.Header(), Leader: &epb.LeaderKey{
		Name: req.Name, Key: []byte(el.Key()), Rev: el.Rev(), Lease: int64(s.Lease()),
	}}, nil
}

func (e *electionServer) Proclaim(ctx context.Context, req *epb.ProclaimRequest) (*epb.ProclaimResponse, error) {
	el, err := e.resume(ctx, req.Leader)
	if err != nil {
		return nil, toGRPC(err)
	}
	if err := el.Proclaim(ctx, string(req.Value)); err != nil {
		return nil, toGRPC(err)
	}
	return &epb.ProclaimResponse{Header: el.Header()}, nil
}

func (e *electionServer) Resign(ctx context.Context, req *epb.ResignRequest) (*epb.ResignResponse, error) {
	el, err := e.resume(ctx, req.Leader)
	if err != nil {
		return nil, toGRPC(err)
	}
	if err := el.Resign(ctx); err != nil {
		return nil, toGRPC(err)
	}
	return &epb.ResignResponse{Header: el.Header()}, nil
}

func (e *electionServer) Leader(ctx context.Context, req *epb.LeaderRequest) (*epb.LeaderResponse, error) {
	s, err := session(ctx, e.self, -1)
	if err != nil {
		return nil, toGRPC(err)
	}
	l, err := concurrency.NewElection(s, string(req.Name)).Leader(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &epb.LeaderResponse{Header: l.Header, Kv: l.Kvs[0]}, nil
}

// Observe streams the leader's key-value each time leadership or the
// proclaimed value changes.
func (e *electionServer) Observe(req *epb.LeaderRequest, stream epb.Election_ObserveServer) error {
	ctx := stream.Context()
	s, err := session(ctx, e.self, -1)
	if err != nil {
		return toGRPC(err)
	}
	ch := concurrency.NewElection(s, string(req.Name)).Observe(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case resp, ok := <-ch:
			if !ok {
				return ctx.Err()
			}
			if err := stream.Send(&epb.LeaderResponse{Header: resp.Header, Kv: resp.Kvs[0]}); err != nil {
				return err
			}
		}
	}
}

func (e *electionServer) resume(ctx context.Context, lk *epb.LeaderKey) (*concurrency.Election, error) {
	if lk == nil {
		return nil, errMissingLeaderKey
	}
	s, err := session(ctx, e.self, lk.Lease)
	if err != nil {
		return nil, err
	}
	return concurrency.ResumeElection(s, string(lk.Name), string(lk.Key), lk.Rev), nil
}

// selfClient returns the member's own client, or ErrGRPCStopped once the
// member is stopping.
func selfClient(self func() *clientv3.Client) (*clientv3.Client, error) {
	if c := self(); c != nil {
		return c, nil
	}
	return nil, rpctypes.ErrGRPCStopped
}

// session wraps the caller's lease (etcd's recipes need one) without
// keeping it alive: the caller does that.
func session(ctx context.Context, self func() *clientv3.Client, lease int64) (*concurrency.Session, error) {
	c, err := selfClient(self)
	if err != nil {
		return nil, err
	}
	s, err := concurrency.NewSession(c, concurrency.WithLease(clientv3.LeaseID(lease)), concurrency.WithContext(ctx))
	if err != nil {
		return nil, err
	}
	s.Orphan()
	return s, nil
}
