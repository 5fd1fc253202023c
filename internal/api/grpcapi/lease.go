package grpcapi

import (
	"context"
	"errors"
	"io"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-db/cairn/internal/lease"
)

// leaseServer is etcd's Lease service.
type leaseServer struct {
	pb.UnimplementedLeaseServer
	kv *kvServer
}

func (l *leaseServer) LeaseGrant(ctx context.Context, r *pb.LeaseGrantRequest) (*pb.LeaseGrantResponse, error) {
	id, ttl, rev, err := l.kv.s.LeaseGrant(ctx, r.ID, r.TTL)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseGrantResponse{Header: l.kv.header(rev), ID: id, TTL: ttl}, nil
}

func (l *leaseServer) LeaseRevoke(ctx context.Context, r *pb.LeaseRevokeRequest) (*pb.LeaseRevokeResponse, error) {
	rev, err := l.kv.s.LeaseRevoke(ctx, r.ID)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.LeaseRevokeResponse{Header: l.kv.header(rev)}, nil
}

// LeaseTimeToLive answers TTL -1 for a lease that does not exist, as etcd.
func (l *leaseServer) LeaseTimeToLive(ctx context.Context, r *pb.LeaseTimeToLiveRequest) (*pb.LeaseTimeToLiveResponse, error) {
	info, rev, err := l.kv.s.LeaseTimeToLive(ctx, r.ID, r.Keys)
	if errors.Is(err, lease.ErrNotFound) {
		return &pb.LeaseTimeToLiveResponse{Header: l.kv.header(rev), ID: r.ID, TTL: -1}, nil
	}
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &pb.LeaseTimeToLiveResponse{Header: l.kv.header(rev), ID: info.ID, TTL: info.TTL, GrantedTTL: info.GrantedTTL}
	for _, k := range info.Keys {
		resp.Keys = append(resp.Keys, []byte(k))
	}
	return resp, nil
}

func (l *leaseServer) LeaseLeases(ctx context.Context, _ *pb.LeaseLeasesRequest) (*pb.LeaseLeasesResponse, error) {
	ids, rev, err := l.kv.s.LeaseIDs(ctx)
	if err != nil {
		return nil, toGRPC(err)
	}
	resp := &pb.LeaseLeasesResponse{Header: l.kv.header(rev), Leases: make([]*pb.LeaseStatus, len(ids))}
	for i, id := range ids {
		resp.Leases[i] = &pb.LeaseStatus{ID: id}
	}
	return resp, nil
}

// maxKeepAlivesInFlight bounds the renewals one keepalive stream has
// proposed and not yet answered: clientv3 sends every lease of a client on
// one stream, and a renewal waits for its commit.
const maxKeepAlivesInFlight = 128

// LeaseKeepAlive renews each lease named on the stream and answers with its
// TTL, 0 for a lease that does not exist (as etcd). Renewals run
// concurrently, so answers may come in another order than the requests.
func (l *leaseServer) LeaseKeepAlive(stream pb.Lease_LeaseKeepAliveServer) error {
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	var (
		sendMu  sync.Mutex // serializes Send
		errOnce sync.Once
		failed  = make(chan error, 1)
		wg      sync.WaitGroup
		slots   = make(chan struct{}, maxKeepAlivesInFlight)
	)
	defer wg.Wait()
	fail := func(err error) {
		errOnce.Do(func() { failed <- err; cancel() })
	}
	reqs := make(chan *pb.LeaseKeepAliveRequest)
	go func() {
		defer close(reqs)
		for {
			req, err := stream.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					fail(err)
				}
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var req *pb.LeaseKeepAliveRequest
		var ok bool
		select {
		case req, ok = <-reqs:
		case err := <-failed:
			return err
		}
		if !ok {
			wg.Wait()
			select {
			case err := <-failed:
				return err
			default:
				return nil
			}
		}
		select {
		case slots <- struct{}{}:
		case err := <-failed:
			return err
		}
		wg.Add(1)
		go func(id int64) {
			defer wg.Done()
			defer func() { <-slots }()
			ttl, rev, err := l.kv.s.LeaseRenew(ctx, id)
			if errors.Is(err, lease.ErrNotFound) {
				ttl, err = 0, nil
			}
			if err != nil {
				fail(toGRPC(err))
				return
			}
			sendMu.Lock()
			err = stream.Send(&pb.LeaseKeepAliveResponse{Header: l.kv.header(rev), ID: id, TTL: ttl})
			sendMu.Unlock()
			if err != nil {
				fail(err)
			}
		}(req.ID)
	}
}
