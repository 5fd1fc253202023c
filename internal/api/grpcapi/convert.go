package grpcapi

import (
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// Conversions between etcd's wire types and the store's own types. Wire
// types stop here: nothing below this package sees them.

func rangeFromPB(r *pb.RangeRequest) *mvcc.RangeRequest {
	return &mvcc.RangeRequest{
		Key: r.Key, End: r.RangeEnd, Limit: r.Limit, Revision: r.Revision,
		SortOrder: mvcc.SortOrder(r.SortOrder), SortTarget: mvcc.SortTarget(r.SortTarget),
		KeysOnly: r.KeysOnly, CountOnly: r.CountOnly,
		MinModRevision: r.MinModRevision, MaxModRevision: r.MaxModRevision,
		MinCreateRevision: r.MinCreateRevision, MaxCreateRevision: r.MaxCreateRevision,
	}
}

func putFromPB(r *pb.PutRequest) *mvcc.PutRequest {
	return &mvcc.PutRequest{Key: r.Key, Value: r.Value, Lease: r.Lease, PrevKV: r.PrevKv, IgnoreValue: r.IgnoreValue, IgnoreLease: r.IgnoreLease}
}

func deleteFromPB(r *pb.DeleteRangeRequest) *mvcc.DeleteRequest {
	return &mvcc.DeleteRequest{Key: r.Key, End: r.RangeEnd, PrevKV: r.PrevKv}
}

func txnFromPB(r *pb.TxnRequest) *mvcc.TxnRequest {
	t := &mvcc.TxnRequest{
		Compare: make([]mvcc.Compare, len(r.Compare)),
		Success: opsFromPB(r.Success),
		Failure: opsFromPB(r.Failure),
	}
	for i, c := range r.Compare {
		mc := mvcc.Compare{Target: mvcc.CompareTarget(c.Target), Result: mvcc.CompareResult(c.Result), Key: c.Key, End: c.RangeEnd}
		switch u := c.TargetUnion.(type) {
		case *pb.Compare_Version:
			mc.Version = u.Version
		case *pb.Compare_CreateRevision:
			mc.CreateRevision = u.CreateRevision
		case *pb.Compare_ModRevision:
			mc.ModRevision = u.ModRevision
		case *pb.Compare_Value:
			mc.Value = u.Value
		case *pb.Compare_Lease:
			mc.Lease = u.Lease
		}
		t.Compare[i] = mc
	}
	return t
}

func opsFromPB(ops []*pb.RequestOp) []mvcc.Op {
	if len(ops) == 0 {
		return nil
	}
	out := make([]mvcc.Op, len(ops))
	for i, op := range ops {
		switch u := op.Request.(type) {
		case *pb.RequestOp_RequestRange:
			out[i].Range = rangeFromPB(u.RequestRange)
		case *pb.RequestOp_RequestPut:
			out[i].Put = putFromPB(u.RequestPut)
		case *pb.RequestOp_RequestDeleteRange:
			out[i].Delete = deleteFromPB(u.RequestDeleteRange)
		case *pb.RequestOp_RequestTxn:
			out[i].Txn = txnFromPB(u.RequestTxn)
		}
	}
	return out
}

func kvToPB(kv *mvcc.KeyValue) *mvccpb.KeyValue {
	if kv == nil {
		return nil
	}
	return &mvccpb.KeyValue{Key: kv.Key, CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision, Version: kv.Version, Value: kv.Value, Lease: kv.Lease}
}

func kvsToPB(kvs []*mvcc.KeyValue) []*mvccpb.KeyValue {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]*mvccpb.KeyValue, len(kvs))
	for i, kv := range kvs {
		out[i] = kvToPB(kv)
	}
	return out
}

func rangeToPB(r *mvcc.RangeResult, h *pb.ResponseHeader) *pb.RangeResponse {
	return &pb.RangeResponse{Header: h, Kvs: kvsToPB(r.KVs), More: r.More, Count: r.Count}
}

func putToPB(r *mvcc.PutResult, h *pb.ResponseHeader) *pb.PutResponse {
	return &pb.PutResponse{Header: h, PrevKv: kvToPB(r.PrevKV)}
}

func deleteToPB(r *mvcc.DeleteResult, h *pb.ResponseHeader) *pb.DeleteRangeResponse {
	return &pb.DeleteRangeResponse{Header: h, Deleted: r.Deleted, PrevKvs: kvsToPB(r.PrevKVs)}
}

// txnToPB converts a txn result. Like etcd, nested responses carry a header
// holding only the revision the op saw: the txn's start revision until its
// first change, then the txn's own revision; nested txns carry an empty one.
func txnToPB(r *mvcc.TxnResult, h *pb.ResponseHeader, finalRev int64) *pb.TxnResponse {
	begin := finalRev
	if txnChanged(r) {
		begin = finalRev - 1
	}
	w := &revWalker{rev: begin}
	return w.txn(r, h)
}

type revWalker struct {
	rev     int64
	changed bool
}

func (w *revWalker) txn(r *mvcc.TxnResult, h *pb.ResponseHeader) *pb.TxnResponse {
	resp := &pb.TxnResponse{Header: h, Succeeded: r.Succeeded, Responses: make([]*pb.ResponseOp, len(r.Results))}
	for i, res := range r.Results {
		op := &pb.ResponseOp{}
		switch {
		case res.Range != nil:
			op.Response = &pb.ResponseOp_ResponseRange{ResponseRange: rangeToPB(res.Range, &pb.ResponseHeader{Revision: w.rev})}
		case res.Put != nil:
			w.change()
			op.Response = &pb.ResponseOp_ResponsePut{ResponsePut: putToPB(res.Put, &pb.ResponseHeader{Revision: w.rev})}
		case res.Delete != nil:
			if res.Delete.Deleted > 0 {
				w.change()
			}
			op.Response = &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: deleteToPB(res.Delete, &pb.ResponseHeader{Revision: w.rev})}
		case res.Txn != nil:
			op.Response = &pb.ResponseOp_ResponseTxn{ResponseTxn: w.txn(res.Txn, &pb.ResponseHeader{})}
		}
		resp.Responses[i] = op
	}
	return resp
}

func (w *revWalker) change() {
	if !w.changed {
		w.changed = true
		w.rev++
	}
}

func txnChanged(r *mvcc.TxnResult) bool {
	for _, res := range r.Results {
		if res.Put != nil || (res.Delete != nil && res.Delete.Deleted > 0) || (res.Txn != nil && txnChanged(res.Txn)) {
			return true
		}
	}
	return false
}

// txnSerializable reports whether every range in a read-only txn asked to
// be serializable (etcd's rule for serving a txn without ReadIndex).
func txnSerializable(r *pb.TxnRequest) bool {
	for _, ops := range [][]*pb.RequestOp{r.Success, r.Failure} {
		for _, op := range ops {
			if rr := op.GetRequestRange(); rr != nil && !rr.Serializable {
				return false
			}
			if t := op.GetRequestTxn(); t != nil && !txnSerializable(t) {
				return false
			}
		}
	}
	return true
}
