package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Exit codes returned by Run. `lock NAME -- COMMAND` returns COMMAND's exit
// status instead (an exitCodeError).
const (
	exitOK    = 0 // the verb succeeded (a txn whose compares failed also exits 0)
	exitError = 1 // a request failed or no member answered
	exitUsage = 2 // bad flags, arguments or txn text
)

// Defaults of the global client flags.
const (
	defaultEndpoints      = "127.0.0.1:2379"
	defaultDialTimeout    = 2 * time.Second
	defaultCommandTimeout = 5 * time.Second
	endpointsEnv          = "CAIRN_ENDPOINTS"
)

// Output formats accepted by -o/--output.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputValue = "value"
)

// errUsage marks usage errors (exit code 2); wrap it with %w.
var errUsage = errors.New("usage error")

// usagef returns an error that Run reports as a usage error.
func usagef(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// globalFlags are the flags every client verb accepts, before or after the verb.
type globalFlags struct {
	endpoints      string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	output         string
}

func (g *globalFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&g.endpoints, "endpoints", g.endpoints, "comma-separated member client addresses (env "+endpointsEnv+")")
	fs.DurationVar(&g.dialTimeout, "dial-timeout", g.dialTimeout, "how long to wait for a member to answer")
	fs.DurationVar(&g.commandTimeout, "command-timeout", g.commandTimeout, "timeout of each request")
	fs.StringVar(&g.output, "output", g.output, "output format: table, json or value")
	fs.StringVar(&g.output, "o", g.output, "short for --output")
	fs.StringVar(&g.output, "write-out", g.output, "etcdctl's name for --output")
	fs.StringVar(&g.output, "w", g.output, "etcdctl's short name for --output")
}

func (g *globalFlags) endpointList() ([]string, error) {
	var eps []string
	for _, e := range strings.Split(g.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	if len(eps) == 0 {
		return nil, usagef("--endpoints is empty")
	}
	return eps, nil
}

func (g *globalFlags) check() error {
	switch g.output {
	case outputTable, outputJSON, outputValue:
	default:
		return usagef("unknown --output %q (want table, json or value)", g.output)
	}
	if g.dialTimeout <= 0 {
		return usagef("--dial-timeout must be positive")
	}
	if g.commandTimeout <= 0 {
		return usagef("--command-timeout must be positive")
	}
	return nil
}

// invocation carries what one run of a verb needs.
type invocation struct {
	verb   string // full verb name, e.g. "get" or "member list"
	g      *globalFlags
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func (inv *invocation) printer() printer { return printer{w: inv.stdout, format: inv.g.output} }

// verb describes one client verb.
type verb struct {
	name     string // as typed, e.g. "get" or "member list"
	args     string // synopsis of the positional arguments
	summary  string // one line for the verb list
	help     string // longer description printed by --help
	register func(fs *flag.FlagSet) any
	run      func(ctx context.Context, inv *invocation, opts any, args []string) error
}

// verbs lists the client verbs in help order.
func verbs() []*verb {
	return []*verb{
		getVerb(), putVerb(), delVerb(), txnVerb(), watchVerb(), compactVerb(),
		lockVerb(), electVerb(),
		leaseGrantVerb(), leaseRevokeVerb(), leaseKeepAliveVerb(), leaseTTLVerb(), leaseListVerb(),
		statusVerb(), healthVerb(), memberListVerb(),
		snapshotSaveVerb(), snapshotStatusVerb(), snapshotRestoreVerb(),
		exportVerb(), importVerb(),
	}
}

// Run runs the cairn command line: args are the arguments after the program
// name. It returns the process exit code: 0 success, 1 request error, 2 usage
// error; `lock NAME -- COMMAND` returns COMMAND's exit status.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, args, os.Getenv, stdin, stdout, stderr)
}

// run is Run with the environment injected.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return serveMain(ctx, args[1:], stdout, stderr)
	}
	g := &globalFlags{
		endpoints:      defaultEndpoints,
		dialTimeout:    defaultDialTimeout,
		commandTimeout: defaultCommandTimeout,
		output:         outputTable,
	}
	if e := getenv(endpointsEnv); e != "" {
		g.endpoints = e
	}
	top := flag.NewFlagSet("cairn", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printTopUsage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "cairn: %v\nRun 'cairn help' for usage.\n", err)
		return exitUsage
	}
	rest := top.Args()
	if len(rest) == 0 {
		printTopUsage(stderr)
		return exitUsage
	}
	name := rest[0]
	rest = rest[1:]
	switch name {
	case "help":
		return helpVerb(rest, g, stdout, stderr)
	case "serve":
		return serveMain(ctx, rest, stdout, stderr)
	}
	v, rest, err := findVerb(name, rest)
	if err != nil {
		fmt.Fprintf(stderr, "cairn: %v\nRun 'cairn help' for usage.\n", err)
		return exitUsage
	}
	inv := &invocation{verb: v.name, g: g, stdin: stdin, stdout: stdout, stderr: stderr}
	return runVerb(ctx, v, inv, rest)
}

