package cli

import (
	"bytes"
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var testHeader = &pb.ResponseHeader{ClusterId: 0xcdf818194e3a8c32, MemberId: 0x8e9e05c52164694d, Revision: 9, RaftTerm: 2}

var testKVs = []*mvccpb.KeyValue{
	{Key: []byte("config/mode"), Value: []byte("blue"), CreateRevision: 2, ModRevision: 5, Version: 2},
	{Key: []byte("config/motd"), Value: []byte("two\nlines"), CreateRevision: 3, ModRevision: 3, Version: 1, Lease: 0x694d},
	{Key: []byte("k"), Value: []byte(""), CreateRevision: 4, ModRevision: 4, Version: 1},
}

func render(t *testing.T, format string, f func(p printer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := f(printer{w: &buf, format: format}); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func checkGolden(t *testing.T, name, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s:\n--- got ---\n%s--- want ---\n%s", name, got, want)
	}
}

func TestOutputGet(t *testing.T) {
	resp := &clientv3.GetResponse{Header: testHeader, Kvs: testKVs, Count: 3}
	get := func(o *getOptions) func(p printer) error {
		return func(p printer) error { return p.get(resp, o) }
	}
	checkGolden(t, "table", render(t, outputTable, get(&getOptions{})), `KEY          VALUE
config/mode  blue
config/motd  "two\nlines"
k            ""
`)
	checkGolden(t, "table keys-only", render(t, outputTable, get(&getOptions{keysOnly: true})), `KEY
config/mode
config/motd
k
`)
	checkGolden(t, "table count-only", render(t, outputTable, get(&getOptions{countOnly: true})), "3\n")
	checkGolden(t, "value", render(t, outputValue, get(&getOptions{})), "blue\ntwo\nlines\n\n")
	checkGolden(t, "value keys-only", render(t, outputValue, get(&getOptions{keysOnly: true})), "config/mode\nconfig/motd\nk\n")
	checkGolden(t, "json", render(t, outputJSON, get(&getOptions{})),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"kvs":[`+
			`{"key":"config/mode","create_revision":2,"mod_revision":5,"version":2,"value":"blue","lease":0},`+
			`{"key":"config/motd","create_revision":3,"mod_revision":3,"version":1,"value":"two\nlines","lease":26957},`+
			`{"key":"k","create_revision":4,"mod_revision":4,"version":1,"value":"","lease":0}],"more":false,"count":3}`+"\n")
	checkGolden(t, "json keys-only", render(t, outputJSON, func(p printer) error {
		return p.get(&clientv3.GetResponse{Kvs: testKVs[:1], Count: 1, More: true}, &getOptions{keysOnly: true})
	}), `{"kvs":[{"key":"config/mode","create_revision":2,"mod_revision":5,"version":2,"lease":0}],"more":true,"count":1}`+"\n")
	checkGolden(t, "table empty", render(t, outputTable, func(p printer) error {
		return p.get(&clientv3.GetResponse{Header: testHeader}, &getOptions{})
	}), "KEY  VALUE\n")
}

func TestDisplay(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "plain",
		"with space": "with space",
		"":           `""`,
		" lead":      `" lead"`,
		"tab\there":  `"tab\there"`,
		`"q"`:        `"\"q\""`,
		"\xff":       `"\xff"`,
		"é":          "é",
	} {
		if got := display(in); got != want {
			t.Errorf("display(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestOutputPutDel(t *testing.T) {
	put := &clientv3.PutResponse{Header: testHeader, PrevKv: testKVs[0]}
	checkGolden(t, "put table", render(t, outputTable, func(p printer) error { return p.put(put, &putOptions{}) }), "OK\n")
	checkGolden(t, "put table prev-kv", render(t, outputTable, func(p printer) error { return p.put(put, &putOptions{prevKV: true}) }),
		"OK\nKEY          VALUE\nconfig/mode  blue\n")
	checkGolden(t, "put value prev-kv", render(t, outputValue, func(p printer) error { return p.put(put, &putOptions{prevKV: true}) }), "blue\n")
	checkGolden(t, "put value", render(t, outputValue, func(p printer) error {
		return p.put(&clientv3.PutResponse{Header: testHeader}, &putOptions{})
	}), "")
	checkGolden(t, "put json", render(t, outputJSON, func(p printer) error { return p.put(put, &putOptions{prevKV: true}) }),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"prev_kv":{"key":"config/mode","create_revision":2,"mod_revision":5,"version":2,"value":"blue","lease":0}}`+"\n")

	del := &clientv3.DeleteResponse{Header: testHeader, Deleted: 2, PrevKvs: testKVs[:2]}
	checkGolden(t, "del table", render(t, outputTable, func(p printer) error { return p.del(del, &delOptions{}) }), "2\n")
	checkGolden(t, "del table prev-kv", render(t, outputTable, func(p printer) error { return p.del(del, &delOptions{prevKV: true}) }),
		"2\nKEY          VALUE\nconfig/mode  blue\nconfig/motd  \"two\\nlines\"\n")
	checkGolden(t, "del value", render(t, outputValue, func(p printer) error { return p.del(del, &delOptions{prevKV: true}) }), "2\n")
	checkGolden(t, "del json", render(t, outputJSON, func(p printer) error {
		return p.del(&clientv3.DeleteResponse{Deleted: 0}, &delOptions{})
	}), `{"deleted":0}`+"\n")
}

func TestOutputPutSequential(t *testing.T) {
	seq := func(key string) func(p printer) error {
		return func(p printer) error { return p.putSequential(key, 42) }
	}
	checkGolden(t, "table", render(t, outputTable, seq("queue/job-00000000000000000042")), "queue/job-00000000000000000042\n")
	checkGolden(t, "table quoted", render(t, outputTable, seq("q\n00000000000000000042")), `"q\n00000000000000000042"`+"\n")
	checkGolden(t, "value", render(t, outputValue, seq("q\n00000000000000000042")), "q\n00000000000000000042\n")
	checkGolden(t, "json", render(t, outputJSON, seq("queue/job-00000000000000000042")),
		`{"key":"queue/job-00000000000000000042","revision":42}`+"\n")
}

func TestOutputTxn(t *testing.T) {
	req, err := parseTxn("if\n value(a) = b\nthen\n put a c --prev-kv\n del x --prefix\n get a   # read back\nelse\n get a --keys-only\n")
	if err != nil {
		t.Fatal(err)
	}
	ok := &clientv3.TxnResponse{Header: testHeader, Succeeded: true, Responses: []*pb.ResponseOp{
		{Response: &pb.ResponseOp_ResponsePut{ResponsePut: &pb.PutResponse{PrevKv: &mvccpb.KeyValue{Key: []byte("a"), Value: []byte("b"), CreateRevision: 1, ModRevision: 1, Version: 1}}}},
		{Response: &pb.ResponseOp_ResponseDeleteRange{ResponseDeleteRange: &pb.DeleteRangeResponse{Deleted: 3}}},
		{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte("a"), Value: []byte("c"), CreateRevision: 1, ModRevision: 9, Version: 2}}, Count: 1}}},
	}}
	checkGolden(t, "txn table", render(t, outputTable, func(p printer) error { return p.txn(ok, req) }), `SUCCESS
-- put a c --prev-kv
OK
KEY  VALUE
a    b
-- del x --prefix
3
-- get a
KEY  VALUE
a    c
`)
	checkGolden(t, "txn value", render(t, outputValue, func(p printer) error { return p.txn(ok, req) }), "SUCCESS\nb\n3\nc\n")
	checkGolden(t, "txn json", render(t, outputJSON, func(p printer) error { return p.txn(ok, req) }),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"succeeded":true,"responses":[`+
			`{"response_put":{"prev_kv":{"key":"a","create_revision":1,"mod_revision":1,"version":1,"value":"b","lease":0}}},`+
			`{"response_delete_range":{"deleted":3}},`+
			`{"response_range":{"kvs":[{"key":"a","create_revision":1,"mod_revision":9,"version":2,"value":"c","lease":0}],"more":false,"count":1}}]}`+"\n")
	failed := &clientv3.TxnResponse{Header: testHeader, Responses: []*pb.ResponseOp{
		{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{Kvs: []*mvccpb.KeyValue{{Key: []byte("a"), CreateRevision: 1, ModRevision: 9, Version: 2}}, Count: 1}}},
	}}
	checkGolden(t, "txn failure table", render(t, outputTable, func(p printer) error { return p.txn(failed, req) }), "FAILURE\n-- get a --keys-only\nKEY\na\n")
	checkGolden(t, "txn failure json", render(t, outputJSON, func(p printer) error { return p.txn(failed, req) }),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"succeeded":false,"responses":[`+
			`{"response_range":{"kvs":[{"key":"a","create_revision":1,"mod_revision":9,"version":2,"lease":0}],"more":false,"count":1}}]}`+"\n")
}

