package cli

import (
	"bytes"
	"context"
	"flag"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	(&getOptions{}).register(fs, false)
	(&globalFlags{}).register(fs)
	tests := []struct {
		in, want []string
	}{
		{nil, []string{"--"}},
		{[]string{"foo", "--prefix"}, []string{"--prefix", "--", "foo"}},
		{[]string{"foo", "--limit", "3", "bar"}, []string{"--limit", "3", "--", "foo", "bar"}},
		{[]string{"foo", "--limit=3", "bar"}, []string{"--limit=3", "--", "foo", "bar"}},
		{[]string{"-o", "json", "foo", "--keys-only"}, []string{"-o", "json", "--keys-only", "--", "foo"}},
		{[]string{"foo", "--", "--prefix"}, []string{"--", "foo", "--prefix"}},
		{[]string{"foo", "-"}, []string{"--", "foo", "-"}},
		{[]string{"foo", "--bogus", "bar"}, []string{"--bogus", "--", "foo", "bar"}},
		{[]string{"foo", "--limit"}, []string{"--limit", "--", "foo"}},
		{[]string{"foo", "--prefix=false"}, []string{"--prefix=false", "--", "foo"}},
		{[]string{"foo", "--endpoints", "a:1,b:2"}, []string{"--endpoints", "a:1,b:2", "--", "foo"}},
	}
	for _, tt := range tests {
		if got := reorderArgs(fs, tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// runCLI runs the command line with no environment and no member.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"frob"}, `cairn: unknown command "frob"`},
		{[]string{"member"}, "'cairn member' needs a sub-verb: list"},
		{[]string{"member", "kick"}, `unknown command "member kick"`},
		{[]string{"get"}, "cairn get: get needs KEY\nRun 'cairn get --help' for usage."},
		{[]string{"get", "a", "b", "c"}, "get takes KEY [RANGE_END], got 3 arguments"},
		{[]string{"get", "a", "--bogus"}, "cairn get: flag provided but not defined: -bogus (put -- before arguments that start with '-')"},
		{[]string{"get", "a", "--prefix", "--from-key"}, "--prefix and --from-key cannot be used together"},
		{[]string{"get", "a", "--sort-by", "size"}, `unknown --sort-by "size"`},
		{[]string{"get", "a", "--order", "up"}, `unknown --order "up"`},
		{[]string{"get", "a", "-o", "yaml"}, `unknown --output "yaml" (want table, json or value)`},
		{[]string{"--output=xml", "get", "a"}, `unknown --output "xml"`},
		{[]string{"get", "a", "--limit", "-1"}, "--limit must not be negative"},
		{[]string{"put", "a", "b", "c"}, "put takes KEY VALUE, got 3 arguments"},
		{[]string{"put", "a", "b", "--ignore-value"}, "--ignore-value cannot be used with a VALUE"},
		{[]string{"put", "a", "b", "--lease", "nothex"}, `bad --lease: "nothex" is not a hexadecimal lease ID`},
		{[]string{"put", "a", "-1"}, "flag provided but not defined: -1 (put -- before arguments"},
		{[]string{"put", "q/", "v", "--sequential", "--prev-kv"}, "--sequential cannot be used with --prev-kv"},
		{[]string{"put", "q/", "--sequential", "--ignore-value"}, "--sequential cannot be used with --ignore-value"},
		{[]string{"put", "q/", "v", "--sequential", "--ignore-lease"}, "--sequential cannot be used with --ignore-lease"},
		{[]string{"put", "q/", "v", "--sequential", "--lease", "zz"}, `bad --lease: "zz" is not a hexadecimal lease ID`},
		{[]string{"del"}, "del needs KEY"},
		{[]string{"compact"}, "compact takes exactly one argument: REV"},
		{[]string{"compact", "x"}, `REV must be a positive integer, got "x"`},
		{[]string{"status", "x"}, "status takes no arguments"},
		{[]string{"txn", "x"}, "txn takes no arguments"},
		{[]string{"get", "a", "--dial-timeout", "0s"}, "--dial-timeout must be positive"},
		{[]string{"get", "a", "--endpoints", " , "}, "--endpoints is empty"},
		{[]string{"--nope"}, "cairn: flag provided but not defined: -nope"},
	}
	for _, tt := range tests {
		code, _, stderr := runCLI(t, "", tt.args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tt.args, code, exitUsage, stderr)
		}
		if !strings.Contains(stderr, tt.want) {
			t.Errorf("%q: stderr %q does not contain %q", tt.args, stderr, tt.want)
		}
	}
}

