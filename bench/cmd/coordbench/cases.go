package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/cairn-db/cairn/bench/cluster"
	"github.com/cairn-db/cairn/cairnclient"
)

// The cases, in the order they run.
const (
	caseGrant     = "grant"
	caseKeepAlive = "keepalive"
	caseLock16    = "lock16"
	caseLock256   = "lock256"
	caseSeq       = "seq"
)

var allCases = []string{caseGrant, caseKeepAlive, caseLock16, caseLock256, caseSeq}

// Fixed parameters of the workloads.
const (
	leaseTTL       = 60 // seconds, for granted leases and lock sessions
	requestTimeout = 10 * time.Second
	lockName       = "coordbench/lock"
	seqPrefix      = "seq/"
	seqValue       = "coordbench-sequential-value-0032" // 32 bytes
	dialTimeout    = 10 * time.Second
)

// errNoSeqOnEtcd is why the seq case has no etcd row.
const errNoSeqOnEtcd = "etcd has no sequential-key operation (CreateSequential is a Cairn extension)"

// errTwoHolders is reported when two clients hold the lock at once.
var errTwoHolders = errors.New("mutual exclusion violated: Lock returned while another client held the lock")

// caseClients is the number of concurrent clients of a case.
func caseClients(name string, o options) int {
	switch name {
	case caseLock16:
		return 16
	case caseLock256:
		return 256
	}
	return o.clients
}

// runCase starts a fresh cluster of sys, runs case name on it and kills it.
// The record is filled as far as the case got, also when it fails.
func runCase(ctx context.Context, o options, work string, sys cluster.System, name string, logf func(string, ...any)) (rec record, err error) {
	n := caseClients(name, o)
	rec = record{Case: name, System: sys, Clients: n, DurationSec: o.duration.Seconds()}
	if name == caseKeepAlive {
		rec.Leases = o.leases
	}
	if name == caseSeq && sys == cluster.Etcd {
		rec.Skipped = errNoSeqOnEtcd
		return rec, nil
	}
	ctx, cancel := context.WithTimeout(ctx, o.caseTimeLimit)
	defer cancel()

	bin := o.cairn
	if sys == cluster.Etcd {
		bin = o.etcd
	}
	setupStart := time.Now()
	var c *cluster.Cluster
	for attempt := 0; attempt < 3; attempt++ { // a port taken by someone else between reserve and bind
		if c, err = cluster.Start(ctx, cluster.Spec{System: sys, Binary: bin, Dir: work}); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return rec, err
	}
	defer c.Stop()
	logf("%s %s: cluster %v", sys, name, c.Endpoints())

	clis, err := dialSpread(ctx, c.Endpoints(), n)
	defer func() {
		for _, cli := range clis {
			_ = cli.Close()
		}
	}()
	if err != nil {
		return rec, err
	}

	var fn op
	switch name {
	case caseGrant:
		fn = func(rctx context.Context, w int) (time.Duration, error) {
			rctx, rcancel := context.WithTimeout(rctx, requestTimeout)
			defer rcancel()
			t0 := time.Now()
			_, err := clis[w].Grant(rctx, leaseTTL)
			return time.Since(t0), err
		}
	case caseKeepAlive:
		leases, err := grantLeases(ctx, clis, o.leases)
		if err != nil {
			return rec, err
		}
		var next atomic.Int64
		fn = func(rctx context.Context, w int) (time.Duration, error) {
			id := leases[int((next.Add(1)-1)%int64(len(leases)))]
			rctx, rcancel := context.WithTimeout(rctx, requestTimeout)
			defer rcancel()
			t0 := time.Now()
			_, err := clis[w].KeepAliveOnce(rctx, id)
			return time.Since(t0), err
		}
	case caseLock16, caseLock256:
		sessions, err := openSessions(ctx, clis)
		defer func() {
			for _, s := range sessions {
				if s != nil {
					s.Orphan() // the cluster is killed next; revoking would only add load
				}
			}
		}()
		if err != nil {
			return rec, err
		}
		fn = lockOp(ctx, sessions)
	case caseSeq:
		fn = func(rctx context.Context, w int) (time.Duration, error) {
			rctx, rcancel := context.WithTimeout(rctx, requestTimeout)
			defer rcancel()
			t0 := time.Now()
			_, _, err := cairnclient.CreateSequential(rctx, clis[w], seqPrefix, seqValue, 0)
			return time.Since(t0), err
		}
	default:
		return rec, fmt.Errorf("unknown case %q", name)
	}
	rec.SetupSec = time.Since(setupStart).Seconds()

	cpu0, err := c.CPU()
	if err != nil {
		return rec, err
	}
	out, runErr := measure(ctx, n, o.duration, fn)
	rec.fill(out)
	cpu1, err := c.CPU()
	if err != nil {
		return rec, err
	}
	rec.CPUSec = (cpu1 - cpu0).Seconds()
	if out.ok > 0 {
		rec.CPUusPerOp = float64(cpu1-cpu0) / float64(time.Microsecond) / float64(out.ok)
	}
	rss, err := c.PeakRSS()
	if err != nil {
		return rec, err
	}
	for _, b := range rss {
		mib := float64(b) / (1 << 20)
		rec.PeakRSSMiB = append(rec.PeakRSSMiB, mib)
		rec.MaxRSSMiB = max(rec.MaxRSSMiB, mib)
		rec.TotalRSSMiB += mib
	}
	if err := c.Alive(); err != nil {
		return rec, err
	}
	if runErr != nil {
		return rec, runErr
	}
	if out.ok == 0 {
		return rec, errors.New("no operation succeeded")
	}
	return rec, nil
}

