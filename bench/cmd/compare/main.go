// Command compare benchmarks Cairn against etcd on this machine in one run.
//
// For every round, every mode (put, get-linearizable, get-serializable) and
// every client count (1, 16, 256 by default) it runs the case on each system
// in turn (cairn, etcd, cairn, etcd, ... so that machine noise falls on
// both): start a fresh 3-member cluster on 127.0.0.1 (package bench/cluster),
// preload the key space for the get modes, warm up, then measure one run of
// package bench/load, bounded by -duration and -max-requests. Around the
// measured run it reads the members' CPU time (utime+stime) and afterwards
// their peak RSS (VmHWM), then kills the cluster. Each round ends with a
// Markdown table on standard output; progress goes to standard error and
// every result to the -json file (JSON lines).
//
// Usage (from the repository root):
//
//	go build -o /tmp/cairn ./cmd/cairn
//	go run ./bench/cmd/compare -cairn /tmp/cairn -rounds 2
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-db/cairn/bench/cluster"
	"github.com/cairn-db/cairn/bench/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type options struct {
	cairn, etcd   string
	systems       []cluster.System
	modes         []load.Mode
	clients       []int
	conns         int
	rounds        int
	duration      time.Duration
	warmup        time.Duration
	maxRequests   int64
	keySize       int
	valueSize     int
	keySpace      int
	workDir       string
	jsonPath      string
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
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cairn, "cairn", "", "path to the cairn binary (go build -o /tmp/cairn ./cmd/cairn)")
	fs.StringVar(&o.etcd, "etcd", defaultEtcd(), "path to the etcd binary (scripts/build-etcd.sh)")
	systems := fs.String("systems", "cairn,etcd", "systems to run, in this order within each case")
	modes := fs.String("modes", "put,get-linearizable,get-serializable", "modes to run")
	clients := fs.String("clients", "1,16,256", "client counts to run")
	fs.IntVar(&o.conns, "conns", 0, "gRPC connections per case (0: min(clients, 16))")
	fs.IntVar(&o.rounds, "rounds", 1, "full comparisons to run, one table each")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per case")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each case")
	fs.Int64Var(&o.maxRequests, "max-requests", 5_000_000, "request cap per measured case")
	fs.IntVar(&o.keySize, "key-size", 8, "key size in bytes (8-32)")
	fs.IntVar(&o.valueSize, "value-size", 256, "value size in bytes")
	fs.IntVar(&o.keySpace, "key-space", 10_000, "distinct keys (preloaded for the get modes)")
	fs.StringVar(&o.workDir, "work-dir", "", "parent of the members' data dirs (default: a new dir under $TMPDIR)")
	fs.StringVar(&o.jsonPath, "json", "", "also write each result as a JSON line to this file")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.cairn == "" {
		return o, errors.New("-cairn is required (go build -o /tmp/cairn ./cmd/cairn)")
	}
	for s := range strings.SplitSeq(*systems, ",") {
		switch sys := cluster.System(strings.TrimSpace(s)); sys {
		case cluster.Cairn, cluster.Etcd:
			o.systems = append(o.systems, sys)
		default:
			return o, fmt.Errorf("unknown system %q", s)
		}
	}
	var err error
	if o.modes, err = load.ParseModes(*modes); err != nil {
		return o, err
	}
	for s := range strings.SplitSeq(*clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("bad client count %q", s)
		}
		o.clients = append(o.clients, n)
	}
	if o.rounds < 1 || o.duration <= 0 || o.warmup < 0 || o.maxRequests < 1 {
		return o, errors.New("-rounds, -duration and -max-requests must be positive")
	}
	// Start, preload and warm-up included; a case past this is a failure.
	o.caseTimeLimit = o.duration + o.warmup + 3*time.Minute
	return o, nil
}

// record is one measured case.
type record struct {
	Round       int            `json:"round"`
	System      cluster.System `json:"system"`
	Mode        load.Mode      `json:"mode"`
	Clients     int            `json:"clients"`
	Conns       int            `json:"conns"`
	Requests    int64          `json:"requests"`
	Errors      int64          `json:"errors"`
	FirstErr    string         `json:"first_error,omitempty"`
	ElapsedSec  float64        `json:"elapsed_s"`
	OpsPerSec   float64        `json:"ops_per_s"`
	P50us       float64        `json:"p50_us"`
	P90us       float64        `json:"p90_us"`
	P99us       float64        `json:"p99_us"`
	MaxUs       float64        `json:"max_us"`
	CPUSec      float64        `json:"server_cpu_s"`
	CPUusPerOp  float64        `json:"server_cpu_us_per_op"`
	PeakRSSMiB  []float64      `json:"peak_rss_mib"` // per member, VmHWM
	MaxRSSMiB   float64        `json:"max_rss_mib"`
	TotalRSSMiB float64        `json:"total_rss_mib"`
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	work := o.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "cairn-bench-"); err != nil {
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
	for round := 1; round <= o.rounds; round++ {
		var recs []record
		for _, mode := range o.modes {
			for _, n := range o.clients {
				for _, sys := range o.systems {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					rec, err := runCase(ctx, o, work, round, sys, mode, n)
					if err != nil {
						return fmt.Errorf("round %d %s %s clients=%d: %w", round, sys, mode, n, err)
					}
					fmt.Fprintf(stderr, "round %d %-5s %-16s clients=%-3d ops/s=%.1f p50=%.0fus p99=%.0fus max=%.0fus cpu=%.1fus/op rss=%.1fMiB errors=%d\n",
						round, sys, mode, n, rec.OpsPerSec, rec.P50us, rec.P99us, rec.MaxUs, rec.CPUusPerOp, rec.MaxRSSMiB, rec.Errors)
					if jsonOut != nil {
						if err := jsonOut.Encode(rec); err != nil {
							return err
						}
					}
					recs = append(recs, rec)
				}
			}
		}
		printTable(stdout, round, o, recs)
	}
	return nil
}

