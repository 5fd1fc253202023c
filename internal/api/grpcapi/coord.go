package grpcapi

import (
	"context"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/cairn-db/cairn/api/cairnpb"
	"github.com/cairn-db/cairn/internal/mvcc"
)

// Guarded writes: a Put, DeleteRange or Txn whose call carries the metadata
// FenceLockKey (a lock's name) and FenceTokenKey (a fencing token, decimal)
// is applied only if the token is that lock's current holder's; otherwise
// it fails with FailedPrecondition and changes nothing. The metadata keys
// are cairnclient.WithFence's.
const (
	FenceLockKey  = "cairn-fence-lock"
	FenceTokenKey = "cairn-fence-token"
	// FencingTokenKey is the response header metadata in which the Lock
	// service returns the holder's fencing token.
	FencingTokenKey = "cairn-fencing-token"
)

// fenceFromContext reads a guarded write's lock and token from the call's
// metadata.
func fenceFromContext(ctx context.Context) (lock string, token int64, ok bool, err error) {
	md, _ := metadata.FromIncomingContext(ctx)
	locks, tokens := md.Get(FenceLockKey), md.Get(FenceTokenKey)
	if len(locks) == 0 && len(tokens) == 0 {
		return "", 0, false, nil
	}
	if len(locks) != 1 || len(tokens) != 1 || locks[0] == "" {
		return "", 0, false, status.Errorf(codes.InvalidArgument, "cairn: a guarded write needs exactly one %s and one %s", FenceLockKey, FenceTokenKey)
	}
	token, perr := strconv.ParseInt(tokens[0], 10, 64)
	if perr != nil || token <= 0 {
		return "", 0, false, status.Errorf(codes.InvalidArgument, "cairn: %s %q is not a positive revision", FenceTokenKey, tokens[0])
	}
	return locks[0], token, true, nil
}

// write runs a writing txn, guarded when the call carries a fence.
func (k *kvServer) write(ctx context.Context, req *mvcc.TxnRequest, serializable bool) (*mvcc.TxnResult, int64, error) {
	lock, token, ok, err := fenceFromContext(ctx)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return k.s.Txn(ctx, req, serializable)
	}
	return k.s.GuardedTxn(ctx, lock, token, req)
}

// coordServer is Cairn's Coordination service.
type coordServer struct {
	cairnpb.UnimplementedCoordinationServer
	kv *kvServer
}

func (c *coordServer) CreateSequential(ctx context.Context, r *cairnpb.CreateSequentialRequest) (*cairnpb.CreateSequentialResponse, error) {
	if err := mvcc.ValidatePut(&mvcc.PutRequest{Key: append(append([]byte(nil), r.Prefix...), '0'), Value: r.Value, Lease: r.Lease}); err != nil {
		return nil, toGRPC(err)
	}
	key, rev, err := c.kv.s.CreateSequential(ctx, r.Prefix, r.Value, r.Lease)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &cairnpb.CreateSequentialResponse{Revision: rev, Key: key, Sequence: rev, MemberId: c.kv.s.MemberID(), RaftTerm: c.kv.s.Term()}, nil
}
