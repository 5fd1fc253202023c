package robustness

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// The lease workload: clients hold short leases with one key each and keep
// them alive; a watcher times every deletion of those keys. A lease must
// never expire before its TTL has passed since the last keepalive the
// server acknowledged: the server applies a keepalive after the client sent
// it, so the key's deletion (seen by the watcher, later still) must come at
// least TTL after that keepalive was sent. Faults make keepalives fail and
// leases expire; they must never make one expire early.
const (
	leaseTTL      = 1 // seconds: the minimum at the suite's timeouts
	leaseInterval = 300 * time.Millisecond
)

type leaseWorkload struct {
	start time.Time
	mu    sync.Mutex // protects the fields below
	// lastSent is, per lease, when the last acknowledged keepalive (or the
	// grant) was sent.
	lastSent map[clientv3.LeaseID]time.Duration
	keyLease map[string]clientv3.LeaseID
	deleted  map[string]time.Duration // key -> when the watcher saw it deleted
	expired  int                      // leases the clients found gone
	wg       sync.WaitGroup
	stop     chan struct{}
	cancel   context.CancelFunc
}

func startLeases(eps []string, clients int, stop chan struct{}) (*leaseWorkload, error) {
	l := &leaseWorkload{start: time.Now(), lastSent: map[clientv3.LeaseID]time.Duration{}, keyLease: map[string]clientv3.LeaseID{},
		deleted: map[string]time.Duration{}, stop: stop}
	wcli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	wch := wcli.Watch(ctx, "ls/", clientv3.WithPrefix(), clientv3.WithRev(1))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer wcli.Close()
		for resp := range wch {
			now := time.Since(l.start)
			l.mu.Lock()
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					l.deleted[string(ev.Kv.Key)] = now
				}
			}
			l.mu.Unlock()
		}
	}()
	for i := range clients {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[i%len(eps)]}, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			return nil, err
		}
		l.wg.Add(1)
		go l.client(i, cli)
	}
	return l, nil
}

func (l *leaseWorkload) stopped() bool { return isClosed(l.stop) }

func (l *leaseWorkload) client(id int, cli *clientv3.Client) {
	defer l.wg.Done()
	defer cli.Close()
	for n := 0; !l.stopped(); n++ {
		key := fmt.Sprintf("ls/%d/%d", id, n)
		sent := time.Since(l.start)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		g, err := cli.Grant(ctx, leaseTTL)
		if err == nil {
			_, err = cli.Put(ctx, key, "v", clientv3.WithLease(g.ID))
		}
		cancel()
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		l.mu.Lock()
		l.lastSent[g.ID] = sent
		l.keyLease[key] = g.ID
		l.mu.Unlock()
		l.keepAlive(cli, g.ID)
	}
}

// keepAlive renews the lease until it is gone or the workload stops.
func (l *leaseWorkload) keepAlive(cli *clientv3.Client, id clientv3.LeaseID) {
	for !l.stopped() {
		time.Sleep(leaseInterval)
		sent := time.Since(l.start)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.KeepAliveOnce(ctx, id)
		cancel()
		switch {
		case err == nil:
			l.mu.Lock()
			l.lastSent[id] = sent
			l.mu.Unlock()
		case errors.Is(err, rpctypes.ErrLeaseNotFound):
			l.mu.Lock()
			l.expired++
			l.mu.Unlock()
			return
		}
	}
}

// check waits for the watcher to have seen the deletion of every key whose
// lease the clients found gone, then verifies no key went early.
func (l *leaseWorkload) check() (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var early []string
	for key, at := range l.deleted {
		id, ok := l.keyLease[key]
		if !ok {
			continue
		}
		if min := l.lastSent[id] + leaseTTL*time.Second; at < min {
			early = append(early, fmt.Sprintf("%s (lease %x) deleted at %v, its last acknowledged keepalive was sent at %v", key, int64(id), at, l.lastSent[id]))
		}
	}
	if len(early) > 0 {
		return "", fmt.Errorf("LEASES EXPIRED EARLY: %d, e.g. %s", len(early), early[0])
	}
	return fmt.Sprintf("%d leases, %d found expired by their clients, %d keys deleted, none early", len(l.keyLease), l.expired, len(l.deleted)), nil
}

func (l *leaseWorkload) wait() {
	l.cancel()
	l.wg.Wait()
}
