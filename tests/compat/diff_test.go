// Package compat holds differential tests: the same requests are sent to a
// real etcd and to Cairn, and every response and error must be equal (apart
// from the cluster and member IDs and the raft term in headers).
package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/testutil"
)

type step struct {
	name string
	req  proto.Message // *pb.RangeRequest, *pb.PutRequest, *pb.DeleteRangeRequest, *pb.TxnRequest, *pb.CompactionRequest
}

func b(s string) []byte { return []byte(s) }

func put(k, v string) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: b(k), Value: b(v)}}}
}
func get(k, end string) *pb.RequestOp {
	r := &pb.RangeRequest{Key: b(k)}
	if end != "" {
		r.RangeEnd = b(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestRange{RequestRange: r}}
}
func del(k, end string) *pb.RequestOp {
	r := &pb.DeleteRangeRequest{Key: b(k), PrevKv: true}
	if end != "" {
		r.RangeEnd = b(end)
	}
	return &pb.RequestOp{Request: &pb.RequestOp_RequestDeleteRange{RequestDeleteRange: r}}
}
func txnOp(t *pb.TxnRequest) *pb.RequestOp {
	return &pb.RequestOp{Request: &pb.RequestOp_RequestTxn{RequestTxn: t}}
}
func cmpVal(k string, r pb.Compare_CompareResult, v string) *pb.Compare {
	return &pb.Compare{Key: b(k), Target: pb.Compare_VALUE, Result: r, TargetUnion: &pb.Compare_Value{Value: b(v)}}
}
func cmpVer(k, end string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	c := &pb.Compare{Key: b(k), Target: pb.Compare_VERSION, Result: r, TargetUnion: &pb.Compare_Version{Version: v}}
	if end != "" {
		c.RangeEnd = b(end)
	}
	return c
}
func cmpMod(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: b(k), Target: pb.Compare_MOD, Result: r, TargetUnion: &pb.Compare_ModRevision{ModRevision: v}}
}
func cmpCreate(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: b(k), Target: pb.Compare_CREATE, Result: r, TargetUnion: &pb.Compare_CreateRevision{CreateRevision: v}}
}
func cmpLease(k string, r pb.Compare_CompareResult, v int64) *pb.Compare {
	return &pb.Compare{Key: b(k), Target: pb.Compare_LEASE, Result: r, TargetUnion: &pb.Compare_Lease{Lease: v}}
}