func TestOutputCompact(t *testing.T) {
	r := &clientv3.CompactResponse{Header: testHeader}
	checkGolden(t, "table", render(t, outputTable, func(p printer) error { return p.compact(r, 7) }), "compacted revision 7\n")
	checkGolden(t, "value", render(t, outputValue, func(p printer) error { return p.compact(r, 7) }), "7\n")
	checkGolden(t, "json", render(t, outputJSON, func(p printer) error { return p.compact(&clientv3.CompactResponse{}, 7) }), `{"compacted_revision":7}`+"\n")
}

func TestOutputStatus(t *testing.T) {
	rows := []statusRow{
		{endpoint: "127.0.0.1:2379", resp: &clientv3.StatusResponse{Header: testHeader, Version: "3.7.3", DbSize: 20480, DbSizeInUse: 16384,
			Leader: 0x8e9e05c52164694d, RaftIndex: 13, RaftTerm: 2, RaftAppliedIndex: 13}},
		{endpoint: "127.0.0.1:22379", resp: &clientv3.StatusResponse{Header: &pb.ResponseHeader{MemberId: 0x1234, Revision: 9}, Version: "3.7.3", DbSize: 1_500_000,
			Leader: 0x8e9e05c52164694d, RaftIndex: 13, RaftTerm: 2, RaftAppliedIndex: 12, Errors: []string{"NOSPACE"}}},
		{endpoint: "127.0.0.1:32379", err: &noMemberError{endpoints: []string{"127.0.0.1:32379"}, reasons: []string{"connection refused"}}},
	}
	checkGolden(t, "table", render(t, outputTable, func(p printer) error { return p.status(rows) }),
		`ENDPOINT         ID                VERSION  DB SIZE  IS LEADER  LEADER            RAFT TERM  RAFT INDEX  APPLIED INDEX  REVISION  ERRORS
127.0.0.1:2379   8e9e05c52164694d  3.7.3    20 kB    true       8e9e05c52164694d  2          13          13             9
127.0.0.1:22379  1234              3.7.3    1.5 MB   false      8e9e05c52164694d  2          13          12             9         NOSPACE
127.0.0.1:32379  -                 -        -        -          -                 -          -           -              -         no answer (connection refused)
`)
	checkGolden(t, "value", render(t, outputValue, func(p printer) error { return p.status(rows[:1]) }),
		"127.0.0.1:2379\t8e9e05c52164694d\t3.7.3\t20 kB\ttrue\t8e9e05c52164694d\t2\t13\t13\t9\t\n")
	checkGolden(t, "json", render(t, outputJSON, func(p printer) error { return p.status(rows[1:]) }),
		`{"endpoint":"127.0.0.1:22379","header":{"cluster_id":0,"member_id":4660,"revision":9,"raft_term":0},"version":"3.7.3","db_size":1500000,"db_size_in_use":0,"leader":10276657743932975437,"raft_index":13,"raft_term":2,"raft_applied_index":12,"is_learner":false,"errors":["NOSPACE"]}`+"\n"+
			`{"endpoint":"127.0.0.1:32379","db_size":0,"db_size_in_use":0,"leader":0,"raft_index":0,"raft_term":0,"raft_applied_index":0,"is_learner":false,"error":"no answer (connection refused)"}`+"\n")
}

