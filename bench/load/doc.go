// Package load is Cairn's benchmark load generator: it drives any etcd-v3
// compatible endpoint (Cairn or etcd itself) with go.etcd.io/etcd/client/v3,
// the way etcd's own `benchmark` tool does, and measures every request.
//
// # What it owns
//
//   - Dial opens a Pool of clientv3 clients. Each client is one gRPC
//     connection to all endpoints (clientv3 balances requests round-robin over
//     them), like etcd benchmark's --conns.
//   - Run starts Config.Clients goroutines, spread over the pool's connections
//     (client i uses connection i mod Conns). Each sends one request at a time
//     in mode put, get-linearizable or get-serializable, on a key drawn
//     uniformly from a key space of Config.KeySpace keys, until
//     Config.Total requests were started or Config.Duration has elapsed,
//     whichever comes first. Every loop is bounded in count and time.
//   - Preload writes every key of the key space once, so that the get modes
//     read existing keys.
//   - Result holds the throughput (successful requests per second of wall
//     time) and exact latency percentiles (p50, p90, p99, max) computed from
//     the latency of every successful request (no sampling, no buckets).
//
// # Keys and values
//
// Key i of the key space is the decimal i, zero padded to Config.KeySize
// bytes (8 to 32). Values are Config.ValueSize random bytes (256 by default),
// the same for every put of a run.
//
// # Running it
//
// The command-line front ends are in bench/cmd:
//
//	go run ./bench/cmd/kvbench -endpoints http://127.0.0.1:2379 -mode put -clients 16 -duration 10s
//	go build -o /tmp/cairn ./cmd/cairn && go run ./bench/cmd/compare -cairn /tmp/cairn
//
// kvbench drives an existing cluster; compare starts fresh 3-member Cairn and
// etcd clusters (package bench/cluster), alternating between the two systems
// case by case, and prints Markdown tables; see BENCHMARKS.md for the figures.
package load
