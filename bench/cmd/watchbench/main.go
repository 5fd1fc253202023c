// Command watchbench measures watch fan-out on Cairn and etcd in one run
// (issue 4): how long it takes an event to reach every one of N watchers,
// whether any watcher misses or repeats an event, and what a watcher costs
// in server memory.
//
// For every group (watcher count × target) and every system in turn
// (cairn, etcd, … so that machine noise falls on both) it:
//
//  1. starts a fresh 3-member cluster on 127.0.0.1 (package bench/cluster);
//  2. opens -conns gRPC connections, connection i to member i mod 3, and a
//     separate connection for the writer to the leader;
//  3. reads the members' VmRSS, then opens ceil(N/-per-stream) raw watch
//     streams (not clientv3.Watch), stream j on connection j mod -conns,
//     read by this driver's own gRPC-over-HTTP/2 reader (-client h2, one
//     goroutine per connection, see h2.go) or by grpc-go (-client grpc,
//     one goroutine per stream), each carrying -per-stream watchers on the
//     target (one key "wb/key", or the prefix "wb/"), waits for every "created"
//     response, waits -settle and reads VmRSS again: memory per watcher =
//     (sum after − sum before) / N;
//  4. for every rate in -rates: a writer puts rate values per second for
//     -duration, or longer to make at least -min-writes writes (open-loop,
//     one key, or 16 keys under the prefix); the
//     ack time of every Put is kept by its revision. An event's latency is
//     its receipt time minus the ack time of the write with the event's mod revision (events that
//     arrive before the writer has seen its ack count as 0 and as "early").
//     After the writes it waits until every watcher has every acked write,
//     or -drain-idle without progress, or -drain in all. Then it counts,
//     per watcher and per acked write, whether the event arrived (lost
//     otherwise) and how many arrived twice. Server CPU (utime+stime of the
//     members) and this process's CPU over the segment are recorded, and
//     so are the histograms among the members' /metrics series named by
//     -metrics (cairn_watch_ by default), as after − before;
//  5. kills the cluster.
//
// The results go to standard output as a Markdown table, progress to
// standard error, and every record to the -json file (JSON lines).
//
// Usage (from the repository root):
//
//	go build -o /tmp/cairn ./cmd/cairn
//	go run ./bench/cmd/watchbench -cairn /tmp/cairn -watchers 1000,10000 -rates 1,10,100
//
// Everything started is killed on return, on error, on SIGINT/SIGTERM, and
// by the kernel (Pdeathsig) if this process dies. To profile a member, pass
// as -cairn a script that runs `exec /tmp/cairn "$@" --enable-pprof`; the
// members' URLs are printed on standard error.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-db/cairn/bench/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "watchbench:", err)
		os.Exit(1)
	}
}