func script() []step {
	s := []step{
		{"put a", &pb.PutRequest{Key: b("a"), Value: b("1")}},
		{"put b", &pb.PutRequest{Key: b("b"), Value: b("2")}},
		{"put c", &pb.PutRequest{Key: b("c"), Value: b("3")}},
		{"put a again prev", &pb.PutRequest{Key: b("a"), Value: b("11"), PrevKv: true}},
		{"put new prev", &pb.PutRequest{Key: b("d"), Value: b("4"), PrevKv: true}},
		{"put ab", &pb.PutRequest{Key: b("ab"), Value: b("5")}},
		{"put empty key", &pb.PutRequest{Key: nil, Value: b("x")}},
		{"put ignore value missing", &pb.PutRequest{Key: b("zz"), IgnoreValue: true}},
		{"put ignore value with value", &pb.PutRequest{Key: b("a"), Value: b("v"), IgnoreValue: true}},
		{"put ignore value", &pb.PutRequest{Key: b("a"), IgnoreValue: true, PrevKv: true}},
		{"put ignore lease missing", &pb.PutRequest{Key: b("zz"), Value: b("v"), IgnoreLease: true}},
		{"put ignore lease with lease", &pb.PutRequest{Key: b("a"), Lease: 5, IgnoreLease: true}},
		{"put ignore lease", &pb.PutRequest{Key: b("a"), Value: b("12"), IgnoreLease: true}},
		{"put unknown lease", &pb.PutRequest{Key: b("a"), Value: b("x"), Lease: 12345}},
		{"put empty value", &pb.PutRequest{Key: b("e"), Value: nil}},
		{"get a", &pb.RangeRequest{Key: b("a")}},
		{"get missing", &pb.RangeRequest{Key: b("nope")}},
		{"get empty key", &pb.RangeRequest{Key: nil}},
		{"get range a..c", &pb.RangeRequest{Key: b("a"), RangeEnd: b("c")}},
		{"get prefix a", &pb.RangeRequest{Key: b("a"), RangeEnd: b("b")}},
		{"get from b", &pb.RangeRequest{Key: b("b"), RangeEnd: b("\x00")}},
		{"get all", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00")}},
		{"get limit", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), Limit: 2}},
		{"get limit exact", &pb.RangeRequest{Key: b("a"), RangeEnd: b("c"), Limit: 3}},
		{"get count only", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), CountOnly: true}},
		{"get keys only", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), KeysOnly: true}},
		{"get rev 2", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), Revision: 2}},
		{"get rev 1", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), Revision: 1}},
		{"get future rev", &pb.RangeRequest{Key: b("a"), Revision: 1000}},
		{"get bad sort order", &pb.RangeRequest{Key: b("a"), SortOrder: 7}},
		{"get bad sort target", &pb.RangeRequest{Key: b("a"), SortTarget: 9}},
		{"get min mod", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), MinModRevision: 4}},
		{"get max mod", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), MaxModRevision: 4}},
		{"get min create", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), MinCreateRevision: 3}},
		{"get max create limit", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), MaxCreateRevision: 3, Limit: 1}},
		{"get serializable", &pb.RangeRequest{Key: b("a"), Serializable: true}},
	}
	for order := range 3 {
		for target := range 5 {
			for _, limit := range []int64{0, 2} {
				s = append(s, step{fmt.Sprintf("sort order=%d target=%d limit=%d", order, target, limit), &pb.RangeRequest{
					Key: b("\x00"), RangeEnd: b("\x00"), SortOrder: pb.RangeRequest_SortOrder(order), SortTarget: pb.RangeRequest_SortTarget(target), Limit: limit}})
			}
		}
	}
	s = append(s, []step{
		{"del missing", &pb.DeleteRangeRequest{Key: b("nope"), PrevKv: true}},
		{"del empty key", &pb.DeleteRangeRequest{Key: nil}},
		{"del d prev", &pb.DeleteRangeRequest{Key: b("d"), PrevKv: true}},
		{"put d again", &pb.PutRequest{Key: b("d"), Value: b("44"), PrevKv: true}},
		{"txn value eq true", &pb.TxnRequest{Compare: []*pb.Compare{cmpVal("b", pb.Compare_EQUAL, "2")}, Success: []*pb.RequestOp{put("b", "22"), get("b", "")}, Failure: []*pb.RequestOp{get("a", "")}}},
		{"txn value eq false", &pb.TxnRequest{Compare: []*pb.Compare{cmpVal("b", pb.Compare_EQUAL, "2")}, Success: []*pb.RequestOp{put("b", "x")}, Failure: []*pb.RequestOp{get("b", ""), get("a", "c")}}},
		{"txn value missing key", &pb.TxnRequest{Compare: []*pb.Compare{cmpVal("nope", pb.Compare_NOT_EQUAL, "2")}, Success: []*pb.RequestOp{get("a", "")}, Failure: []*pb.RequestOp{get("b", "")}}},
		{"txn value greater", &pb.TxnRequest{Compare: []*pb.Compare{cmpVal("b", pb.Compare_GREATER, "1")}, Success: []*pb.RequestOp{get("b", "")}}},
		{"txn version missing = 0", &pb.TxnRequest{Compare: []*pb.Compare{cmpVer("nope", "", pb.Compare_EQUAL, 0)}, Success: []*pb.RequestOp{put("new", "n")}}},
		{"txn version range >", &pb.TxnRequest{Compare: []*pb.Compare{cmpVer("a", "c", pb.Compare_GREATER, 0)}, Success: []*pb.RequestOp{get("a", "c")}}},
		{"txn version range all >1", &pb.TxnRequest{Compare: []*pb.Compare{cmpVer("a", "c", pb.Compare_GREATER, 1)}, Success: []*pb.RequestOp{get("a", "")}, Failure: []*pb.RequestOp{get("ab", "")}}},
		{"txn version from-key", &pb.TxnRequest{Compare: []*pb.Compare{cmpVer("a", "\x00", pb.Compare_LESS, 100)}, Success: []*pb.RequestOp{get("a", "")}}},
		{"txn mod less", &pb.TxnRequest{Compare: []*pb.Compare{cmpMod("a", pb.Compare_LESS, 100)}, Success: []*pb.RequestOp{del("c", ""), put("c", "33")}}},
		{"txn create not equal", &pb.TxnRequest{Compare: []*pb.Compare{cmpCreate("a", pb.Compare_NOT_EQUAL, 2)}, Success: []*pb.RequestOp{get("a", "")}, Failure: []*pb.RequestOp{put("f", "6"), get("f", "")}}},
		{"txn lease equal 0", &pb.TxnRequest{Compare: []*pb.Compare{cmpLease("a", pb.Compare_EQUAL, 0)}, Success: []*pb.RequestOp{get("a", "")}}},
		{"txn nested", &pb.TxnRequest{Success: []*pb.RequestOp{
			put("n1", "1"),
			txnOp(&pb.TxnRequest{Compare: []*pb.Compare{cmpVer("n1", "", pb.Compare_EQUAL, 1)}, Success: []*pb.RequestOp{put("n2", "2"), get("n1", "n3")}}),
			get("n1", "n9"),
		}}},
		{"txn read only", &pb.TxnRequest{Success: []*pb.RequestOp{get("a", ""), get("b", "")}}},
		{"txn empty", &pb.TxnRequest{}},
		{"txn del nothing", &pb.TxnRequest{Success: []*pb.RequestOp{del("zzz", "")}}},
		{"txn dup put", &pb.TxnRequest{Success: []*pb.RequestOp{put("x", "1"), put("x", "2")}}},
		{"txn put in del range", &pb.TxnRequest{Success: []*pb.RequestOp{del("a", "c"), put("b", "2")}}},
		{"txn dup across branches ok", &pb.TxnRequest{Success: []*pb.RequestOp{put("x", "1")}, Failure: []*pb.RequestOp{put("x", "2")}}},
		{"txn dup nested", &pb.TxnRequest{Success: []*pb.RequestOp{put("y", "1"), txnOp(&pb.TxnRequest{Success: []*pb.RequestOp{put("y", "2")}})}}},
		{"txn two deletes overlap ok", &pb.TxnRequest{Success: []*pb.RequestOp{del("a", "c"), del("b", "d")}}},
		{"txn empty key compare", &pb.TxnRequest{Compare: []*pb.Compare{cmpVal("", pb.Compare_EQUAL, "x")}}},
		{"txn empty key put", &pb.TxnRequest{Success: []*pb.RequestOp{put("", "x")}}},
		{"txn ignore value missing", &pb.TxnRequest{Success: []*pb.RequestOp{put("ok1", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: b("missing"), IgnoreValue: true}}}}}},
		{"txn unknown lease", &pb.TxnRequest{Success: []*pb.RequestOp{put("ok2", "1"), {Request: &pb.RequestOp_RequestPut{RequestPut: &pb.PutRequest{Key: b("l"), Value: b("v"), Lease: 99}}}}}},
		{"get after failed txns", &pb.RangeRequest{Key: b("ok"), RangeEnd: b("ol")}},
		{"compact 3", &pb.CompactionRequest{Revision: 3}},
		{"compact 3 again", &pb.CompactionRequest{Revision: 3}},
		{"compact 2", &pb.CompactionRequest{Revision: 2}},
		{"compact future", &pb.CompactionRequest{Revision: 100000}},
		{"get rev 2 compacted", &pb.RangeRequest{Key: b("a"), Revision: 2}},
		{"get rev 3 at compaction", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), Revision: 3}},
		{"get rev 4", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00"), Revision: 4}},
		{"txn write + compacted read", &pb.TxnRequest{Success: []*pb.RequestOp{put("w", "1"), {Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: b("a"), Revision: 2}}}}}},
		{"txn compacted read only", &pb.TxnRequest{Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestRange{RequestRange: &pb.RangeRequest{Key: b("a"), Revision: 2}}}}}},
		{"get w absent", &pb.RangeRequest{Key: b("w")}},
		{"del all prefix prev", &pb.DeleteRangeRequest{Key: b("a"), RangeEnd: b("b"), PrevKv: true}},
		{"get all final", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00")}},
	}...)
	many := &pb.TxnRequest{}
	for i := range 129 {
		many.Success = append(many.Success, put(fmt.Sprintf("k%03d", i), "v"))
	}
	s = append(s, step{"txn too many ops", many})
	many128 := &pb.TxnRequest{Success: many.Success[:128]}
	s = append(s, step{"txn 128 ops", many128})
	return s
}

