package robustness

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// watchEvent is one event a watcher received.
type watchEvent struct {
	rev    int64
	key    string
	value  string
	delete bool
	seen   time.Duration // on the workload's clock; not part of the event
}

// watcher follows the register keys from the first revision, through
// whatever members are up (clientv3 resumes from its last revision when a
// member goes away).
type watcher struct {
	mu     sync.Mutex // protects events and err
	events []watchEvent
	err    error
	cancel context.CancelFunc
	done   chan struct{}
}

func startWatcher(eps []string, now func() time.Duration) (*watcher, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cli.Close()
		for resp := range cli.Watch(ctx, "reg/", clientv3.WithPrefix(), clientv3.WithRev(1)) {
			if err := resp.Err(); err != nil {
				w.mu.Lock()
				w.err = err
				w.mu.Unlock()
				return
			}
			seen := now()
			w.mu.Lock()
			for _, ev := range resp.Events {
				w.events = append(w.events, watchEvent{
					rev: ev.Kv.ModRevision, key: string(ev.Kv.Key), value: string(ev.Kv.Value), delete: ev.Type == clientv3.EventTypeDelete, seen: seen,
				})
			}
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *watcher) snapshot() ([]watchEvent, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]watchEvent(nil), w.events...), w.err
}

func (w *watcher) stop() {
	w.cancel()
	<-w.done
}

// checkWatchers waits until every watcher has reached revision `upTo`, then
// checks: events in revision order with no duplicate, every watcher saw
// exactly the same events (no gaps on any), every acknowledged register
// write is among them, and replaying them gives the final state. It returns
// the events, each with the earliest time a watcher saw it.
func checkWatchers(ws []*watcher, upTo int64, final map[string]string, acked map[string]int64) ([]watchEvent, error) {
	deadline := time.Now().Add(15 * time.Second)
	var lists [][]watchEvent
	for i, w := range ws {
		for {
			evs, err := w.snapshot()
			if err != nil {
				return nil, fmt.Errorf("watcher %d ended with an error: %v", i, err)
			}
			if len(evs) > 0 && evs[len(evs)-1].rev >= upTo {
				lists = append(lists, evs)
				break
			}
			if time.Now().After(deadline) {
				last := int64(0)
				if len(evs) > 0 {
					last = evs[len(evs)-1].rev
				}
				return nil, fmt.Errorf("watcher %d stopped at revision %d, want %d", i, last, upTo)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	for i, evs := range lists {
		seen := map[string]bool{}
		for j, e := range evs {
			if j > 0 && e.rev < evs[j-1].rev {
				return nil, fmt.Errorf("watcher %d: revision %d after %d (out of order)", i, e.rev, evs[j-1].rev)
			}
			id := fmt.Sprintf("%d/%s", e.rev, e.key)
			if seen[id] {
				return nil, fmt.Errorf("watcher %d: duplicate event %s", i, id)
			}
			seen[id] = true
		}
	}
	for i := 1; i < len(lists); i++ {
		if len(lists[i]) != len(lists[0]) {
			return nil, fmt.Errorf("watcher %d got %d events, watcher 0 got %d (a gap on one of them)", i, len(lists[i]), len(lists[0]))
		}
		for j := range lists[0] {
			a, b := lists[0][j], lists[i][j]
			lists[0][j].seen = min(a.seen, b.seen)
			a.seen, b.seen = 0, 0
			if a != b {
				return nil, fmt.Errorf("watchers 0 and %d differ at event %d: %+v vs %+v", i, j, lists[0][j], lists[i][j])
			}
		}
	}
	byValue := map[string]int64{}
	state := map[string]string{}
	for _, e := range lists[0] {
		if e.delete {
			delete(state, e.key)
		} else {
			state[e.key] = e.value
			byValue[e.value] = e.rev
		}
	}
	for v, rev := range acked {
		if got, ok := byValue[v]; !ok || got != rev {
			return nil, fmt.Errorf("acknowledged write %q at revision %d: watchers saw it at %d (present %v)", v, rev, got, ok)
		}
	}
	for k, v := range final {
		if state[k] != v {
			return nil, fmt.Errorf("replaying the events gives %s=%q, the store has %q", k, state[k], v)
		}
	}
	for k, v := range state {
		if _, ok := final[k]; !ok {
			return nil, fmt.Errorf("replaying the events leaves %s=%q, which the store does not have", k, v)
		}
	}
	return lists[0], nil
}
