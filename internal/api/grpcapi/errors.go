package grpcapi

import (
	"context"
	"errors"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-db/cairn/internal/lease"
	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/server"
)

// toGRPC maps an error from the layers below to etcd's gRPC error, with
// errors.Is. An error it does not know becomes codes.Unknown with its text,
// as etcd does.
func toGRPC(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, server.ErrFenceStale) {
		return status.Error(codes.FailedPrecondition, err.Error())
	}
	for _, m := range errorMap {
		if errors.Is(err, m.err) {
			return m.grpc
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	return status.Error(codes.Unknown, err.Error())
}

var errorMap = []struct {
	err  error
	grpc error
}{
	{mvcc.ErrCompacted, rpctypes.ErrGRPCCompacted},
	{mvcc.ErrFutureRev, rpctypes.ErrGRPCFutureRev},
	{mvcc.ErrKeyNotFound, rpctypes.ErrGRPCKeyNotFound},
	{mvcc.ErrLeaseNotFound, rpctypes.ErrGRPCLeaseNotFound}, // also lease.ErrNotFound
	{lease.ErrExists, rpctypes.ErrGRPCLeaseExist},
	{lease.ErrTTLTooLarge, rpctypes.ErrGRPCLeaseTTLTooLarge},
	{mvcc.ErrTooManyOps, rpctypes.ErrGRPCTooManyOps},
	{mvcc.ErrDuplicateKey, rpctypes.ErrGRPCDuplicateKey},
	{mvcc.ErrEmptyKey, rpctypes.ErrGRPCEmptyKey},
	{mvcc.ErrValueProvided, rpctypes.ErrGRPCValueProvided},
	{mvcc.ErrLeaseProvided, rpctypes.ErrGRPCLeaseProvided},
	{mvcc.ErrInvalidSortOption, rpctypes.ErrGRPCInvalidSortOption},
	{server.ErrTimeout, rpctypes.ErrGRPCTimeout},
	{server.ErrNoLeader, rpctypes.ErrGRPCNoLeader},
	{server.ErrStopped, rpctypes.ErrGRPCStopped},
	{server.ErrRequestTooLarge, rpctypes.ErrGRPCRequestTooLarge},
	{server.ErrLeaderChanged, rpctypes.ErrGRPCLeaderChanged},
	{server.ErrNotLeader, rpctypes.ErrGRPCNotLeader},
	{server.ErrNoSpace, rpctypes.ErrGRPCNoSpace},
	{server.ErrMemberNotFound, rpctypes.ErrGRPCMemberNotFound},
	{server.ErrPeerURLExist, rpctypes.ErrGRPCPeerURLExist},
	{server.ErrMemberBadURLs, rpctypes.ErrGRPCMemberBadURLs},
	{server.ErrMemberNotLearner, rpctypes.ErrGRPCMemberNotLearner},
	{server.ErrLearnerNotReady, rpctypes.ErrGRPCLearnerNotReady},
	{server.ErrTooManyLearners, rpctypes.ErrGRPCTooManyLearners},
	{server.ErrUnhealthy, rpctypes.ErrGRPCUnhealthy},
	{server.ErrBadTransferee, rpctypes.ErrGRPCBadLeaderTransferee},
}
