// Command kvbench drives an existing etcd-v3 compatible cluster (Cairn or
// etcd) with one benchmark case and prints throughput and latency
// percentiles computed from every request (package bench/load).
//
// Usage:
//
//	go run ./bench/cmd/kvbench -endpoints http://127.0.0.1:2379 \
//	    -mode put -clients 256 -duration 10s -total 1000000
//	go run ./bench/cmd/kvbench -endpoints http://127.0.0.1:2379 \
//	    -mode get-linearizable -preload -clients 16
//
// The run stops at -total requests or after -duration, whichever comes
// first. -conns gRPC connections (default min(clients, 16)) are shared by
// the clients; each connection balances over all -endpoints.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cairn-db/cairn/bench/load"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("kvbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	endpoints := fs.String("endpoints", "http://127.0.0.1:2379", "comma-separated client URLs")
	mode := fs.String("mode", "put", "put, get-linearizable or get-serializable")
	clients := fs.Int("clients", 1, "concurrent clients (one goroutine each)")
	conns := fs.Int("conns", 0, "gRPC connections shared by the clients (0: min(clients, 16))")
	total := fs.Int64("total", 1_000_000, "stop after this many requests")
	duration := fs.Duration("duration", 10*time.Second, "stop after this long")
	keySize := fs.Int("key-size", 8, "key size in bytes (8-32)")
	valueSize := fs.Int("value-size", 256, "value size in bytes")
	keySpace := fs.Int("key-space", 10_000, "distinct keys, chosen uniformly")
	preload := fs.Bool("preload", false, "write every key of the key space first")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	seed := fs.Uint64("seed", 1, "seed for the key choice")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg := load.Config{
		Mode: load.Mode(*mode), Clients: *clients, Total: *total, Duration: *duration,
		KeySize: *keySize, ValueSize: *valueSize, KeySpace: *keySpace, RequestTimeout: *timeout, Seed: *seed,
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	n := *conns
	if n <= 0 {
		n = load.DefaultConns(*clients)
	}
	pool, err := load.Dial(strings.Split(*endpoints, ","), n, 10*time.Second)
	if err != nil {
		return err
	}
	defer pool.Close()
	if *preload {
		if err := load.Preload(ctx, pool, *keySpace, *keySize, *valueSize, 64, 5*time.Minute); err != nil {
			return err
		}
	}
	res, err := load.Run(ctx, pool, cfg)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	} else {
		fmt.Fprintf(stdout, "mode=%s clients=%d conns=%d\n", res.Mode, res.Clients, res.Conns)
		fmt.Fprintf(stdout, "requests=%d errors=%d elapsed=%v\n", res.Requests, res.Errors, res.Elapsed.Round(time.Millisecond))
		fmt.Fprintf(stdout, "throughput: %.1f ops/s\n", res.OpsPerSec)
		fmt.Fprintf(stdout, "latency: mean=%v p50=%v p90=%v p99=%v max=%v\n", res.Mean, res.P50, res.P90, res.P99, res.Max)
		if res.FirstErr != "" {
			fmt.Fprintf(stdout, "first error: %s\n", res.FirstErr)
		}
	}
	return err
}