// findVerb resolves the verb name (and a sub-verb for two-word verbs).
func findVerb(name string, rest []string) (*verb, []string, error) {
	switch name {
	case "member", "endpoint":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			if name == "member" {
				return nil, nil, fmt.Errorf("'cairn member' needs a sub-verb: list")
			}
			return nil, nil, fmt.Errorf("'cairn endpoint' needs a sub-verb: health or status")
		}
		sub := rest[0]
		rest = rest[1:]
		switch name + " " + sub {
		case "member list":
			name = "member list"
		case "endpoint health":
			name = "health"
		case "endpoint status":
			name = "status"
		default:
			return nil, nil, fmt.Errorf("unknown command %q", name+" "+sub)
		}
	case "lease":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return nil, nil, fmt.Errorf("'cairn lease' needs a sub-verb: %s", leaseSubVerbs)
		}
		full, ok := leaseSubVerb(rest[0])
		if !ok {
			return nil, nil, fmt.Errorf("unknown command %q", name+" "+rest[0])
		}
		name, rest = full, rest[1:]
	case "snapshot":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			return nil, nil, fmt.Errorf("'cairn snapshot' needs a sub-verb: %s", snapshotSubVerbs)
		}
		switch rest[0] {
		case "save", "status", "restore":
			name, rest = name+" "+rest[0], rest[1:]
		default:
			return nil, nil, fmt.Errorf("unknown command %q", name+" "+rest[0])
		}
	case "delete":
		name = "del"
	}
	for _, v := range verbs() {
		if v.name == name {
			return v, rest, nil
		}
	}
	return nil, nil, fmt.Errorf("unknown command %q", name)
}

// runVerb parses the verb's flags (global flags included, anywhere on the
// line), runs it and maps its error to an exit code.
func runVerb(ctx context.Context, v *verb, inv *invocation, args []string) int {
	fs := flag.NewFlagSet("cairn "+v.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts := v.register(fs)
	inv.g.register(fs)
	if err := fs.Parse(reorderArgs(fs, args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printVerbUsage(inv.stdout, v, inv.g)
			return exitOK
		}
		fmt.Fprintf(inv.stderr, "cairn %s: %v%s\nRun 'cairn %s --help' for usage.\n", v.name, err, dashHint(err), v.name)
		return exitUsage
	}
	err := inv.g.check()
	if err == nil {
		err = v.run(ctx, inv, opts, fs.Args())
	}
	return reportError(inv, err)
}

// dashHint suggests "--" when an undefined flag looks like a value.
func dashHint(err error) string {
	if strings.Contains(err.Error(), "not defined") {
		return " (put -- before arguments that start with '-')"
	}
	return ""
}

// reportError prints err (if any) and returns the exit code for it.
func reportError(inv *invocation, err error) int {
	var exitCode *exitCodeError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &exitCode):
		return exitCode.code
	case errors.Is(err, errUsage):
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		fmt.Fprintf(inv.stderr, "cairn %s: %s\nRun 'cairn %s --help' for usage.\n", inv.verb, msg, inv.verb)
		return exitUsage
	case errors.Is(err, errNoMember):
		fmt.Fprintf(inv.stderr, "cairn: %v\n", err)
		return exitError
	case errors.Is(err, context.Canceled):
		fmt.Fprintf(inv.stderr, "cairn: interrupted\n")
		return exitError
	case errors.Is(err, context.DeadlineExceeded) || status.Code(err) == codes.DeadlineExceeded:
		fmt.Fprintf(inv.stderr, "cairn: request timed out after %v (--command-timeout)\n", inv.g.commandTimeout)
		return exitError
	default:
		fmt.Fprintf(inv.stderr, "cairn: %v\n", requestErrorText(err))
		return exitError
	}
}

// requestErrorText strips gRPC framing ("rpc error: code = X desc = ...") from
// server errors so that the user sees etcd's message.
func requestErrorText(err error) string {
	if s, ok := status.FromError(err); ok && s.Code() != codes.OK && s.Code() != codes.Unknown {
		return s.Message()
	}
	return err.Error()
}
