package robustness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-db/cairn/tests/robustness/history"
)

// workload drives the register workload (get, put, CAS, delete on a few hot
// keys, recorded for the linearizability check) and the set workload
// (unique inserts, every acknowledged one must survive).
type workload struct {
	rec   *history.Recorder
	start time.Time
	seed  uint64

	mu          sync.Mutex // protects acked, writes and ackedWrites
	acked       []string
	writes      int              // acknowledged register writes
	ackedWrites map[string]int64 // value of each acknowledged register write -> its revision

	stop chan struct{}
	wg   sync.WaitGroup
}

var hotKeys = []string{"reg/a", "reg/b", "reg/c"}

func newWorkload(seed uint64) *workload {
	return &workload{rec: history.NewRecorder(history.WithDefiniteFailure(definitelyFailed)), start: time.Now(), seed: seed,
		stop: make(chan struct{}), ackedWrites: map[string]int64{}}
}

func (w *workload) now() time.Duration { return time.Since(w.start) }

// run starts `clients` register clients and `setters` set clients; client i
// talks only to endpoint i%len(eps), so some clients always hit followers
// and whatever member is faulted.
func (w *workload) run(eps []string, clients, setters int) error {
	for i := 0; i < clients+setters; i++ {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{eps[i%len(eps)]}, DialTimeout: time.Second, Logger: zap.NewNop(),
		})
		if err != nil {
			return err
		}
		w.wg.Add(1)
		if i < clients {
			go w.registerClient(i, cli)
		} else {
			go w.setClient(i, cli)
		}
	}
	return nil
}

func (w *workload) halt() {
	close(w.stop)
	w.wg.Wait()
}

func (w *workload) stopped() bool { return isClosed(w.stop) }

// definitelyFailed reports whether err guarantees the request had no
// effect: the server rejected it before proposing it.
func definitelyFailed(err error) bool {
	st, ok := status.FromError(err)
	return ok && (st.Code() == codes.InvalidArgument || st.Code() == codes.OutOfRange || st.Code() == codes.FailedPrecondition)
}

func (w *workload) registerClient(id int, cli *clientv3.Client) {
	defer w.wg.Done()
	defer cli.Close()
	rnd := rand.New(rand.NewPCG(w.seed, uint64(id)))
	seq := 0
	last := map[string]string{}
	for !w.stopped() {
		key := hotKeys[rnd.IntN(len(hotKeys))]
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		call := w.now()
		switch n := rnd.IntN(100); {
		case n < 45:
			resp, err := cli.Get(ctx, key)
			ret := w.now()
			var gr history.GetResult
			if err == nil {
				gr.Rev = resp.Header.Revision
				if len(resp.Kvs) == 1 {
					gr.Exists, gr.Value, gr.ModRev = true, string(resp.Kvs[0].Value), resp.Kvs[0].ModRevision
					last[key] = gr.Value
				} else {
					last[key] = ""
				}
			}
			w.rec.Get(id, key, call, ret, gr, err)
		case n < 75:
			seq++
			val := fmt.Sprintf("c%d-%d", id, seq)
			resp, err := cli.Put(ctx, key, val)
			ret := w.now()
			var rev int64
			if err == nil {
				rev = resp.Header.Revision
				w.countWrite(val, rev)
			}
			w.rec.Put(id, key, val, call, ret, rev, err)
		case n < 92:
			seq++
			val := fmt.Sprintf("c%d-%d", id, seq)
			expect := last[key]
			cmp := clientv3.Compare(clientv3.Value(key), "=", expect)
			if expect == "" {
				cmp = clientv3.Compare(clientv3.CreateRevision(key), "=", 0)
			}
			resp, err := cli.Txn(ctx).If(cmp).Then(clientv3.OpPut(key, val)).Commit()
			ret := w.now()
			var ok bool
			var rev int64
			if err == nil {
				ok, rev = resp.Succeeded, resp.Header.Revision
				if ok {
					w.countWrite(val, rev)
				}
			}
			w.rec.CAS(id, key, expect, val, call, ret, ok, rev, err)
		default:
			resp, err := cli.Delete(ctx, key)
			ret := w.now()
			var deleted, rev int64
			if err == nil {
				deleted, rev = resp.Deleted, resp.Header.Revision
			}
			w.rec.Delete(id, key, call, ret, deleted, rev, err)
		}
		cancel()
		// Pace the clients (about 150 ops/s each): the history stays small
		// enough to check quickly even when a long fault makes it long.
		select {
		case <-w.stop:
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (w *workload) countWrite(val string, rev int64) {
	w.mu.Lock()
	w.writes++
	w.ackedWrites[val] = rev
	w.mu.Unlock()
}

func (w *workload) setClient(id int, cli *clientv3.Client) {
	defer w.wg.Done()
	defer cli.Close()
	for seq := 0; !w.stopped(); seq++ {
		key := fmt.Sprintf("set/%d/%06d", id, seq)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := cli.Put(ctx, key, "x")
		cancel()
		if err == nil {
			w.mu.Lock()
			w.acked = append(w.acked, key)
			w.mu.Unlock()
		} else if errors.Is(err, context.Canceled) {
			return
		}
	}
}

// checkSet returns the acknowledged set inserts missing from the cluster.
func (w *workload) checkSet(cli *clientv3.Client) (missing []string, total int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, "set/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, 0, err
	}
	have := make(map[string]bool, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, k := range w.acked {
		if !have[k] {
			missing = append(missing, k)
		}
	}
	return missing, len(w.acked), nil
}

// isClosed reports whether ch is closed (a workload's stop signal).
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