func do(ctx context.Context, kv pb.KVClient, req proto.Message) (proto.Message, error) {
	switch r := req.(type) {
	case *pb.RangeRequest:
		return kv.Range(ctx, r)
	case *pb.PutRequest:
		return kv.Put(ctx, r)
	case *pb.DeleteRangeRequest:
		return kv.DeleteRange(ctx, r)
	case *pb.TxnRequest:
		return kv.Txn(ctx, r)
	case *pb.CompactionRequest:
		return kv.Compact(ctx, r)
	}
	panic("unknown request")
}

// normalize renders a response or error for comparison: header IDs and
// the raft term differ between two clusters and are dropped.
func normalize(resp proto.Message, err error) string {
	if err != nil {
		st, _ := status.FromError(err)
		return fmt.Sprintf("error code=%s msg=%q", st.Code(), st.Message())
	}
	js, _ := protojson.MarshalOptions{UseProtoNames: true}.Marshal(resp)
	var m any
	_ = json.Unmarshal(js, &m)
	stripHeaders(m)
	out, _ := json.MarshalIndent(m, "", " ")
	return string(out)
}

func stripHeaders(v any) {
	switch x := v.(type) {
	case map[string]any:
		if h, ok := x["header"].(map[string]any); ok {
			delete(h, "cluster_id")
			delete(h, "member_id")
			delete(h, "raft_term")
		}
		for _, c := range x {
			stripHeaders(c)
		}
	case []any:
		for _, c := range x {
			stripHeaders(c)
		}
	}
}

