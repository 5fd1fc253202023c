package load

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Mode is the kind of request a run sends.
type Mode string

// The request kinds.
const (
	ModePut             Mode = "put"
	ModeGetLinearizable Mode = "get-linearizable"
	ModeGetSerializable Mode = "get-serializable"
)

// Modes lists every Mode in the order the comparison runs them.
var Modes = []Mode{ModePut, ModeGetLinearizable, ModeGetSerializable}

// Limits on the configuration.
const (
	MinKeySize  = 8
	MaxKeySize  = 32
	MaxKeySpace = 1_000_000
	// maxErrors stops a run that keeps failing (e.g. the cluster died).
	maxErrors = 1000
)

// Errors returned by Run, Dial and Preload.
var (
	ErrConfig    = errors.New("load: invalid configuration")
	ErrTooMany   = errors.New("load: too many failed requests")
	ErrNoSuccess = errors.New("load: no request succeeded")
)

// Config describes one run.
type Config struct {
	Mode           Mode
	Clients        int           // concurrent request loops, one goroutine each
	Total          int64         // at most this many requests are started
	Duration       time.Duration // and none after this much time
	KeySize        int           // bytes, MinKeySize..MaxKeySize
	ValueSize      int           // bytes
	KeySpace       int           // number of distinct keys, 1..MaxKeySpace
	RequestTimeout time.Duration // per request; 0 means 10 s
	Seed           uint64        // seeds the key choice and the value
}

// Validate reports whether the configuration can run.
func (c Config) Validate() error {
	switch {
	case c.Mode != ModePut && c.Mode != ModeGetLinearizable && c.Mode != ModeGetSerializable:
		return fmt.Errorf("%w: mode %q (want put, get-linearizable or get-serializable)", ErrConfig, c.Mode)
	case c.Clients < 1:
		return fmt.Errorf("%w: clients %d < 1", ErrConfig, c.Clients)
	case c.Total < 1:
		return fmt.Errorf("%w: total %d < 1", ErrConfig, c.Total)
	case c.Duration <= 0:
		return fmt.Errorf("%w: duration %v <= 0", ErrConfig, c.Duration)
	case c.KeySize < MinKeySize || c.KeySize > MaxKeySize:
		return fmt.Errorf("%w: key size %d outside %d..%d", ErrConfig, c.KeySize, MinKeySize, MaxKeySize)
	case c.ValueSize < 0:
		return fmt.Errorf("%w: value size %d < 0", ErrConfig, c.ValueSize)
	case c.KeySpace < 1 || c.KeySpace > MaxKeySpace:
		return fmt.Errorf("%w: key space %d outside 1..%d", ErrConfig, c.KeySpace, MaxKeySpace)
	}
	return nil
}

// Result is what one run measured.
type Result struct {
	Mode      Mode
	Clients   int
	Conns     int
	Requests  int64         // successful requests
	Errors    int64         // failed requests
	FirstErr  string        // the first failure, if any
	Elapsed   time.Duration // wall time from the start barrier to the last loop's end
	OpsPerSec float64       // Requests / Elapsed
	Mean      time.Duration
	P50       time.Duration
	P90       time.Duration
	P99       time.Duration
	Max       time.Duration
}

// String is a one-line summary.
func (r Result) String() string {
	return fmt.Sprintf("%s clients=%d conns=%d requests=%d errors=%d elapsed=%v ops/s=%.1f p50=%v p90=%v p99=%v max=%v",
		r.Mode, r.Clients, r.Conns, r.Requests, r.Errors, r.Elapsed.Round(time.Millisecond), r.OpsPerSec,
		r.P50, r.P90, r.P99, r.Max)
}

// Pool is a set of gRPC connections (one clientv3.Client each).
type Pool struct {
	clients []*clientv3.Client
}

// DefaultConns is the connection count for a number of clients when none is
// given: min(clients, 16).
func DefaultConns(clients int) int {
	return max(1, min(clients, 16))
}

// Dial opens conns connections to endpoints and waits until each is ready
// (at most dialTimeout per connection).
func Dial(endpoints []string, conns int, dialTimeout time.Duration) (*Pool, error) {
	if len(endpoints) == 0 || conns < 1 {
		return nil, fmt.Errorf("%w: %d endpoints, %d conns", ErrConfig, len(endpoints), conns)
	}
	p := &Pool{}
	for range conns {
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   endpoints,
			DialTimeout: dialTimeout,
			DialOptions: []grpc.DialOption{grpc.WithBlock()}, //nolint:staticcheck // wait for the connection like etcd's benchmark
			Logger:      zap.NewNop(),
		})
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("load: dial %v: %w", endpoints, err)
		}
		p.clients = append(p.clients, c)
	}
	return p, nil
}

// Conns is the number of connections in the pool.
func (p *Pool) Conns() int { return len(p.clients) }

// Close closes every connection.
func (p *Pool) Close() {
	for _, c := range p.clients {
		_ = c.Close()
	}
	p.clients = nil
}

// Key returns key i of a key space with keys of keySize bytes.
func Key(i, keySize int) string {
	return fmt.Sprintf("%0*d", keySize, i)
}

func makeKeys(keySpace, keySize int) []string {
	keys := make([]string, keySpace)
	for i := range keys {
		keys[i] = Key(i, keySize)
	}
	return keys
}

