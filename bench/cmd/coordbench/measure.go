package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxErrors ends a measured run that keeps failing (the cluster died, say);
// the case is then reported as failed.
const maxErrors = 1000

// maxErrorKinds bounds the distinct error messages kept per case; the rest
// are counted under otherErrors.
const (
	maxErrorKinds = 8
	otherErrors   = "(other messages)"
)

// errTooMany is the failure of a run cut short by maxErrors.
var errTooMany = errors.New("too many failed operations")

// op is one operation of worker w. It returns the latency to record (which
// need not be the whole call: the lock case times only Lock) or an error.
type op func(ctx context.Context, w int) (time.Duration, error)

// outcome is what measure saw.
type outcome struct {
	ok      int64            // successful operations
	failed  int64            // failed operations, counted in errs
	cutOff  int64            // cancelled by the end of the run: neither success nor failure
	errs    map[string]int64 // failure message -> count
	elapsed time.Duration    // from the start barrier to the last worker's return
	lats    []time.Duration  // one per success, sorted
}

// errorLog counts failures by message, from many goroutines.
type errorLog struct {
	mu   sync.Mutex // protects the field below
	errs map[string]int64
}

func (l *errorLog) add(err error) {
	msg := err.Error()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.errs == nil {
		l.errs = map[string]int64{}
	}
	if _, ok := l.errs[msg]; !ok && len(l.errs) >= maxErrorKinds {
		msg = otherErrors
	}
	l.errs[msg]++
}

// isCancel reports whether err is a cancellation, as clientv3 (context
// error) or a raw gRPC stub (status Canceled) reports it.
func isCancel(err error) bool {
	return errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled
}

// measure runs workers loops of fn for d (plus whatever the operations in
// flight at the deadline take to return) and returns every latency. A
// cancellation after the deadline ends a loop and is counted in cutOff,
// not as a failure; every other error is a failure.
func measure(ctx context.Context, workers int, d time.Duration, fn op) (outcome, error) {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		failed, cut atomic.Int64
		elog        errorLog
		lats        = make([][]time.Duration, workers)
		begin       = make(chan struct{})
		wg          sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			var mine []time.Duration
			defer func() { lats[w] = mine }()
			<-begin
			for runCtx.Err() == nil {
				lat, err := fn(runCtx, w)
				switch {
				case err == nil:
					mine = append(mine, lat)
				case runCtx.Err() != nil && isCancel(err):
					cut.Add(1)
					return
				default:
					elog.add(err)
					if failed.Add(1) >= maxErrors {
						cancel()
					}
				}
			}
		})
	}
	t0 := time.Now()
	stop := time.AfterFunc(d, cancel)
	close(begin)
	wg.Wait()
	stop.Stop()
	out := outcome{failed: failed.Load(), cutOff: cut.Load(), errs: elog.errs, elapsed: time.Since(t0)}
	out.lats = slices.Concat(lats...)
	slices.Sort(out.lats)
	out.ok = int64(len(out.lats))
	if out.failed >= maxErrors {
		return out, fmt.Errorf("%w: %d", errTooMany, out.failed)
	}
	return out, ctx.Err()
}

// parallel runs fn(i) for i in [0, n) on at most conc goroutines and
// returns the first error; after an error no new i is started.
func parallel(n, conc int, fn func(i int) error) error {
	var (
		next    atomic.Int64
		failed  atomic.Bool
		errOnce sync.Once
		first   error
		wg      sync.WaitGroup
	)
	for range max(1, min(n, conc)) {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// percentile is the nearest-rank p-quantile (0 < p <= 1) of sorted samples,
// 0 when there are none.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// errorSummary lists error counts, most frequent first, as "N× message".
func errorSummary(errs map[string]int64) []string {
	type kv struct {
		msg string
		n   int64
	}
	var all []kv
	for m, n := range errs {
		all = append(all, kv{m, n})
	}
	sort.Slice(all, func(a, b int) bool {
		if all[a].n != all[b].n {
			return all[a].n > all[b].n
		}
		return all[a].msg < all[b].msg
	})
	out := make([]string, len(all))
	for i, e := range all {
		out[i] = fmt.Sprintf("%d× %s", e.n, e.msg)
	}
	return out
}
