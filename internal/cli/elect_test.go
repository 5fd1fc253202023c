package cli

import (
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

func TestElectArgs(t *testing.T) {
	for _, tc := range []struct {
		args           []string
		listen         bool
		name, proposal string
	}{
		{[]string{"jobs", "node-1"}, false, "jobs", "node-1"},
		{[]string{"jobs", ""}, false, "jobs", ""},
		{[]string{"jobs"}, true, "jobs", ""},
	} {
		o := &electOptions{ttl: defaultSessionTTL, listen: tc.listen}
		if err := o.setArgs(tc.args); err != nil || o.name != tc.name || o.proposal != tc.proposal {
			t.Errorf("setArgs(%q): %q %q, %v; want %q %q", tc.args, o.name, o.proposal, err, tc.name, tc.proposal)
		}
	}
}

func TestElectUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"elect"}, "cairn elect: elect takes NAME and a PROPOSAL, or --listen and NAME; got 0 arguments"},
		{[]string{"elect", "a", "b", "c"}, "got 3 arguments"},
		{[]string{"elect", "jobs"}, "elect NAME needs a PROPOSAL to campaign with, or --listen to print the leaders"},
		{[]string{"elect", "jobs", "p", "--listen"}, "--listen takes no PROPOSAL"},
		{[]string{"elect", "-l", "jobs", "p"}, "--listen takes no PROPOSAL"},
		{[]string{"elect", "", "p"}, "NAME must not be empty"},
		{[]string{"elect", "jobs", "p", "--ttl", "0"}, "--ttl must be a positive number of seconds"},
	} {
		code, out, errs := runCLI(t, "", tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
}

func TestOutputLeader(t *testing.T) {
	leader := func(p printer) error {
		return p.leader(&clientv3.GetResponse{Header: testHeader, Kvs: []*mvccpb.KeyValue{
			{Key: []byte("jobs/694d5765fc71500b"), Value: []byte("node-1"), CreateRevision: 8, ModRevision: 8, Version: 1, Lease: 0x694d5765fc71500b},
		}})
	}
	// etcdctl's text: the key, then the proposal.
	checkGolden(t, "table", render(t, outputTable, leader), "jobs/694d5765fc71500b\nnode-1\n")
	checkGolden(t, "value", render(t, outputValue, leader), "node-1\n")
	checkGolden(t, "json", render(t, outputJSON, leader),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},`+
			`"kvs":[{"key":"jobs/694d5765fc71500b","create_revision":8,"mod_revision":8,"version":1,"value":"node-1","lease":7587817042727751691}],"more":false,"count":0}`+"\n")
}
