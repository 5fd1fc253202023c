// Package grpcapi serves etcd's v3 gRPC API over the server package: one
// file per service. Each method decodes the wire request into the store's
// own types, validates it without looking at state, calls the server, and
// maps errors to etcd's gRPC errors (errors.go). No logic lives here.
//
// Imports: etcd's api module (wire types, rpctypes), server, mvcc (types and
// stateless validators). Wire types never go below this package.
package grpcapi

import (
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	epb "go.etcd.io/etcd/server/v3/etcdserver/api/v3election/v3electionpb"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"

	"github.com/cairn-db/cairn/api/cairnpb"
	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/server"
)

// RaftInfo is what Maintenance.Status needs beyond the server.
type RaftInfo interface {
	CommittedIndex() uint64
	// StateSize is the size in bytes of the member's state as last
	// serialized (reported as the db size).
	StateSize() int64
}

// Config is what Register needs.
type Config struct {
	Server          *server.Server
	Raft            RaftInfo
	MaxTxnOps       int
	ElectionTimeout time.Duration // for WithRequireLeader watch streams
	// Self returns a client of this member's own API, for the Lock and
	// Election services.
	Self func() *clientv3.Client
}

// Register adds the KV, Watch, Lease, Lock, Election, Maintenance and Cluster services to g, which
// must have been made with serverCodec: use NewServer.
func Register(g *grpc.Server, cfg Config) {
	kv := &kvServer{s: cfg.Server, maxTxnOps: cfg.MaxTxnOps}
	pb.RegisterKVServer(g, kv)
	pb.RegisterMaintenanceServer(g, &maintenanceServer{kv: kv, raft: cfg.Raft})
	pb.RegisterClusterServer(g, &clusterServer{kv: kv})
	pb.RegisterLeaseServer(g, &leaseServer{kv: kv})
	v3lockpb.RegisterLockServer(g, &lockServer{self: cfg.Self})
	epb.RegisterElectionServer(g, &electionServer{self: cfg.Self})
	cairnpb.RegisterCoordinationServer(g, &coordServer{kv: kv})
	pb.RegisterWatchServer(g, &watchServer{kv: kv, reg: cfg.Server.Watches(), electionTimeout: cfg.ElectionTimeout})
}

// mvccHealthKey is a cheap read used as a linearizability barrier.
var mvccHealthKey = mvcc.RangeRequest{Key: []byte("health"), CountOnly: true}