func dial(t *testing.T, ep string) pb.KVClient {
	return pb.NewKVClient(dialConn(t, ep))
}

// dialConn connects to ep through clientv3, as a real client would, and
// closes the connection at test end.
func dialConn(t *testing.T, ep string) *grpc.ClientConn {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli.ActiveConnection()
}

// TestKVMatchesEtcd sends the same script to etcd and to a 1-member and a
// 3-member Cairn cluster and requires identical answers.
func TestKVMatchesEtcd(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			etcdKV := dial(t, testutil.StartEtcd(t))
			c := testutil.NewCluster(t, size, testutil.ClusterOptions{})
			// Talk to a follower in the 3-member case: writes are forwarded.
			idx := 0
			if size == 3 {
				idx = (c.WaitLeader() + 1) % 3
			}
			cairnKV := dial(t, c.Members[idx].ClientURL)
			ctx := testutil.Ctx(t)
			var diffs []string
			for _, st := range script() {
				want := normalize(do(ctx, etcdKV, st.req))
				got := normalize(do(ctx, cairnKV, st.req))
				if want != got {
					diffs = append(diffs, fmt.Sprintf("step %q:\n  etcd:  %s\n  cairn: %s", st.name, oneLine(want), oneLine(got)))
				}
			}
			if len(diffs) > 0 {
				t.Fatalf("%d of %d steps differ from etcd:\n%s", len(diffs), len(script()), strings.Join(diffs, "\n"))
			}
		})
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