// dialSpread opens n clients, client i connected to member i mod len(eps)
// only, each on its own gRPC connection, and waits until each is connected.
// On error it returns the clients opened so far, for the caller to close.
func dialSpread(ctx context.Context, eps []string, n int) ([]*clientv3.Client, error) {
	clis := make([]*clientv3.Client, n)
	err := parallel(n, 16, func(i int) error {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints:   []string{eps[i%len(eps)]},
			DialTimeout: dialTimeout,
			DialOptions: []grpc.DialOption{grpc.WithBlock()}, //nolint:staticcheck // connected before the timer starts
			Logger:      zap.NewNop(),
			Context:     ctx,
		})
		if err != nil {
			return fmt.Errorf("dial %s: %w", eps[i%len(eps)], err)
		}
		clis[i] = cli
		return nil
	})
	opened := clis[:0]
	for _, c := range clis {
		if c != nil {
			opened = append(opened, c)
		}
	}
	return opened, err
}

// grantLeases grants n leases of leaseTTL seconds, spread over the clients.
func grantLeases(ctx context.Context, clis []*clientv3.Client, n int) ([]clientv3.LeaseID, error) {
	ids := make([]clientv3.LeaseID, n)
	err := parallel(n, len(clis), func(i int) error {
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		resp, err := clis[i%len(clis)].Grant(rctx, leaseTTL)
		if err != nil {
			return fmt.Errorf("granting lease %d of %d: %w", i+1, n, err)
		}
		ids[i] = resp.ID
		return nil
	})
	return ids, err
}

// openSessions opens one concurrency.Session (lease TTL leaseTTL, kept
// alive by the client) per client. The sessions live until ctx ends or
// they are orphaned.
func openSessions(ctx context.Context, clis []*clientv3.Client) ([]*concurrency.Session, error) {
	ss := make([]*concurrency.Session, len(clis))
	err := parallel(len(clis), 16, func(i int) error {
		s, err := concurrency.NewSession(clis[i], concurrency.WithTTL(leaseTTL), concurrency.WithContext(ctx))
		if err != nil {
			return fmt.Errorf("session %d: %w", i, err)
		}
		ss[i] = s
		return nil
	})
	return ss, err
}

// lockOp is one acquire/release of the shared lock by worker w on its own
// session: a new Mutex, Lock (timed; no timeout but the end of the run,
// since waiting is the point), then Unlock under ctx, the case's context,
// so that a holder at the deadline still releases. It checks that no two
// workers hold the lock at once.
func lockOp(ctx context.Context, sessions []*concurrency.Session) op {
	var holders atomic.Int32
	return func(rctx context.Context, w int) (time.Duration, error) {
		m := concurrency.NewMutex(sessions[w], lockName)
		t0 := time.Now()
		if err := m.Lock(rctx); err != nil {
			return 0, err
		}
		lat := time.Since(t0)
		exclusive := holders.Add(1) == 1
		holders.Add(-1)
		uctx, cancel := context.WithTimeout(ctx, requestTimeout)
		defer cancel()
		if err := m.Unlock(uctx); err != nil {
			return 0, fmt.Errorf("unlock: %w", err)
		}
		if !exclusive {
			return 0, errTwoHolders
		}
		return lat, nil
	}
}