type options struct {
	cairn, etcd string
	systems     []cluster.System
	watchers    []int
	targets     []string
	rates       []float64
	duration    time.Duration
	minWrites   int
	perStream   int
	conns       int
	drain       time.Duration
	drainIdle   time.Duration
	settle      time.Duration
	valueSize   int
	workDir     string
	jsonPath    string
	timeLimit   time.Duration
	metrics     []string
	cpuProfile  string
	client      string
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
	fs := flag.NewFlagSet("watchbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cairn, "cairn", "", "path to the cairn binary (needed when -systems has cairn)")
	fs.StringVar(&o.etcd, "etcd", defaultEtcd(), "path to the etcd binary (scripts/build-etcd.sh)")
	systems := fs.String("systems", "cairn,etcd", "systems to run, in this order within each group")
	watchers := fs.String("watchers", "1000,10000,50000", "watcher counts")
	targets := fs.String("targets", "key,prefix", "what the watchers watch: key (one key) and/or prefix")
	rates := fs.String("rates", "1,10,100", "writer rates, puts per second")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "writing time per rate")
	fs.IntVar(&o.minWrites, "min-writes", 30, "write at least this many times per rate, writing longer than -duration at low rates")
	fs.IntVar(&o.perStream, "per-stream", 100, "watchers per gRPC watch stream")
	fs.IntVar(&o.conns, "conns", 64, "gRPC connections for the watch streams (spread over the members)")
	fs.DurationVar(&o.drain, "drain", 20*time.Second, "longest wait after the writes for the events still in flight")
	fs.DurationVar(&o.drainIdle, "drain-idle", 5*time.Second, "stop draining after this long without a new event")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "pause between creating the watchers and reading memory")
	fs.IntVar(&o.valueSize, "value-size", 32, "value size in bytes (at least the sequence number)")
	fs.StringVar(&o.workDir, "work-dir", "", "parent of the members' data dirs (default: a new dir under $TMPDIR)")
	fs.StringVar(&o.jsonPath, "json", "", "also write each result as a JSON line to this file")
	fs.DurationVar(&o.timeLimit, "time-limit", 40*time.Minute, "abort the whole run after this long")
	fs.StringVar(&o.client, "client", "h2", "watch client: h2 (this driver's own gRPC-over-HTTP/2 reader, one goroutine per connection) or grpc (grpc-go, one goroutine per stream)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write this driver's CPU profile to this file")
	metricsPrefixes := fs.String("metrics", "cairn_watch_", "comma-separated /metrics name prefixes whose histograms are reported")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	for s := range strings.SplitSeq(*systems, ",") {
		switch sys := cluster.System(strings.TrimSpace(s)); sys {
		case cluster.Cairn, cluster.Etcd:
			o.systems = append(o.systems, sys)
		default:
			return o, fmt.Errorf("unknown system %q", s)
		}
		if cluster.System(strings.TrimSpace(s)) == cluster.Cairn && o.cairn == "" {
			return o, errors.New("-cairn is required (go build -o /tmp/cairn ./cmd/cairn)")
		}
	}
	for s := range strings.SplitSeq(*watchers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return o, fmt.Errorf("bad watcher count %q", s)
		}
		o.watchers = append(o.watchers, n)
	}
	for s := range strings.SplitSeq(*targets, ",") {
		s = strings.TrimSpace(s)
		if s != "key" && s != "prefix" {
			return o, fmt.Errorf("bad target %q (key or prefix)", s)
		}
		o.targets = append(o.targets, s)
	}
	for s := range strings.SplitSeq(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return o, fmt.Errorf("bad rate %q", s)
		}
		o.rates = append(o.rates, r)
	}
	if o.client != "h2" && o.client != "grpc" {
		return o, fmt.Errorf("bad -client %q (h2 or grpc)", o.client)
	}
	if len(o.rates) > maxSegs {
		return o, fmt.Errorf("at most %d rates", maxSegs)
	}
	for p := range strings.SplitSeq(*metricsPrefixes, ",") {
		if p = strings.TrimSpace(p); p != "" {
			o.metrics = append(o.metrics, p)
		}
	}
	if o.duration <= 0 || o.minWrites < 1 || o.perStream < 1 || o.conns < 1 || o.drain <= 0 || o.valueSize < 1 {
		return o, errors.New("-duration, -min-writes, -per-stream, -conns, -drain and -value-size must be positive")
	}
	return o, nil
}

// writeTime is how long the writer writes at rate: -duration, or longer when
// that gives fewer than -min-writes writes. At 1 put/s, ten writes would let
// one slow write (a tenth of the events) decide the p99 alone.
func (o options) writeTime(rate float64) time.Duration {
	return max(o.duration, time.Duration(math.Ceil(float64(o.minWrites)/rate*float64(time.Second))))
}

