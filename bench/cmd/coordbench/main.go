// Command coordbench measures Cairn's coordination primitives against etcd
// in one run (issue 5): lease grants, lease keepalives, lock
// acquire/release under contention and (Cairn only) sequential key
// creation.
//
// For every case and every system in turn (cairn, then etcd, so that
// machine noise falls on both) it:
//
//  1. starts a fresh 3-member cluster on 127.0.0.1 (package bench/cluster:
//     both systems with the same flags, data on disk);
//  2. opens one clientv3.Client per benchmark client, client i connected
//     only to member i mod 3, each on its own gRPC connection, and does the
//     case's setup (below);
//  3. reads the members' CPU time, releases every client at once and lets
//     each loop over its operation, one at a time, for -duration; reads the
//     CPU time again and the members' peak RSS (VmHWM, which includes start
//     and setup);
//  4. kills the cluster.
//
// The cases (-cases):
//
//   - grant: -clients clients call Lease.Grant (TTL 60 s).
//   - keepalive: first -leases leases (TTL 60 s) are granted, spread over
//     the clients; then -clients clients call Lease.KeepAliveOnce on them
//     round-robin (one shared counter), so every lease is refreshed in turn.
//     clientv3's KeepAliveOnce opens a LeaseKeepAlive stream per call, sends
//     one request and reads one response.
//   - lock16, lock256: 16 or 256 clients, each with its own
//     concurrency.Session (opened before the timer starts), loop
//     {concurrency.NewMutex(session, "coordbench/lock"), Lock, Unlock}. The
//     latency is that of Lock (the acquisition, waiting included); ops/s are
//     acquisitions per second, all clients together. Lock has no timeout but
//     the end of the run; Unlock has 10 s and also runs after the deadline,
//     so a holder always releases. As a sanity check the tool reports an
//     error if Lock returns while another client holds the lock.
//   - seq: -clients clients call cairnclient.CreateSequential(ctx, cli,
//     "seq/", 32-byte value, 0). Cairn only: etcd has no such operation, and
//     the table says so.
//
// Every operation but Lock has a 10 s timeout. Latency percentiles are
// exact (nearest rank over every successful operation). A failed operation
// is counted, its message kept (up to 8 distinct messages per case) and
// the loop goes on; 1000 failures end the case. Operations still in flight
// at the deadline and cancelled by it (lock waiters, mostly) are neither
// successes nor failures: they are counted as "in flight at end". A case
// that cannot finish (a cluster that does not start, a failed setup, a
// member that dies) is reported as failed and the run goes on with the
// next one; the exit status is then 1. Retries inside clientv3 are not
// seen: KeepAliveOnce, for one, retries any error it does not consider
// final until its context ends, so such errors show as latency or, after
// 10 s, as a timeout.
//
// Output: a Markdown table on standard output, headed by the command line
// and the machine (nproc, go version, kernel, the binaries' build info);
// progress on standard error; with -json FILE one JSON object per case
// and system (JSON lines).
//
// Usage (from the repository root):
//
//	go build -o /tmp/cairn ./cmd/cairn && go build -o /tmp/coordbench ./bench/cmd/coordbench
//	/tmp/coordbench -cairn /tmp/cairn -json /tmp/coord.jsonl
//
// The etcd binary defaults to the one scripts/build-etcd.sh builds.
// Everything started is killed on return, on error, on SIGINT/SIGTERM, and
// by the kernel (Pdeathsig) if this process dies.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-db/cairn/bench/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "coordbench:", err)
		os.Exit(1)
	}
}

type options struct {
	cairn, etcd string
	systems     []cluster.System
	cases       []string
	duration    time.Duration
	clients     int
	leases      int
	workDir     string
	jsonPath    string

	caseTimeLimit time.Duration
}

func defaultEtcd() string {
	if d := os.Getenv("CAIRN_ETCD_DIR"); d != "" {
		return filepath.Join(d, "bin", "etcd")
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "cairn", "etcd-v3.7.3", "bin", "etcd")
}

func parse(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("coordbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cairn, "cairn", "", "path to the cairn binary (required; go build -o /tmp/cairn ./cmd/cairn)")
	fs.StringVar(&o.etcd, "etcd", defaultEtcd(), "path to the etcd binary (scripts/build-etcd.sh)")
	systems := fs.String("systems", "cairn,etcd", "systems to run, in this order within each case")
	cases := fs.String("cases", strings.Join(allCases, ","), "cases to run, in this order")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per case")
	fs.IntVar(&o.clients, "clients", 64, "concurrent clients of the grant, keepalive and seq cases")
	fs.IntVar(&o.leases, "leases", 10000, "live leases of the keepalive case")
	fs.StringVar(&o.workDir, "work-dir", "", "parent of the members' data dirs (default: a new dir under $TMPDIR)")
	fs.StringVar(&o.jsonPath, "json", "", "also write each result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if o.cairn == "" {
		return o, errors.New("-cairn is required (go build -o /tmp/cairn ./cmd/cairn)")
	}
	for s := range strings.SplitSeq(*systems, ",") {
		switch sys := cluster.System(strings.TrimSpace(s)); sys {
		case cluster.Cairn, cluster.Etcd:
			o.systems = append(o.systems, sys)
		default:
			return o, fmt.Errorf("unknown system %q (cairn or etcd)", s)
		}
	}
	for s := range strings.SplitSeq(*cases, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allCases, s) {
			return o, fmt.Errorf("unknown case %q (%s)", s, strings.Join(allCases, ", "))
		}
		o.cases = append(o.cases, s)
	}
	switch {
	case o.duration <= 0:
		return o, errors.New("-duration must be positive")
	case o.clients < 1:
		return o, errors.New("-clients must be at least 1")
	case o.leases < 1:
		return o, errors.New("-leases must be at least 1")
	}
	// Start, setup and the end of the run included; a case past this fails.
	o.caseTimeLimit = o.duration + 3*time.Minute
	return o, nil
}

// run runs the benchmark; args[0] is the program name (for the command
// line printed with the results).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args[1:], stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, format+"\n", a...) }
	for _, sys := range o.systems {
		bin := o.cairn
		if sys == cluster.Etcd {
			bin = o.etcd
		}
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s binary: %w", sys, err)
		}
	}
	facts := gatherFacts(ctx, o, args)
	work := o.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "cairn-coordbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	var jsonOut *json.Encoder
	if o.jsonPath != "" {
		f, err := os.Create(o.jsonPath)
		if err != nil {
			return err
		}
		defer f.Close()
		jsonOut = json.NewEncoder(f)
	}
	var recs []record
	defer func() { printReport(stdout, facts, o, recs) }()
	failed := 0
	for _, name := range o.cases {
		for _, sys := range o.systems {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rec, err := runCase(ctx, o, work, sys, name, logf)
			if err != nil {
				rec.Failure = err.Error()
				failed++
			}
			logf("%s", rec.summary())
			if jsonOut != nil {
				if err := jsonOut.Encode(rec); err != nil {
					return err
				}
			}
			recs = append(recs, rec)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d cases failed (see the table)", failed, len(recs))
	}
	return nil
}