func TestOutputHealth(t *testing.T) {
	rows := []healthRow{
		{endpoint: "127.0.0.1:2379", healthy: true, took: 1234567 * time.Nanosecond},
		{endpoint: "127.0.0.1:22379", took: 5 * time.Second, err: errors.New("etcdserver: no leader")},
	}
	checkGolden(t, "table", render(t, outputTable, func(p printer) error { return p.health(rows) }), `ENDPOINT         HEALTH     TOOK    ERROR
127.0.0.1:2379   healthy    1.23ms
127.0.0.1:22379  unhealthy  5s      etcdserver: no leader
`)
	checkGolden(t, "json", render(t, outputJSON, func(p printer) error { return p.health(rows) }),
		`{"endpoint":"127.0.0.1:2379","health":true,"took":"1.23ms"}`+"\n"+
			`{"endpoint":"127.0.0.1:22379","health":false,"took":"5s","error":"etcdserver: no leader"}`+"\n")
	checkGolden(t, "value", render(t, outputValue, func(p printer) error { return p.health(rows[:1]) }), "127.0.0.1:2379\thealthy\t1.23ms\t\n")
}

func TestOutputMembers(t *testing.T) {
	r := &clientv3.MemberListResponse{Header: testHeader, Members: []*pb.Member{
		{ID: 0x8e9e05c52164694d, Name: "a", PeerURLs: []string{"http://10.0.0.1:2380"}, ClientURLs: []string{"http://10.0.0.1:2379", "http://127.0.0.1:2379"}},
		{ID: 0x1234, PeerURLs: []string{"http://10.0.0.2:2380"}, IsLearner: true},
	}}
	checkGolden(t, "table", render(t, outputTable, func(p printer) error { return p.members(r) }),
		`ID                STATUS     NAME  PEER ADDRS            CLIENT ADDRS                                IS LEARNER
8e9e05c52164694d  started    a     http://10.0.0.1:2380  http://10.0.0.1:2379,http://127.0.0.1:2379  false
1234              unstarted        http://10.0.0.2:2380                                              true
`)
	checkGolden(t, "value", render(t, outputValue, func(p printer) error { return p.members(r) }),
		"8e9e05c52164694d\tstarted\ta\thttp://10.0.0.1:2380\thttp://10.0.0.1:2379,http://127.0.0.1:2379\tfalse\n1234\tunstarted\t\thttp://10.0.0.2:2380\t\ttrue\n")
	checkGolden(t, "json", render(t, outputJSON, func(p printer) error { return p.members(r) }),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"members":[`+
			`{"id":10276657743932975437,"name":"a","peer_urls":["http://10.0.0.1:2380"],"client_urls":["http://10.0.0.1:2379","http://127.0.0.1:2379"],"is_learner":false},`+
			`{"id":4660,"name":"","peer_urls":["http://10.0.0.2:2380"],"client_urls":[],"is_learner":true}]}`+"\n")
}