// record is one measured case: a group at one writer rate.
type record struct {
	System          cluster.System `json:"system"`
	Client          string         `json:"client"`
	Watchers        int            `json:"watchers"`
	Target          string         `json:"target"`
	Rate            float64        `json:"rate"`
	Streams         int            `json:"streams"`
	Conns           int            `json:"conns"`
	SetupSec        float64        `json:"watch_setup_s"`
	RSSBeforeMiB    float64        `json:"rss_before_mib"`
	RSSAfterMiB     float64        `json:"rss_after_mib"`
	BytesPerWatcher float64        `json:"server_bytes_per_watcher"`
	Sent            int            `json:"puts_sent"`
	Acked           int            `json:"puts_acked"`
	PutFailed       int            `json:"puts_failed"`
	PutErr          string         `json:"put_error,omitempty"`
	PutsLate        int            `json:"puts_late"`
	WriteSec        float64        `json:"write_s"`
	PutP50ms        float64        `json:"put_p50_ms"`
	PutP99ms        float64        `json:"put_p99_ms"`
	DrainSec        float64        `json:"drain_s"`
	Expected        int64          `json:"events_expected"`
	Received        int64          `json:"events_received"`
	Lost            int64          `json:"events_lost"`
	Dups            int64          `json:"events_duplicated"`
	Early           int64          `json:"events_before_ack"`
	Unacked         int64          `json:"events_of_unacked_writes"`
	Unexpected      int64          `json:"unexpected_responses"`
	StreamErrs      int            `json:"stream_errors"`
	StreamErr       string         `json:"stream_error,omitempty"`
	P50ms           float64        `json:"p50_ms"`
	P99ms           float64        `json:"p99_ms"`
	MaxMs           float64        `json:"max_ms"`
	SendP50ms       float64        `json:"from_send_p50_ms"` // receipt − Put sent
	SendP99ms       float64        `json:"from_send_p99_ms"`
	SendMaxMs       float64        `json:"from_send_max_ms"`
	ServerCPUSec    float64        `json:"server_cpu_s"`
	ClientCPUSec    float64        `json:"client_cpu_s"`
	ServerHists     []string       `json:"server_histograms,omitempty"`
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parse(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeLimit)
	defer cancel()
	work := o.workDir
	if work == "" {
		if work, err = os.MkdirTemp("", "cairn-watchbench-"); err != nil {
			return err
		}
		defer os.RemoveAll(work)
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
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
	defer func() { printTable(stdout, o, recs) }()
	for _, n := range o.watchers {
		for _, target := range o.targets {
			for _, sys := range o.systems {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				got, err := runGroup(ctx, o, work, sys, n, target, stderr)
				for _, r := range got {
					fmt.Fprintf(stderr, "%-5s watchers=%-6d %-6s rate=%-4g acked=%d p50=%.2fms p99=%.2fms max=%.2fms send-p99=%.2fms expected=%d lost=%d dups=%d early=%d mem=%.0fB/watcher drain=%.1fs srvcpu=%.1fs clicpu=%.1fs %v\n",
						r.System, r.Watchers, r.Target, r.Rate, r.Acked, r.P50ms, r.P99ms, r.MaxMs, r.SendP99ms, r.Expected, r.Lost, r.Dups, r.Early,
						r.BytesPerWatcher, r.DrainSec, r.ServerCPUSec, r.ClientCPUSec, r.ServerHists)
					if jsonOut != nil {
						if err := jsonOut.Encode(r); err != nil {
							return err
						}
					}
				}
				recs = append(recs, got...)
				if err != nil {
					return fmt.Errorf("%s watchers=%d %s: %w", sys, n, target, err)
				}
			}
		}
	}
	return nil
}

// printTable prints every record as one Markdown table.
func printTable(w io.Writer, o options, recs []record) {
	if len(recs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%v of writes per rate, and at least %d writes; %d watchers per stream over %d connections to 3 members, read by the %s client. Latency = event receipt − Put ack, ms. Memory = (Σ members' VmRSS after creating the watchers − before) / watchers.\n\n",
		o.duration, o.minWrites, o.perStream, o.conns, o.client)
	fmt.Fprintln(w, "| watchers | target | puts/s | system | puts acked | p50 ms | p99 ms | max ms | early % | from send p50 / p99 ms | put p50 ms | events expected | lost | dup | B/watcher | server CPU s | client CPU s | drain s |")
	fmt.Fprintln(w, "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range recs {
		early := 0.0
		if r.Received > 0 {
			early = 100 * float64(r.Early) / float64(r.Received)
		}
		fmt.Fprintf(w, "| %d | %s | %g | %s | %d | %.2f | %.2f | %.2f | %.0f | %.2f / %.2f | %.2f | %d | %d | %d | %.0f | %.1f | %.1f | %.1f |\n",
			r.Watchers, r.Target, r.Rate, r.System, r.Acked, r.P50ms, r.P99ms, r.MaxMs, early, r.SendP50ms, r.SendP99ms, r.PutP50ms,
			r.Expected, r.Lost, r.Dups, r.BytesPerWatcher, r.ServerCPUSec, r.ClientCPUSec, r.DrainSec)
	}
	hasHist := false
	for _, r := range recs {
		hasHist = hasHist || len(r.ServerHists) > 0
	}
	if hasHist {
		fmt.Fprintf(w, "\nServer histograms (%s), after − before each case, summed over the members:\n\n", strings.Join(o.metrics, ", "))
		for _, r := range recs {
			for _, h := range r.ServerHists {
				fmt.Fprintf(w, "- %s %d %s %g/s: %s\n", r.System, r.Watchers, r.Target, r.Rate, h)
			}
		}
	} else {
		fmt.Fprintf(w, "\nNo member exposed a histogram named %s*.\n", strings.Join(o.metrics, "*, "))
	}
}
