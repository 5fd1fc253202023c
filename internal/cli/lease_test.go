package cli

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const testLease = clientv3.LeaseID(0x694d5765fc71500b)

func TestParseTTL(t *testing.T) {
	for in, want := range map[string]int64{"60": 60, "1": 1, "0060": 60, "9000000000": 9000000000} {
		if got, err := parseTTL(in); err != nil || got != want {
			t.Errorf("parseTTL(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "0", "-5", "+5", "1.5", "60s", "x", "0x10", "99999999999999999999"} {
		if got, err := parseTTL(in); err == nil {
			t.Errorf("parseTTL(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseLeaseArg(t *testing.T) {
	for in, want := range map[string]clientv3.LeaseID{
		"694d5765fc71500b":   testLease,
		"694D5765FC71500B":   testLease,
		"0x694d5765fc71500b": testLease,
		"0X694d5765fc71500b": testLease,
		"1":                  1,
		"a":                  10,
		"7fffffffffffffff":   1<<63 - 1,
	} {
		if got, err := parseLeaseArg(in); err != nil || got != want {
			t.Errorf("parseLeaseArg(%q) = %x, %v; want %x", in, got, err, want)
		}
	}
	for in, msg := range map[string]string{
		"":                  `"" is not a hexadecimal lease ID`,
		"zz":                `"zz" is not a hexadecimal lease ID`,
		"0x":                `"0x" is not a hexadecimal lease ID`,
		"-5":                `"-5" is not a hexadecimal lease ID`,
		"+5":                `"+5" is not a hexadecimal lease ID`,
		"ffffffffffffffff":  `"ffffffffffffffff" is not a hexadecimal lease ID`, // does not fit int64
		"694d5765fc71500b ": `is not a hexadecimal lease ID`,
		"0":                 "lease ID 0 means no lease",
		"0x0":               "lease ID 0 means no lease",
	} {
		if got, err := parseLeaseArg(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("parseLeaseArg(%q) = %x, %v; want an error containing %q", in, got, err, msg)
		}
	}
}

func TestLeaseUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lease"}, "cairn: 'cairn lease' needs a sub-verb: grant, revoke, keepalive, ttl or list\nRun 'cairn help' for usage.\n"},
		{[]string{"lease", "--once"}, "'cairn lease' needs a sub-verb"},
		{[]string{"lease", "frob"}, `cairn: unknown command "lease frob"`},
		{[]string{"lease", "grant"}, "cairn lease grant: lease grant takes exactly one argument: TTL (seconds)\nRun 'cairn lease grant --help' for usage.\n"},
		{[]string{"lease", "grant", "60", "70"}, "lease grant takes exactly one argument: TTL (seconds)"},
		{[]string{"lease", "grant", "x"}, "cairn lease grant: TTL must be a positive integer number of seconds, got \"x\"\n"},
		{[]string{"lease", "grant", "0"}, `TTL must be a positive integer number of seconds, got "0"`},
		{[]string{"lease", "grant", "60s"}, `TTL must be a positive integer number of seconds, got "60s"`},
		{[]string{"lease", "grant", "--", "-5"}, `TTL must be a positive integer number of seconds, got "-5"`},
		{[]string{"lease", "grant", "-5"}, "flag provided but not defined: -5"},
		{[]string{"lease", "revoke"}, "cairn lease revoke: lease revoke takes exactly one argument: ID\n"},
		{[]string{"lease", "revoke", "zz"}, `cairn lease revoke: "zz" is not a hexadecimal lease ID (e.g. 694d5765fc71500b, as 'cairn lease grant' prints it)`},
		{[]string{"lease", "revoke", "0"}, "cairn lease revoke: lease ID 0 means no lease"},
		{[]string{"lease", "revoke", "a", "b"}, "lease revoke takes exactly one argument: ID"},
		{[]string{"lease", "keepalive"}, "lease keepalive takes exactly one argument: ID"},
		{[]string{"lease", "keepalive", "xyz", "--once"}, `cairn lease keepalive: "xyz" is not a hexadecimal lease ID`},
		{[]string{"lease", "keep-alive", "xyz"}, `cairn lease keepalive: "xyz" is not a hexadecimal lease ID`},
		{[]string{"lease", "keepalive", "1", "--once=maybe"}, "invalid boolean value"},
		{[]string{"lease", "ttl"}, "lease ttl takes exactly one argument: ID"},
		{[]string{"lease", "ttl", "--keys", "--", "-1"}, `"-1" is not a hexadecimal lease ID`},
		{[]string{"lease", "timetolive", "g"}, `cairn lease ttl: "g" is not a hexadecimal lease ID`},
		{[]string{"lease", "list", "x"}, "cairn lease list: lease list takes no arguments"},
		{[]string{"lease", "list", "--keys"}, "flag provided but not defined: -keys"},
		{[]string{"lease", "list", "-o", "yaml"}, `unknown --output "yaml"`},
	} {
		code, out, errs := runCLI(t, "", tc.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
}

func TestLeaseHelp(t *testing.T) {
	code, out, _ := runCLI(t, "", "help")
	for _, v := range []string{"lease grant", "lease revoke", "lease keepalive", "lease ttl", "lease list"} {
		if code != exitOK || !strings.Contains(out, "  "+v+" ") {
			t.Errorf("help does not list %q:\n%s", v, out)
		}
	}
	for form, wants := range map[string][]string{
		"lease grant --help":    {"Usage: cairn lease grant [flags] TTL", "granted with TTL(60s)", "--lease"},
		"help lease revoke":     {"Usage: cairn lease revoke [flags] ID", "revoked"},
		"lease keepalive -h":    {"Usage: cairn lease keepalive [flags] ID", "--once", "expired or\nrevoked.", "keepalived with"},
		"help lease keep-alive": {"Usage: cairn lease keepalive [flags] ID"},
		"lease ttl --help":      {"Usage: cairn lease ttl [flags] ID", "--keys", "already expired", "remaining(59s)"},
		"help lease timetolive": {"Usage: cairn lease ttl [flags] ID"},
		"lease list --help":     {"Usage: cairn lease list", "found 2 leases"},
	} {
		code, out, errs := runCLI(t, "", strings.Fields(form)...)
		if code != exitOK {
			t.Errorf("%s: exit %d, stderr %q", form, code, errs)
		}
		for _, w := range wants {
			if !strings.Contains(out, w) {
				t.Errorf("%s: help lacks %q:\n%s", form, w, out)
			}
		}
	}
}

func TestOutputLeaseGrantRevoke(t *testing.T) {
	grant := &clientv3.LeaseGrantResponse{ResponseHeader: testHeader, ID: testLease, TTL: 60}
	g := func(p printer) error { return p.leaseGrant(grant) }
	checkGolden(t, "grant table", render(t, outputTable, g), "lease 694d5765fc71500b granted with TTL(60s)\n")
	checkGolden(t, "grant value", render(t, outputValue, g), "694d5765fc71500b\n")
	checkGolden(t, "grant json", render(t, outputJSON, g),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691,"ttl":60}`+"\n")
	small := func(p printer) error { return p.leaseGrant(&clientv3.LeaseGrantResponse{ID: 0x1b, TTL: 5}) }
	checkGolden(t, "grant small id", render(t, outputTable, small), "lease 000000000000001b granted with TTL(5s)\n")

	revoke := &clientv3.LeaseRevokeResponse{Header: testHeader}
	r := func(p printer) error { return p.leaseRevoke(testLease, revoke) }
	checkGolden(t, "revoke table", render(t, outputTable, r), "lease 694d5765fc71500b revoked\n")
	checkGolden(t, "revoke value", render(t, outputValue, r), "694d5765fc71500b\n")
	checkGolden(t, "revoke json", render(t, outputJSON, r),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691}`+"\n")
}

func TestOutputLeaseKeepAlive(t *testing.T) {
	ka := &clientv3.LeaseKeepAliveResponse{ResponseHeader: testHeader, ID: testLease, TTL: 60}
	k := func(p printer) error { return p.leaseKeepAlive(ka) }
	checkGolden(t, "table", render(t, outputTable, k), "lease 694d5765fc71500b keepalived with TTL(60)\n")
	checkGolden(t, "value", render(t, outputValue, k), "60\n")
	checkGolden(t, "json", render(t, outputJSON, k),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691,"ttl":60}`+"\n")
}

func TestOutputLeaseTTL(t *testing.T) {
	live := &clientv3.LeaseTimeToLiveResponse{ResponseHeader: testHeader, ID: testLease, TTL: 59, GrantedTTL: 60,
		Keys: [][]byte{[]byte("config/b"), []byte("a b"), []byte("config/a")}}
	ttl := func(r *clientv3.LeaseTimeToLiveResponse, keys bool) func(p printer) error {
		return func(p printer) error { return p.leaseTTL(testLease, r, keys) }
	}
	checkGolden(t, "table", render(t, outputTable, ttl(live, false)), "lease 694d5765fc71500b granted with TTL(60s), remaining(59s)\n")
	checkGolden(t, "table keys", render(t, outputTable, ttl(live, true)),
		`lease 694d5765fc71500b granted with TTL(60s), remaining(59s), attached keys(["a b" config/a config/b])`+"\n")
	checkGolden(t, "value", render(t, outputValue, ttl(live, false)), "59\n")
	checkGolden(t, "value keys", render(t, outputValue, ttl(live, true)), "59\na b\nconfig/a\nconfig/b\n")
	checkGolden(t, "json", render(t, outputJSON, ttl(live, false)),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691,"ttl":59,"granted_ttl":60}`+"\n")
	checkGolden(t, "json keys", render(t, outputJSON, ttl(live, true)),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691,"ttl":59,"granted_ttl":60,"keys":["a b","config/a","config/b"]}`+"\n")
	if string(live.Keys[0]) != "config/b" {
		t.Errorf("leaseTTL sorted the response's keys in place: %q", live.Keys)
	}

	noKeys := &clientv3.LeaseTimeToLiveResponse{ResponseHeader: testHeader, ID: testLease, TTL: 0, GrantedTTL: 5}
	checkGolden(t, "table no keys", render(t, outputTable, ttl(noKeys, true)), "lease 694d5765fc71500b granted with TTL(5s), remaining(0s), attached keys([])\n")
	checkGolden(t, "json no keys", render(t, outputJSON, ttl(noKeys, true)),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691,"ttl":0,"granted_ttl":5,"keys":[]}`+"\n")

	gone := &clientv3.LeaseTimeToLiveResponse{ResponseHeader: testHeader, ID: testLease, TTL: -1}
	checkGolden(t, "table expired", render(t, outputTable, ttl(gone, false)), "lease 694d5765fc71500b already expired\n")
	checkGolden(t, "table expired keys", render(t, outputTable, ttl(gone, true)), "lease 694d5765fc71500b already expired\n")
	checkGolden(t, "value expired", render(t, outputValue, ttl(gone, false)), "-1\n")
	checkGolden(t, "json expired", render(t, outputJSON, ttl(gone, false)),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"id":7587817042727751691,"ttl":-1,"granted_ttl":0}`+"\n")
}

func TestOutputLeaseList(t *testing.T) {
	resp := &clientv3.LeaseLeasesResponse{ResponseHeader: testHeader, Leases: []clientv3.LeaseStatus{{ID: testLease}, {ID: 0x1b}}}
	l := func(r *clientv3.LeaseLeasesResponse) func(p printer) error {
		return func(p printer) error { return p.leaseList(r) }
	}
	checkGolden(t, "table", render(t, outputTable, l(resp)), "found 2 leases\n000000000000001b\n694d5765fc71500b\n")
	checkGolden(t, "value", render(t, outputValue, l(resp)), "000000000000001b\n694d5765fc71500b\n")
	checkGolden(t, "json", render(t, outputJSON, l(resp)),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"leases":[{"id":27},{"id":7587817042727751691}]}`+"\n")
	empty := &clientv3.LeaseLeasesResponse{ResponseHeader: &pb.ResponseHeader{Revision: 1}}
	checkGolden(t, "table empty", render(t, outputTable, l(empty)), "found 0 leases\n")
	checkGolden(t, "value empty", render(t, outputValue, l(empty)), "")
	checkGolden(t, "json empty", render(t, outputJSON, l(empty)), `{"header":{"cluster_id":0,"member_id":0,"revision":1,"raft_term":0},"leases":[]}`+"\n")
}

// keepAlive runs keepAliveLoop over the given responses; the channel is
// closed after them unless open.
func keepAlive(t *testing.T, ctx context.Context, format string, open bool, resps ...*clientv3.LeaseKeepAliveResponse) (string, error) {
	t.Helper()
	ch := make(chan *clientv3.LeaseKeepAliveResponse, len(resps))
	for _, r := range resps {
		ch <- r
	}
	if !open {
		close(ch)
	}
	var out bytes.Buffer
	inv := &invocation{verb: "lease keepalive", g: &globalFlags{output: format}, stdout: &out, stderr: &out}
	err := inv.keepAliveLoop(ctx, testLease, ch)
	return out.String(), err
}

func TestKeepAliveLoop(t *testing.T) {
	r := &clientv3.LeaseKeepAliveResponse{ResponseHeader: testHeader, ID: testLease, TTL: 60}
	renewed := "lease 694d5765fc71500b keepalived with TTL(60)\n"

	t.Run("lease gone", func(t *testing.T) {
		out, err := keepAlive(t, context.Background(), outputTable, false, r, r)
		checkGolden(t, "out", out, renewed+renewed+"lease 694d5765fc71500b expired or revoked.\n")
		if !errors.Is(err, errLeaseGone) || err.Error() != "lease 694d5765fc71500b: expired or revoked" {
			t.Errorf("err = %v, want errLeaseGone", err)
		}
	})
	t.Run("lease gone, value", func(t *testing.T) {
		out, err := keepAlive(t, context.Background(), outputValue, false, r)
		checkGolden(t, "out", out, "60\n")
		if !errors.Is(err, errLeaseGone) {
			t.Errorf("err = %v, want errLeaseGone", err)
		}
	})
	t.Run("lease gone, json", func(t *testing.T) {
		out, err := keepAlive(t, context.Background(), outputJSON, false)
		checkGolden(t, "out", out, "")
		if !errors.Is(err, errLeaseGone) {
			t.Errorf("err = %v, want errLeaseGone", err)
		}
	})
	t.Run("interrupted", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if out, err := keepAlive(t, ctx, outputTable, true); err != nil || out != "" {
			t.Errorf("out %q, err %v; want nothing", out, err)
		}
	})
	t.Run("closed because interrupted", func(t *testing.T) {
		// clientv3 closes the channel when the context ends; that is an
		// interrupt, not an expiry.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if out, err := keepAlive(t, ctx, outputTable, false); err != nil || strings.Contains(out, "expired") {
			t.Errorf("out %q, err %v; want no expiry", out, err)
		}
	})
}

func TestLeaseGoneExitCode(t *testing.T) {
	var out, errb bytes.Buffer
	inv := &invocation{verb: "lease keepalive", g: &globalFlags{output: outputTable}, stdout: &out, stderr: &errb}
	code := reportError(inv, inv.printer().leaseGone(testLease))
	if code != exitError || out.String() != "lease 694d5765fc71500b expired or revoked.\n" || errb.String() != "cairn: lease 694d5765fc71500b: expired or revoked\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}
