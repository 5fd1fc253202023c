package cli

import (
	"fmt"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// testLockKV is a held lock's key as concurrency.Mutex writes it.
var testLockKV = &mvccpb.KeyValue{Key: []byte("locks/db/694d5765fc71500b"), CreateRevision: 9, ModRevision: 9, Version: 1, Lease: 0x694d5765fc71500b}

func TestLockArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		name string
		argv []string
	}{
		{[]string{"locks/db"}, "locks/db", []string{}},
		{[]string{"locks/db", "make", "deploy"}, "locks/db", []string{"make", "deploy"}},
		{[]string{"x", "sh", "-c", "exit 3"}, "x", []string{"sh", "-c", "exit 3"}},
	} {
		o := &lockOptions{ttl: defaultSessionTTL}
		if err := o.setArgs(tc.args); err != nil || o.name != tc.name || !reflect.DeepEqual(o.argv, tc.argv) {
			t.Errorf("setArgs(%q): name %q argv %q, %v; want %q %q", tc.args, o.name, o.argv, err, tc.name, tc.argv)
		}
	}
}

func TestLockUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lock"}, "cairn lock: lock needs NAME"},
		{[]string{"lock", ""}, "NAME must not be empty"},
		{[]string{"lock", "x", "--ttl", "0"}, "--ttl must be a positive number of seconds, got 0"},
		{[]string{"lock", "x", "--ttl", "-5"}, "--ttl must be a positive number of seconds, got -5"},
		{[]string{"lock", "x", "--ttl", "1m"}, "invalid value"},
		// Flags of the command need "--" before it, as the hint says.
		{[]string{"lock", "x", "ls", "-z"}, "flag provided but not defined: -z (put -- before arguments"},
	} {
		code, out, errs := runCLI(t, "", tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
	// A command that does not exist fails before connecting (exit 1).
	code, _, errs := runCLI(t, "", "lock", "x", "--endpoints", "127.0.0.1:1", "--", "cairn-no-such-command", "-v")
	if code != exitError || !strings.Contains(errs, `"cairn-no-such-command": executable file not found`) {
		t.Errorf("lock with a missing command: exit %d, stderr %q", code, errs)
	}
}

func TestLockEnv(t *testing.T) {
	environ := []string{"PATH=/bin", "ETCD_LOCK_KEY=outer/1", "HOME=/root", "CAIRN_FENCING_TOKEN=3", "ETCD_LOCK_REVISION=keep", "ETCD_LOCK_REV=2"}
	got := lockEnv(environ, "locks/db/694d5765fc71500b", 12, 9)
	want := []string{"PATH=/bin", "HOME=/root", "ETCD_LOCK_REVISION=keep",
		"ETCD_LOCK_KEY=locks/db/694d5765fc71500b", "ETCD_LOCK_REV=12", "CAIRN_FENCING_TOKEN=9"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("lockEnv:\n got %q\nwant %q", got, want)
	}
	if environ[1] != "ETCD_LOCK_KEY=outer/1" {
		t.Errorf("lockEnv changed its input: %q", environ)
	}
}

func TestCommandExitCode(t *testing.T) {
	for script, want := range map[string]int{
		"exit 0":        0,
		"exit 7":        7,
		"kill -TERM $$": 128 + 15,
		"kill -KILL $$": 128 + 9,
	} {
		cmd := exec.Command("sh", "-c", script)
		_ = cmd.Run()
		if cmd.ProcessState == nil {
			t.Fatalf("sh -c %q did not run", script)
		}
		if got := commandExitCode(cmd.ProcessState); got != want {
			t.Errorf("sh -c %q: exit code %d, want %d", script, got, want)
		}
	}
}

func TestExitCodeError(t *testing.T) {
	var errb strings.Builder
	inv := &invocation{verb: "lock", g: &globalFlags{}, stderr: &errb}
	if code := reportError(inv, fmt.Errorf("running: %w", &exitCodeError{code: 7})); code != 7 || errb.Len() != 0 {
		t.Errorf("exitCodeError{7}: exit %d, stderr %q; want 7 and nothing", code, errb.String())
	}
}

func TestOutputLockHeld(t *testing.T) {
	held := func(p printer) error {
		return p.lockHeld(&clientv3.GetResponse{Header: testHeader, Kvs: []*mvccpb.KeyValue{testLockKV}, Count: 1})
	}
	// etcdctl's text: the key, then the (empty) value.
	checkGolden(t, "table", render(t, outputTable, held), "locks/db/694d5765fc71500b\n\n")
	checkGolden(t, "value", render(t, outputValue, held), "locks/db/694d5765fc71500b\n")
	checkGolden(t, "json", render(t, outputJSON, held),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},`+
			`"kvs":[{"key":"locks/db/694d5765fc71500b","create_revision":9,"mod_revision":9,"version":1,"value":"","lease":7587817042727751691}],"more":false,"count":1}`+"\n")
}