// runCase starts a fresh cluster of sys, runs one measured case on it and
// kills it.
func runCase(ctx context.Context, o options, work string, round int, sys cluster.System, mode load.Mode, clients int) (record, error) {
	ctx, cancel := context.WithTimeout(ctx, o.caseTimeLimit)
	defer cancel()
	bin := o.cairn
	if sys == cluster.Etcd {
		bin = o.etcd
	}
	var c *cluster.Cluster
	var err error
	for attempt := 0; attempt < 3; attempt++ { // a port taken by someone else between reserve and bind
		if c, err = cluster.Start(ctx, cluster.Spec{System: sys, Binary: bin, Dir: work}); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return record{}, err
	}
	defer c.Stop()

	conns := o.conns
	if conns == 0 {
		conns = load.DefaultConns(clients)
	}
	pool, err := load.Dial(c.Endpoints(), conns, 10*time.Second)
	if err != nil {
		return record{}, err
	}
	defer pool.Close()
	if mode != load.ModePut {
		if err := load.Preload(ctx, pool, o.keySpace, o.keySize, o.valueSize, 64, 2*time.Minute); err != nil {
			return record{}, err
		}
	}
	cfg := load.Config{
		Mode: mode, Clients: clients, Total: o.maxRequests, Duration: o.warmup,
		KeySize: o.keySize, ValueSize: o.valueSize, KeySpace: o.keySpace, Seed: uint64(round),
	}
	if o.warmup > 0 {
		if _, err := load.Run(ctx, pool, cfg); err != nil {
			return record{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	cfg.Duration = o.duration
	cpu0, err := c.CPU()
	if err != nil {
		return record{}, err
	}
	res, err := load.Run(ctx, pool, cfg)
	if err != nil {
		return record{}, err
	}
	cpu1, err := c.CPU()
	if err != nil {
		return record{}, err
	}
	rss, err := c.PeakRSS()
	if err != nil {
		return record{}, err
	}
	if err := c.Alive(); err != nil {
		return record{}, err
	}
	rec := record{
		Round: round, System: sys, Mode: mode, Clients: clients, Conns: res.Conns,
		Requests: res.Requests, Errors: res.Errors, FirstErr: res.FirstErr,
		ElapsedSec: res.Elapsed.Seconds(), OpsPerSec: res.OpsPerSec,
		P50us: us(res.P50), P90us: us(res.P90), P99us: us(res.P99), MaxUs: us(res.Max),
		CPUSec: (cpu1 - cpu0).Seconds(),
	}
	if res.Requests > 0 {
		rec.CPUusPerOp = us(cpu1-cpu0) / float64(res.Requests)
	}
	for _, b := range rss {
		mib := float64(b) / (1 << 20)
		rec.PeakRSSMiB = append(rec.PeakRSSMiB, mib)
		rec.MaxRSSMiB = max(rec.MaxRSSMiB, mib)
		rec.TotalRSSMiB += mib
	}
	return rec, nil
}

// printTable prints one round as Markdown: one row per case, the systems
// side by side.
func printTable(w io.Writer, round int, o options, recs []record) {
	fmt.Fprintf(w, "\n### Round %d\n\n", round)
	fmt.Fprintf(w, "%d s per case (cap %d requests), %d-byte keys, %d-byte values, key space %d. Latencies in ms; CPU = server CPU (3 members, user+sys) per request; RSS = peak RSS (VmHWM) of the largest member / sum of 3, MiB.\n\n",
		int(o.duration/time.Second), o.maxRequests, o.keySize, o.valueSize, o.keySpace)
	fmt.Fprintln(w, "| case | clients | system | ops/s | p50 ms | p99 ms | max ms | CPU µs/op | RSS MiB max / sum | errors |")
	fmt.Fprintln(w, "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range recs {
		fmt.Fprintf(w, "| %s | %d | %s | %.1f | %.3f | %.3f | %.3f | %.1f | %.1f / %.1f | %d |\n",
			r.Mode, r.Clients, r.System, r.OpsPerSec, r.P50us/1000, r.P99us/1000, r.MaxUs/1000,
			r.CPUusPerOp, r.MaxRSSMiB, r.TotalRSSMiB, r.Errors)
	}
	// Ratios, Cairn over etcd, when both ran.
	byKey := map[string]record{}
	for _, r := range recs {
		byKey[fmt.Sprintf("%s/%d/%s", r.Mode, r.Clients, r.System)] = r
	}
	fmt.Fprintln(w, "\n| case | clients | ops/s cairn÷etcd | p99 cairn÷etcd | CPU/op cairn÷etcd |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, m := range o.modes {
		for _, n := range o.clients {
			a, okA := byKey[fmt.Sprintf("%s/%d/%s", m, n, cluster.Cairn)]
			b, okB := byKey[fmt.Sprintf("%s/%d/%s", m, n, cluster.Etcd)]
			if !okA || !okB || b.OpsPerSec == 0 || b.P99us == 0 || b.CPUusPerOp == 0 {
				continue
			}
			fmt.Fprintf(w, "| %s | %d | %.2f | %.2f | %.2f |\n", m, n, a.OpsPerSec/b.OpsPerSec, a.P99us/b.P99us, a.CPUusPerOp/b.CPUusPerOp)
		}
	}
}
