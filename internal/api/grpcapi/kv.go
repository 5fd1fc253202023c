package grpcapi

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"

	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/server"
)

// kvServer is etcd's KV service: decode, validate, call the server, map errors.
type kvServer struct {
	pb.UnimplementedKVServer // RangeStream answers Unimplemented: clients fall back to Range
	s                        *server.Server
	maxTxnOps                int
}

func (k *kvServer) header(rev int64) *pb.ResponseHeader {
	return &pb.ResponseHeader{ClusterId: k.s.ClusterID(), MemberId: k.s.MemberID(), Revision: rev, RaftTerm: k.s.Term()}
}

func (k *kvServer) Range(ctx context.Context, r *pb.RangeRequest) (*pb.RangeResponse, error) {
	req := rangeFromPB(r)
	if err := mvcc.ValidateRange(req); err != nil {
		return nil, toGRPC(err)
	}
	res, rev, err := k.s.Range(ctx, req, r.Serializable)
	if err != nil {
		return nil, toGRPC(err)
	}
	return rangeToPB(res, k.header(rev)), nil
}

func (k *kvServer) Put(ctx context.Context, r *pb.PutRequest) (*pb.PutResponse, error) {
	req := putFromPB(r)
	if err := mvcc.ValidatePut(req); err != nil {
		return nil, toGRPC(err)
	}
	res, rev, err := k.write(ctx, &mvcc.TxnRequest{Success: []mvcc.Op{{Put: req}}}, false)
	if err != nil {
		return nil, toGRPC(err)
	}
	return putToPB(res.Results[0].Put, k.header(rev)), nil
}

func (k *kvServer) DeleteRange(ctx context.Context, r *pb.DeleteRangeRequest) (*pb.DeleteRangeResponse, error) {
	req := deleteFromPB(r)
	if err := mvcc.ValidateDelete(req); err != nil {
		return nil, toGRPC(err)
	}
	res, rev, err := k.write(ctx, &mvcc.TxnRequest{Success: []mvcc.Op{{Delete: req}}}, false)
	if err != nil {
		return nil, toGRPC(err)
	}
	return deleteToPB(res.Results[0].Delete, k.header(rev)), nil
}

func (k *kvServer) Txn(ctx context.Context, r *pb.TxnRequest) (*pb.TxnResponse, error) {
	req := txnFromPB(r)
	if err := mvcc.ValidateTxn(req, k.maxTxnOps); err != nil {
		return nil, toGRPC(err)
	}
	res, rev, err := k.write(ctx, req, txnSerializable(r))
	if err != nil {
		return nil, toGRPC(err)
	}
	return txnToPB(res, k.header(rev), rev), nil
}

func (k *kvServer) Compact(ctx context.Context, r *pb.CompactionRequest) (*pb.CompactionResponse, error) {
	rev, err := k.s.Compact(ctx, r.Revision)
	if err != nil {
		return nil, toGRPC(err)
	}
	return &pb.CompactionResponse{Header: k.header(rev)}, nil
}
