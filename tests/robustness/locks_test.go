package robustness

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/cairn-db/cairn/cairnclient"
)

// The lock workload: clients take one lock (clientv3's Mutex on sessions
// of a short TTL, so that a client cut off from the cluster loses it while
// it still believes it holds it), or win one election (clientv3's
// Election: the same ownership rule, the lowest create revision under the
// name), and, holding it, increment a counter with a read and a write
// guarded by their fencing token. If two clients ever
// acted as holders at once and both writes were accepted, the counter
// would repeat a value. The check reads the counter's whole history:
// values must be exactly 1, 2, 3, ... and include every acknowledged
// increment.
const (
	lockTTL  = 2 // seconds
	lockWait = 3 * time.Second
)

type lockWorkload struct {
	name    string // the lock or election
	counter string // the counter's key
	elect   bool   // campaign in an election instead of taking a Mutex

	mu    sync.Mutex // protects acked and the counters
	acked map[int64]bool
	holds int // acquisitions
	stale int // guarded writes refused (the lock had moved on)
	wg    sync.WaitGroup
	stop  chan struct{}
}

func startLocks(eps []string, clients int, name, counter string, elect bool, stop chan struct{}) (*lockWorkload, error) {
	l := &lockWorkload{name: name, counter: counter, elect: elect, acked: map[int64]bool{}, stop: stop}
	// clientv3's Mutex.Lock and Election.Campaign clean up after a failure
	// with the client's own context (Unlock, Resign), which has no
	// deadline: a client pinned to a member that was removed would wait
	// there forever. The client's context ends with the workload.
	base, cancel := context.WithCancel(context.Background())
	go func() { <-stop; cancel() }()
	for i := range clients {
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[i%len(eps)]}, DialTimeout: time.Second, Logger: zap.NewNop(), Context: base})
		if err != nil {
			return nil, err
		}
		l.wg.Add(1)
		go l.client(cli)
	}
	return l, nil
}

func (l *lockWorkload) stopped() bool { return isClosed(l.stop) }

func (l *lockWorkload) client(cli *clientv3.Client) {
	defer l.wg.Done()
	defer cli.Close()
	for !l.stopped() {
		l.round(cli)
	}
}

// round: a session, the lock, a few guarded increments, unlock.
func (l *lockWorkload) round(cli *clientv3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), lockWait)
	defer cancel()
	// The session's context bounds its lease grant (a client pinned to a
	// member that was removed would otherwise retry forever) and its
	// keepalives; a round ends well within it.
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(lockTTL), concurrency.WithContext(sctx))
	if err != nil {
		time.Sleep(50 * time.Millisecond) // back off while the cluster is unavailable
		return
	}
	defer s.Close()
	var token int64
	var release func(context.Context) error
	if l.elect {
		e := concurrency.NewElection(s, l.name)
		if err := e.Campaign(ctx, "candidate"); err != nil {
			return
		}
		token, release = e.Rev(), e.Resign
	} else {
		m := concurrency.NewMutex(s, l.name)
		if err := m.Lock(ctx); err != nil {
			return
		}
		var err error
		if token, err = cairnclient.MutexToken(ctx, cli, m); err != nil {
			return
		}
		release = m.Unlock
	}
	l.mu.Lock()
	l.holds++
	l.mu.Unlock()
	fenced := cairnclient.WithFence(context.Background(), l.name, token)
	for range 3 {
		if l.stopped() {
			break
		}
		wctx, wcancel := context.WithTimeout(fenced, 2*time.Second)
		l.increment(wctx, cli)
		wcancel()
	}
	uctx, ucancel := context.WithTimeout(context.Background(), time.Second)
	_ = release(uctx)
	ucancel()
}

// increment reads the counter and writes counter+1 if it did not change in
// between (a CAS), guarded by the fence in ctx. Without the fence a stale
// holder's CAS could still succeed against a value the new holder has not
// yet changed.
func (l *lockWorkload) increment(ctx context.Context, cli *clientv3.Client) {
	r, err := cli.Get(ctx, l.counter)
	if err != nil {
		return
	}
	var v int64
	cmp := clientv3.Compare(clientv3.CreateRevision(l.counter), "=", 0)
	if len(r.Kvs) == 1 {
		v, _ = strconv.ParseInt(string(r.Kvs[0].Value), 10, 64)
		cmp = clientv3.Compare(clientv3.ModRevision(l.counter), "=", r.Kvs[0].ModRevision)
	}
	next := strconv.FormatInt(v+1, 10)
	resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(l.counter, next)).Commit()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil && resp.Succeeded:
		l.acked[v+1] = true
	case err != nil && isFenceRefusal(err):
		l.stale++
	}
}

func isFenceRefusal(err error) bool {
	return err != nil && strings.Contains(err.Error(), "fencing token")
}

func (l *lockWorkload) wait() { l.wg.Wait() }

// check reads every value the counter ever had (no compaction runs in the
// suite) and verifies 1, 2, 3, ... with every acknowledged increment in it.
func (l *lockWorkload) check(cli *clientv3.Client) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cur, err := cli.Get(ctx, l.counter)
	if err != nil {
		return "", err
	}
	if len(cur.Kvs) == 0 {
		return "", fmt.Errorf("the counter %s was never written (%d acquisitions of %s)", l.counter, l.holds, l.name)
	}
	var seq []int64
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	for resp := range cli.Watch(wctx, l.counter, clientv3.WithRev(1)) {
		if err := resp.Err(); err != nil {
			return "", err
		}
		for _, ev := range resp.Events {
			v, _ := strconv.ParseInt(string(ev.Kv.Value), 10, 64)
			seq = append(seq, v)
			if ev.Kv.ModRevision >= cur.Kvs[0].ModRevision {
				wcancel()
			}
		}
	}
	for i, v := range seq {
		if v != int64(i+1) {
			return "", fmt.Errorf("MUTUAL EXCLUSION VIOLATED: the counter's value %d is %d, want %d (values %v)", i+1, v, i+1, seq[max(0, i-3):min(len(seq), i+3)])
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for v := range l.acked {
		if v > int64(len(seq)) {
			return "", fmt.Errorf("acknowledged increment to %d missing (the counter reached %d)", v, len(seq))
		}
	}
	return fmt.Sprintf("%d acquisitions, counter %d (%d acknowledged increments), %d stale writes refused by the fence",
		l.holds, len(seq), len(l.acked), l.stale), nil
}
