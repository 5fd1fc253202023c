package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"

	"github.com/cairn-db/cairn/bench/cluster"
)

// The watched key, or prefix, and the keys written.
var (
	watchKey    = []byte("wb/key")
	watchPrefix = []byte("wb/")
	prefixEnd   = []byte("wb0")
)

func keyFunc(target string) func(int) []byte {
	if target == "key" {
		return func(int) []byte { return watchKey }
	}
	return func(seq int) []byte { return fmt.Appendf(nil, "wb/k%02d", seq%16) }
}

// runGroup runs every rate for n watchers on target against a fresh
// cluster of sys, and kills the cluster.
func runGroup(ctx context.Context, o options, work string, sys cluster.System, n int, target string, logw io.Writer) ([]record, error) {
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
		return nil, err
	}
	defer c.Stop()
	fmt.Fprintf(logw, "%s: cluster %v\n", sys, c.Endpoints())
	dirs := make([]string, len(c.Members))
	for i, m := range c.Members {
		dirs[i] = m.DataDir
	}
	pids, err := memberPIDs(dirs)
	if err != nil {
		return nil, err
	}

	gctx, cancel := context.WithCancel(ctx)
	defer cancel()
	eps := c.Endpoints()
	var grpcConns []*grpc.ClientConn
	defer func() {
		for _, cc := range grpcConns {
			_ = cc.Close()
		}
	}()
	var conns []any // the watch streams' (an *h2conn closes when gctx ends)
	for i := range o.conns {
		ep := eps[i%len(eps)]
		if o.client == "h2" {
			hc, err := dialH2(gctx, ep)
			if err != nil {
				return nil, err
			}
			conns = append(conns, hc)
			continue
		}
		cc, err := dial(gctx, ep, 10*time.Second)
		if err != nil {
			return nil, err
		}
		grpcConns = append(grpcConns, cc)
		conns = append(conns, cc)
	}
	wconn, err := leaderConn(gctx, eps)
	if err != nil {
		return nil, err
	}
	grpcConns = append(grpcConns, wconn)
	kv := pb.NewKVClient(wconn)

	base, err := currentRev(gctx, kv, watchKey)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, r := range o.rates {
		total += int(r * o.writeTime(r).Seconds())
	}
	t := newTracker(base, total+64)
	var key, end []byte
	if target == "key" {
		key = watchKey
	} else {
		key, end = watchPrefix, prefixEnd
	}

	time.Sleep(o.settle)
	rss0, err := rss(pids)
	if err != nil {
		return nil, err
	}
	setupStart := time.Now()
	streams, err := openStreams(gctx, conns, t, n, o.perStream, key, end)
	defer func() {
		cancel()
		for _, s := range streams {
			<-s.done
		}
	}()
	if err != nil {
		return nil, err
	}
	setup := time.Since(setupStart)
	time.Sleep(o.settle)
	rss1, err := rss(pids)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logw, "%s: %d watchers on %d streams in %v; RSS %.1f -> %.1f MiB\n",
		sys, n, len(streams), setup.Round(time.Millisecond), mib(rss0), mib(rss1))

	var recs []record
	seq0 := 0
	for k, rate := range o.rates {
		if ctx.Err() != nil {
			return recs, ctx.Err()
		}
		segBase, err := currentRev(gctx, kv, watchKey)
		if err != nil {
			return recs, err
		}
		t.segBase[k].Store(segBase)
		m0, _ := scrape(gctx, eps, o.metrics)
		cpu0, err := c.CPU()
		if err != nil {
			return recs, err
		}
		self0 := selfCPU()
		var got0 int64
		for _, s := range streams {
			got0 += s.distinct.Load()
		}
		wr := write(gctx, kv, t, seq0, rate, o.writeTime(rate), keyFunc(target), o.valueSize)
		seq0 += wr.sent
		drainStart := time.Now()
		want := int64(n) * int64(len(wr.acked))
		lastGot, lastProgress := int64(-1), time.Now()
		for time.Since(drainStart) < o.drain && time.Since(lastProgress) < o.drainIdle && ctx.Err() == nil {
			var got int64
			for _, s := range streams {
				got += s.distinct.Load()
			}
			if got-got0 >= want {
				break
			}
			if got != lastGot {
				lastGot, lastProgress = got, time.Now()
			}
			time.Sleep(20 * time.Millisecond)
		}
		drain := time.Since(drainStart)
		cpu1, err := c.CPU()
		if err != nil {
			return recs, err
		}
		self1 := selfCPU()
		m1, _ := scrape(gctx, eps, o.metrics)
		if err := c.Alive(); err != nil {
			return recs, err
		}
		sr := summarize(streams, k, wr.acked)
		rec := record{
			System: sys, Client: o.client, Watchers: n, Target: target, Rate: rate, Streams: len(streams), Conns: o.conns,
			SetupSec: setup.Seconds(), RSSBeforeMiB: mib(rss0), RSSAfterMiB: mib(rss1),
			BytesPerWatcher: float64(rss1-rss0) / float64(n),
			Sent:            wr.sent, Acked: len(wr.acked), PutFailed: wr.failed, PutErr: wr.firstErr, PutsLate: wr.late,
			WriteSec: wr.elapsed.Seconds(), PutP99ms: ms(wr.putP99), DrainSec: drain.Seconds(),
			Expected: sr.expected, Received: sr.received, Lost: sr.lost, Dups: sr.dups, Early: sr.early,
			Unacked: sr.unacked, Unexpected: sr.unexpected, StreamErrs: sr.streamErrs, StreamErr: sr.firstErr,
			P50ms: sr.h.quantile(0.50) / 1e3, P99ms: sr.h.quantile(0.99) / 1e3, MaxMs: float64(sr.h.maxNs) / 1e6,
			SendP50ms: sr.hSend.quantile(0.50) / 1e3, SendP99ms: sr.hSend.quantile(0.99) / 1e3, SendMaxMs: float64(sr.hSend.maxNs) / 1e6,
			PutP50ms:     ms(wr.putP50),
			ServerCPUSec: (cpu1 - cpu0).Seconds(), ClientCPUSec: (self1 - self0).Seconds(),
		}
		if m0 != nil && m1 != nil {
			rec.ServerHists = histSummary(m0, m1)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// openStreams opens ceil(n/perStream) streams, stream j on conns[j mod
// len(conns)], 16 at a time. On error the streams opened so far are
// returned too (their goroutines end when ctx is canceled).
func openStreams(ctx context.Context, conns []any, t *tracker, n, perStream int, key, end []byte) ([]*wstream, error) {
	ns := (n + perStream - 1) / perStream
	streams := make([]*wstream, ns)
	errs := make([]error, ns)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for j := range ns {
		cnt := min(perStream, n-j*perStream)
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			type result struct {
				s   *wstream
				err error
			}
			done := make(chan result, 1)
			go func() {
				s, err := openStream(ctx, conns[j%len(conns)], t, cnt, key, end)
				done <- result{s, err}
			}()
			select {
			case r := <-done:
				streams[j], errs[j] = r.s, r.err
			case <-sctx.Done():
				errs[j] = fmt.Errorf("%w: stream %d not created in time: %w", ErrWatch, j, sctx.Err())
			}
		}()
	}
	wg.Wait()
	var out []*wstream
	var first error
	for j := range ns {
		if streams[j] != nil {
			out = append(out, streams[j])
		}
		if errs[j] != nil && first == nil {
			first = errs[j]
		}
	}
	return out, first
}

// leaderConn dials every endpoint and keeps the connection to the leader
// (the first endpoint if none answers Status).
func leaderConn(ctx context.Context, eps []string) (*grpc.ClientConn, error) {
	var keep *grpc.ClientConn
	for _, ep := range eps {
		cc, err := dial(ctx, ep, 10*time.Second)
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := pb.NewMaintenanceClient(cc).Status(sctx, &pb.StatusRequest{})
		cancel()
		if keep == nil && err == nil && st.Header != nil && st.Leader == st.Header.MemberId {
			keep = cc
			continue
		}
		_ = cc.Close()
	}
	if keep == nil {
		return dial(ctx, eps[0], 10*time.Second)
	}
	return keep, nil
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, _ := strconv.ParseInt(s, 10, 64)
		ticks += v
	}
	return time.Duration(ticks) * time.Second / 100
}

func mib(b int64) float64        { return float64(b) / (1 << 20) }
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