func makeValue(size int) (string, error) {
	b := make([]byte, size)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("load: value: %w", err)
	}
	return string(b), nil
}

// Preload writes each key of the key space once with concurrency loops,
// bounded by timeout.
func Preload(ctx context.Context, p *Pool, keySpace, keySize, valueSize, concurrency int, timeout time.Duration) error {
	if keySpace < 1 || keySpace > MaxKeySpace || keySize < MinKeySize || keySize > MaxKeySize || concurrency < 1 {
		return fmt.Errorf("%w: preload keyspace=%d keysize=%d concurrency=%d", ErrConfig, keySpace, keySize, concurrency)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	val, err := makeValue(valueSize)
	if err != nil {
		return err
	}
	var next atomic.Int64
	errc := make(chan error, concurrency)
	var wg sync.WaitGroup
	for w := range concurrency {
		kv := p.clients[w%len(p.clients)]
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= keySpace {
					return
				}
				if _, err := kv.Put(ctx, Key(i, keySize), val); err != nil {
					errc <- fmt.Errorf("load: preload key %d: %w", i, err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	close(errc)
	return <-errc // nil when the channel is empty
}

// Run drives the pool as cfg says and returns what it measured. A run whose
// context is cancelled stops early and reports what it had.
func Run(ctx context.Context, p *Pool, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if p.Conns() == 0 {
		return Result{}, fmt.Errorf("%w: empty pool", ErrConfig)
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	keys := makeKeys(cfg.KeySpace, cfg.KeySize)
	val := ""
	if cfg.Mode == ModePut {
		var err error
		if val, err = makeValue(cfg.ValueSize); err != nil {
			return Result{}, err
		}
	}
	var (
		started  atomic.Int64
		failed   atomic.Int64
		errOnce  sync.Once
		firstErr string
		lats     = make([][]time.Duration, cfg.Clients)
		begin    = make(chan struct{})
		wg       sync.WaitGroup
	)
	// The deadline starts at the barrier, set below.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	perClient := int(min(cfg.Total/int64(cfg.Clients)+1, 1<<20))
	for c := range cfg.Clients {
		kv := p.clients[c%len(p.clients)]
		rng := mrand.New(mrand.NewPCG(cfg.Seed, uint64(c)))
		wg.Go(func() {
			mine := make([]time.Duration, 0, perClient)
			defer func() { lats[c] = mine }()
			<-begin
			for runCtx.Err() == nil && started.Add(1) <= cfg.Total {
				key := keys[rng.IntN(len(keys))]
				rctx, rcancel := context.WithTimeout(runCtx, timeout)
				t0 := time.Now()
				var err error
				switch cfg.Mode {
				case ModePut:
					_, err = kv.Put(rctx, key, val)
				case ModeGetLinearizable:
					_, err = kv.Get(rctx, key)
				case ModeGetSerializable:
					_, err = kv.Get(rctx, key, clientv3.WithSerializable())
				}
				d := time.Since(t0)
				rcancel()
				if err != nil {
					if runCtx.Err() != nil {
						return // cut off by the end of the run: not a failure
					}
					errOnce.Do(func() { firstErr = err.Error() })
					if failed.Add(1) >= maxErrors {
						cancel()
					}
					continue
				}
				mine = append(mine, d)
			}
		})
	}
	t0 := time.Now()
	stop := time.AfterFunc(cfg.Duration, cancel)
	close(begin)
	wg.Wait()
	elapsed := time.Since(t0)
	stop.Stop()

	res := Result{Mode: cfg.Mode, Clients: cfg.Clients, Conns: p.Conns(), Errors: failed.Load(), FirstErr: firstErr, Elapsed: elapsed}
	all := slices.Concat(lats...)
	res.Requests = int64(len(all))
	if elapsed > 0 {
		res.OpsPerSec = float64(res.Requests) / elapsed.Seconds()
	}
	summarize(&res, all)
	switch {
	case res.Errors >= maxErrors:
		return res, fmt.Errorf("%w: %d, first: %s", ErrTooMany, res.Errors, firstErr)
	case res.Requests == 0 && ctx.Err() == nil:
		return res, fmt.Errorf("%w (first error: %s)", ErrNoSuccess, firstErr)
	}
	return res, ctx.Err()
}

// summarize fills the latency fields from every sample (exact nearest-rank
// percentiles).
func summarize(r *Result, all []time.Duration) {
	if len(all) == 0 {
		return
	}
	slices.Sort(all)
	var sum time.Duration
	for _, d := range all {
		sum += d
	}
	r.Mean = sum / time.Duration(len(all))
	r.P50 = percentile(all, 0.50)
	r.P90 = percentile(all, 0.90)
	r.P99 = percentile(all, 0.99)
	r.Max = all[len(all)-1]
}

// percentile is the nearest-rank percentile of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// ParseModes parses a comma-separated list of modes.
func ParseModes(s string) ([]Mode, error) {
	var out []Mode
	for f := range strings.SplitSeq(s, ",") {
		m := Mode(strings.TrimSpace(f))
		if m != ModePut && m != ModeGetLinearizable && m != ModeGetSerializable {
			return nil, fmt.Errorf("%w: mode %q", ErrConfig, m)
		}
		out = append(out, m)
	}
	return out, nil
}