func TestTxnSyntaxErrorExitCode(t *testing.T) {
	code, _, stderr := runCLI(t, "if\n  size(a) > 1\n", "txn")
	if code != exitUsage {
		t.Errorf("exit %d, want %d", code, exitUsage)
	}
	if want := "cairn txn: line 2, column 3: unknown compare target \"size\""; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, stdout, _ := runCLI(t, "", args...)
		if code != exitOK {
			t.Errorf("%q: exit %d", args, code)
		}
		for _, w := range []string{"Usage: cairn", "get", "put", "del", "txn", "compact", "lock", "elect", "status", "health", "member list", "--endpoints", "--dial-timeout", "--command-timeout", "-o, --output", "json", "value"} {
			if !strings.Contains(stdout, w) {
				t.Errorf("%q: help lacks %q", args, w)
			}
		}
	}
	code, _, stderr := runCLI(t, "")
	if code != exitUsage || !strings.Contains(stderr, "Usage: cairn") {
		t.Errorf("bare cairn: exit %d, stderr %q", code, stderr)
	}
	verbHelp := map[string][]string{
		"get":         {"Usage: cairn get [flags] KEY [RANGE_END]", "--prefix", "--from-key", "--limit N", "--rev N", "--keys-only", "--count-only", "--sort-by FIELD", "--order ORDER", "--serializable"},
		"put":         {"Usage: cairn put [flags] KEY [VALUE]", "--lease ID", "--prev-kv", "--ignore-value", "--ignore-lease", "stdin", "--sequential", `{"key":`},
		"lock":        {"Usage: cairn lock [flags] NAME [-- COMMAND [ARGS...]]", "--ttl SECONDS", "(default 60)", "ETCD_LOCK_KEY", "ETCD_LOCK_REV", "CAIRN_FENCING_TOKEN", "cairn: lock NAME lost: session expired"},
		"elect":       {"Usage: cairn elect [flags] NAME PROPOSAL | --listen NAME", "-l, --listen", "--ttl SECONDS", "resigns"},
		"del":         {"Usage: cairn del", "--prefix", "--from-key", "--prev-kv"},
		"txn":         {"Usage: cairn txn", "if", "then", "else", `value("config/mode") = "blue"`, "line and column"},
		"compact":     {"Usage: cairn compact [flags] REV", "--physical"},
		"status":      {"Usage: cairn status", "raft term"},
		"health":      {"Usage: cairn health"},
		"member list": {"Usage: cairn member list", "--serializable"},
	}
	for verb, wants := range verbHelp {
		for _, form := range [][]string{append(strings.Fields(verb), "--help"), append([]string{"help"}, strings.Fields(verb)...)} {
			code, stdout, stderr := runCLI(t, "", form...)
			if code != exitOK {
				t.Errorf("%q: exit %d (%s)", form, code, stderr)
			}
			for _, w := range wants {
				if !strings.Contains(stdout, w) {
					t.Errorf("%q: help lacks %q:\n%s", form, w, stdout)
				}
			}
		}
	}
}

func TestEndpointsFromEnv(t *testing.T) {
	var got string
	var errb bytes.Buffer
	env := func(k string) string {
		if k == endpointsEnv {
			return "127.0.0.1:1"
		}
		return ""
	}
	run(context.Background(), []string{"get", "a", "--dial-timeout", "300ms"}, env, strings.NewReader(""), io.Discard, &errb)
	got = errb.String()
	if !strings.Contains(got, "127.0.0.1:1") {
		t.Errorf("stderr %q does not name the endpoint from %s", got, endpointsEnv)
	}
}
