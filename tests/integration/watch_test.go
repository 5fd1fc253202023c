package integration

// Watch tests: every clientv3 watch option against Cairn, with exact event
// sequences (type, key, value, mod revision), plus a stalled raw gRPC stream
// and a member stopped under a watcher.
//
// The single-member tests also run against a real etcd, to check the tests
// themselves:
//
//	CAIRN_WATCH_ETCD=1 go test ./tests/integration -run Watch
//
// (tests that stop members are skipped then).

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/testutil"
)

// watchTimeout bounds every wait for watch responses.
const watchTimeout = 15 * time.Second

// watchEnv is one fresh single-member Cairn cluster (or an etcd with
// CAIRN_WATCH_ETCD=1) per test.
type watchEnv struct {
	t   *testing.T
	eps []string
}

func newWatchEnv(t *testing.T) *watchEnv {
	t.Helper()
	if os.Getenv("CAIRN_WATCH_ETCD") != "" {
		return &watchEnv{t: t, eps: []string{testutil.StartEtcd(t)}}
	}
	return &watchEnv{t: t, eps: testutil.NewCluster(t, 1, testutil.ClusterOptions{}).Endpoints()}
}

// client returns a new client (its own gRPC connection), closed at test end.
func (e *watchEnv) client(opts ...grpc.DialOption) *clientv3.Client {
	e.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: e.eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(), DialOptions: opts})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { cli.Close() })
	return cli
}

func skipOnEtcd(t *testing.T) {
	if os.Getenv("CAIRN_WATCH_ETCD") != "" {
		t.Skip("stops members of an in-process Cairn cluster")
	}
}

// ev is an event as the tests compare it. Prev is the previous value, "-"
// when the event carries no previous pair.
type ev struct {
	Type  string
	Key   string
	Value string
	Rev   int64
	Prev  string
}

func (e ev) String() string {
	s := fmt.Sprintf("%s %q@%d", e.Type, e.Key, e.Rev)
	if e.Type == "PUT" {
		s = fmt.Sprintf("%s %q=%q@%d", e.Type, e.Key, abbrev(e.Value), e.Rev)
	}
	if e.Prev != "-" && e.Prev != "" {
		s += fmt.Sprintf(" prev=%q", abbrev(e.Prev))
	}
	return s
}

func abbrev(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%s...(%d bytes)", s[:16], len(s))
	}
	return s
}

func putEv(k, v string, rev int64) ev { return ev{Type: "PUT", Key: k, Value: v, Rev: rev} }
func delEv(k string, rev int64) ev    { return ev{Type: "DELETE", Key: k, Rev: rev} }

// withPrev sets the expected previous value ("-" for none).
func (e ev) withPrev(v string) ev { e.Prev = v; return e }

func toEv(e *clientv3.Event, prevKV bool) ev {
	out := ev{Type: "PUT", Key: string(e.Kv.Key), Value: string(e.Kv.Value), Rev: e.Kv.ModRevision}
	if e.Type == mvccpb.DELETE {
		out.Type = "DELETE"
	}
	if prevKV {
		out.Prev = "-"
		if e.PrevKv != nil {
			out.Prev = string(e.PrevKv.Value)
		}
	}
	return out
}

// recv reads wch until it has n events, failing on a cancel, a closed channel
// or watchTimeout. It returns the events and the responses that carried them.
func recv(t *testing.T, wch clientv3.WatchChan, n int, prevKV bool) ([]ev, []clientv3.WatchResponse) {
	t.Helper()
	var evs []ev
	var resps []clientv3.WatchResponse
	deadline := time.NewTimer(watchTimeout)
	defer deadline.Stop()
	for len(evs) < n {
		select {
		case wr, ok := <-wch:
			if !ok {
				t.Fatalf("watch channel closed after %d of %d events: %v", len(evs), n, evs)
			}
			if err := wr.Err(); err != nil || wr.Canceled {
				t.Fatalf("watch canceled after %d of %d events (compact revision %d): %v; events so far %v", len(evs), n, wr.CompactRevision, err, evs)
			}
			if len(wr.Events) == 0 {
				continue // created or progress notification
			}
			resps = append(resps, wr)
			for _, e := range wr.Events {
				evs = append(evs, toEv(e, prevKV))
			}
		case <-deadline.C:
			t.Fatalf("got %d of %d events within %v: %v", len(evs), n, watchTimeout, evs)
		}
	}
	return evs, resps
}

func checkEvents(t *testing.T, what string, got, want []ev) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

// checkGrouped checks that all events of a revision came in one response and
// that revisions increase across responses.
func checkGrouped(t *testing.T, resps []clientv3.WatchResponse) {
	t.Helper()
	where := map[int64]int{}
	var last int64
	for i, wr := range resps {
		for _, e := range wr.Events {
			r := e.Kv.ModRevision
			if r < last {
				t.Errorf("response %d: revision %d after %d", i, r, last)
			}
			last = r
			if j, ok := where[r]; ok && j != i {
				t.Errorf("events of revision %d split across responses %d and %d", r, j, i)
			}
			where[r] = i
		}
	}
}

func put(t *testing.T, ctx context.Context, cli *clientv3.Client, k, v string) int64 {
	t.Helper()
	resp, err := cli.Put(ctx, k, v)
	if err != nil {
		t.Fatalf("put %q: %v", k, err)
	}
	return resp.Header.Revision
}

func del(t *testing.T, ctx context.Context, cli *clientv3.Client, k string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	resp, err := cli.Delete(ctx, k, opts...)
	if err != nil {
		t.Fatalf("delete %q: %v", k, err)
	}
	return resp.Header.Revision
}

// currentRev returns the store's revision now.
func currentRev(t *testing.T, ctx context.Context, cli *clientv3.Client) int64 {
	t.Helper()
	resp, err := cli.Get(ctx, "\x00never-written")
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// Watches start at an explicit revision (the next one) so that events do not
// depend on when the server registers the watch.

func TestWatchSingleKey(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	wch := cli.Watch(ctx, "k", clientv3.WithRev(currentRev(t, ctx, cli)+1))
	r1 := put(t, ctx, cli, "k", "1")
	put(t, ctx, cli, "k2", "other key")
	put(t, ctx, cli, "j", "other key")
	r2 := put(t, ctx, cli, "k", "2")
	del(t, ctx, cli, "k0")
	r3 := del(t, ctx, cli, "k")
	got, _ := recv(t, wch, 3, false)
	checkEvents(t, "single key", got, []ev{putEv("k", "1", r1), putEv("k", "2", r2), delEv("k", r3)})
}

func TestWatchPrefix(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	wch := cli.Watch(ctx, "p/", clientv3.WithPrefix(), clientv3.WithRev(currentRev(t, ctx, cli)+1))
	r1 := put(t, ctx, cli, "p/a", "1")
	put(t, ctx, cli, "p", "outside")
	put(t, ctx, cli, "p0", "outside")
	put(t, ctx, cli, "o/z", "outside")
	r2 := put(t, ctx, cli, "p/", "the prefix itself")
	r3 := put(t, ctx, cli, "p/b/c", "2")
	r4 := del(t, ctx, cli, "p/a")
	got, _ := recv(t, wch, 4, false)
	checkEvents(t, "prefix", got, []ev{putEv("p/a", "1", r1), putEv("p/", "the prefix itself", r2), putEv("p/b/c", "2", r3), delEv("p/a", r4)})
}

func TestWatchRange(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	wch := cli.Watch(ctx, "b", clientv3.WithRange("d"), clientv3.WithRev(currentRev(t, ctx, cli)+1))
	put(t, ctx, cli, "a", "outside")
	r1 := put(t, ctx, cli, "b", "1")
	r2 := put(t, ctx, cli, "c", "2")
	put(t, ctx, cli, "d", "outside: the end is exclusive")
	r3 := put(t, ctx, cli, "bz", "3")
	put(t, ctx, cli, "d\x00", "outside")
	r4 := del(t, ctx, cli, "c")
	got, _ := recv(t, wch, 4, false)
	checkEvents(t, "range [b, d)", got, []ev{putEv("b", "1", r1), putEv("c", "2", r2), putEv("bz", "3", r3), delEv("c", r4)})
}

func TestWatchHistoryReplay(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	r1 := put(t, ctx, cli, "h/a", "1")
	r2 := put(t, ctx, cli, "h/b", "2")
	put(t, ctx, cli, "x", "outside")
	r3 := put(t, ctx, cli, "h/a", "3")
	r4 := del(t, ctx, cli, "h/b")
	history := []ev{putEv("h/a", "1", r1), putEv("h/b", "2", r2), putEv("h/a", "3", r3), delEv("h/b", r4)}

	wch := cli.Watch(ctx, "h/", clientv3.WithPrefix(), clientv3.WithRev(r1))
	got, _ := recv(t, wch, 4, false)
	checkEvents(t, "replay from the first revision", got, history)
	// The same watch goes on with live events.
	r5 := put(t, ctx, cli, "h/c", "5")
	got, _ = recv(t, wch, 1, false)
	checkEvents(t, "live after replay", got, []ev{putEv("h/c", "5", r5)})

	// From the middle of the history.
	wch = cli.Watch(ctx, "h/", clientv3.WithPrefix(), clientv3.WithRev(r3))
	got, _ = recv(t, wch, 3, false)
	checkEvents(t, "replay from the middle", got, append(history[2:4:4], putEv("h/c", "5", r5)))

	// Single key, from a revision in which it did not change.
	wch = cli.Watch(ctx, "h/a", clientv3.WithRev(r2))
	got, _ = recv(t, wch, 1, false)
	checkEvents(t, "single key replay", got, []ev{putEv("h/a", "3", r3)})
}

func TestWatchCompactedRevision(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	r1 := put(t, ctx, cli, "c/k", "1")
	r2 := put(t, ctx, cli, "c/k", "2")
	r3 := put(t, ctx, cli, "c/k", "3")
	if _, err := cli.Compact(ctx, r2, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}

	// Below the compacted revision: one response with CompactRevision set,
	// canceled, Err() == ErrCompacted, then the channel closes.
	wch := cli.Watch(ctx, "c/", clientv3.WithPrefix(), clientv3.WithRev(r1))
	var wr clientv3.WatchResponse
	select {
	case wr = <-wch:
	case <-time.After(watchTimeout):
		t.Fatalf("no response within %v to a watch at compacted revision %d", watchTimeout, r1)
	}
	if wr.CompactRevision != r2 || !wr.Canceled || !errors.Is(wr.Err(), rpctypes.ErrCompacted) || len(wr.Events) != 0 {
		t.Errorf("watch at %d after compacting at %d: CompactRevision %d, Canceled %v, Err %v, %d events; want CompactRevision %d, Canceled, %v, no events",
			r1, r2, wr.CompactRevision, wr.Canceled, wr.Err(), len(wr.Events), r2, rpctypes.ErrCompacted)
	}
	select {
	case extra, ok := <-wch:
		if ok {
			t.Errorf("response after the compaction cancel: %+v", extra)
		}
	case <-time.After(watchTimeout):
		t.Errorf("channel not closed within %v after the compaction cancel", watchTimeout)
	}

	// At the compacted revision itself: that revision is still readable
	// (etcd cancels only when start < compact revision).
	wch = cli.Watch(ctx, "c/", clientv3.WithPrefix(), clientv3.WithRev(r2))
	got, _ := recv(t, wch, 2, false)
	checkEvents(t, "watch at the compacted revision", got, []ev{putEv("c/k", "2", r2), putEv("c/k", "3", r3)})
}

func TestWatchPrevKV(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	r0 := currentRev(t, ctx, cli)
	wch := cli.Watch(ctx, "pk", clientv3.WithPrevKV(), clientv3.WithRev(r0+1))
	r1 := put(t, ctx, cli, "pk", "a")
	r2 := put(t, ctx, cli, "pk", "b")
	r3 := del(t, ctx, cli, "pk")
	r4 := put(t, ctx, cli, "pk", "c")
	want := []ev{
		putEv("pk", "a", r1).withPrev("-"),
		putEv("pk", "b", r2).withPrev("a"),
		delEv("pk", r3).withPrev("b"),
		putEv("pk", "c", r4).withPrev("-"), // created again: no previous pair
	}
	got, _ := recv(t, wch, 4, true)
	checkEvents(t, "live with prev kv", got, want)

	// History replay attaches previous pairs too.
	wch = cli.Watch(ctx, "pk", clientv3.WithPrevKV(), clientv3.WithRev(r1))
	got, _ = recv(t, wch, 4, true)
	checkEvents(t, "replay with prev kv", got, want)

	// Without the option there is none.
	wch = cli.Watch(ctx, "pk", clientv3.WithRev(r2))
	_, resps := recv(t, wch, 1, false)
	if resps[0].Events[0].PrevKv != nil {
		t.Errorf("prev kv without WithPrevKV: %v", resps[0].Events[0].PrevKv)
	}
}

func TestWatchFilters(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	r0 := currentRev(t, ctx, cli)
	noPut := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFilterPut(), clientv3.WithRev(r0+1))
	noDel := cli.Watch(ctx, "f/", clientv3.WithPrefix(), clientv3.WithFilterDelete(), clientv3.WithRev(r0+1))
	r1 := put(t, ctx, cli, "f/a", "1")
	r2 := put(t, ctx, cli, "f/b", "2")
	r3 := del(t, ctx, cli, "f/a")
	r4 := put(t, ctx, cli, "f/a", "4")
	r5 := del(t, ctx, cli, "f/", clientv3.WithPrefix())
	r6 := put(t, ctx, cli, "f/z", "6")
	r7 := del(t, ctx, cli, "f/z")
	got, _ := recv(t, noPut, 4, false)
	checkEvents(t, "WithFilterPut", got, []ev{delEv("f/a", r3), delEv("f/a", r5), delEv("f/b", r5), delEv("f/z", r7)})
	got, _ = recv(t, noDel, 4, false)
	checkEvents(t, "WithFilterDelete", got, []ev{putEv("f/a", "1", r1), putEv("f/b", "2", r2), putEv("f/a", "4", r4), putEv("f/z", "6", r6)})
}

func TestWatchProgressNotify(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	wch := cli.Watch(ctx, "pn/", clientv3.WithPrefix(), clientv3.WithProgressNotify(), clientv3.WithCreatedNotify())
	select {
	case wr := <-wch:
		if !wr.Created || wr.Err() != nil {
			t.Fatalf("first response is not the created notification: %+v, %v", wr, wr.Err())
		}
	case <-time.After(watchTimeout):
		t.Fatalf("no created notification within %v", watchTimeout)
	}
	r1 := put(t, ctx, cli, "pn/a", "1")
	got, _ := recv(t, wch, 1, false)
	checkEvents(t, "event", got, []ev{putEv("pn/a", "1", r1)})
	r2 := put(t, ctx, cli, "elsewhere", "2") // not watched: only a progress notification can report it

	// etcd answers a progress request only when the stream's watchers are
	// synced, so ask again until one comes (bounded).
	deadline := time.Now().Add(watchTimeout)
	for {
		if err := cli.RequestProgress(ctx); err != nil {
			t.Fatalf("RequestProgress: %v", err)
		}
		select {
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				t.Fatalf("watch ended waiting for a progress notification: %v", wr.Err())
			}
			if !wr.IsProgressNotify() {
				t.Fatalf("want a progress notification, got %d events (created %v, header %v)", len(wr.Events), wr.Created, wr.Header)
			}
			if wr.Header.Revision != r2 {
				t.Errorf("progress notification at revision %d, want the current revision %d", wr.Header.Revision, r2)
			}
			return
		case <-time.After(time.Second):
			if time.Now().After(deadline) {
				t.Fatalf("no progress notification within %v of RequestProgress", watchTimeout)
			}
		}
	}
}

// TestWatchFragment: a txn of many large values in one revision with a
// previous pair each makes a response bigger than the request limit (1.5
// MiB); with WithFragment the server splits it and clientv3 joins the
// fragments: every event of a revision arrives in one WatchResponse, in txn
// order.
func TestWatchFragment(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	const n, size = 12, 100 * 1024
	r0 := currentRev(t, ctx, cli)
	wch := cli.Watch(ctx, "frag/", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithFragment(), clientv3.WithRev(r0+1))
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("frag/%02d", (i*7)%n) // txn order is not key order
	}
	value := func(round, i int) string {
		return strings.Repeat(string(rune('a'+round)), size-3) + fmt.Sprintf("%03d", i)
	}
	var want []ev
	var revs []int64
	for round := 0; round < 2; round++ {
		ops := make([]clientv3.Op, n)
		for i, k := range keys {
			ops[i] = clientv3.OpPut(k, value(round, i))
		}
		resp, err := cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			t.Fatalf("txn %d: %v", round, err)
		}
		revs = append(revs, resp.Header.Revision)
		for i, k := range keys {
			e := putEv(k, value(round, i), resp.Header.Revision).withPrev("-")
			if round > 0 {
				e.Prev = value(round-1, i)
			}
			want = append(want, e)
		}
	}
	got, resps := recv(t, wch, 2*n, true)
	checkEvents(t, "fragmented revisions", got, want)
	checkGrouped(t, resps)
	if revs[1] != revs[0]+1 {
		t.Errorf("txn revisions %v", revs)
	}

	// On the wire the second revision (12 x 200 KiB with previous pairs, more
	// than 2 MiB) is split into fragments, each within the limit, and
	// reassembled by the client above.
	stream, err := pb.NewWatchClient(cli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("frag/"), RangeEnd: []byte("frag0"), StartRevision: revs[0], PrevKv: true, Fragment: true,
	}}}); err != nil {
		t.Fatal(err)
	}
	fragments, events := 0, 0
	for events < 2*n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("raw stream after %d events: %v", events, err)
		}
		if resp.Canceled {
			t.Fatalf("raw stream canceled: %q", resp.CancelReason)
		}
		if resp.Fragment {
			fragments++
		}
		// etcd keeps each fragment below --max-request-bytes plus 512 KiB
		// of gRPC overhead (2 MiB by default).
		if sz := proto.Size(resp); sz > 2048*1024 {
			t.Errorf("a response of %d bytes (%d events) with fragmentation on", sz, len(resp.Events))
		}
		events += len(resp.Events)
	}
	if fragments == 0 {
		t.Errorf("no response was marked as a fragment, though revision %d's events and previous pairs exceed 1.5 MiB", revs[1])
	}
}

func TestWatchManyOnOneStream(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	const n = 64
	r0 := currentRev(t, ctx, cli)
	// Same ctx (same metadata): clientv3 multiplexes every watch on one gRPC
	// stream. The canceled one uses a child context: same stream, own cancel.
	chans := make([]clientv3.WatchChan, n)
	for i := range chans {
		chans[i] = cli.Watch(ctx, fmt.Sprintf("m/%02d", i), clientv3.WithRev(r0+1))
	}
	all := cli.Watch(ctx, "m/", clientv3.WithPrefix(), clientv3.WithRev(r0+1))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	canceled := cli.Watch(cctx, "m/", clientv3.WithPrefix(), clientv3.WithRev(r0+1))

	var wantAll []ev
	revs := make([][2]int64, n)
	for round := 0; round < 2; round++ {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("m/%02d", i)
			v := fmt.Sprintf("%d-%d", round, i)
			revs[i][round] = put(t, ctx, cli, k, v)
			wantAll = append(wantAll, putEv(k, v, revs[i][round]))
		}
		if round == 0 {
			cancel()
		}
	}
	for i, wch := range chans {
		k := fmt.Sprintf("m/%02d", i)
		got, _ := recv(t, wch, 2, false)
		checkEvents(t, "watcher "+k, got, []ev{putEv(k, fmt.Sprintf("0-%d", i), revs[i][0]), putEv(k, fmt.Sprintf("1-%d", i), revs[i][1])})
	}
	got, _ := recv(t, all, 2*n, false)
	checkEvents(t, "prefix watcher on the shared stream", got, wantAll)

	// The canceled watcher's channel closes; what it got before is a prefix
	// of the events, in order.
	deadline := time.After(watchTimeout)
	var seen []ev
	for open := true; open; {
		select {
		case wr, ok := <-canceled:
			if !ok {
				open = false
				break
			}
			for _, e := range wr.Events {
				seen = append(seen, toEv(e, false))
			}
		case <-deadline:
			t.Fatalf("canceled watcher's channel still open after %v", watchTimeout)
		}
	}
	if len(seen) > len(wantAll) || !slices.Equal(seen, wantAll[:len(seen)]) {
		t.Errorf("canceled watcher got %v, not a prefix of %v", seen, wantAll)
	}
}

func TestWatchTxnEventsInOrder(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	put(t, ctx, cli, "t/d", "to delete")
	r0 := currentRev(t, ctx, cli)
	wch := cli.Watch(ctx, "t/", clientv3.WithPrefix(), clientv3.WithRev(r0+1))
	resp, err := cli.Txn(ctx).Then(
		clientv3.OpPut("t/c", "1"),
		clientv3.OpPut("t/a", "2"),
		clientv3.OpDelete("t/d"),
		clientv3.OpPut("t/b", "3"),
		clientv3.OpPut("u/outside", "4"),
	).Commit()
	if err != nil {
		t.Fatal(err)
	}
	r := resp.Header.Revision
	got, resps := recv(t, wch, 4, false)
	checkEvents(t, "txn events", got, []ev{putEv("t/c", "1", r), putEv("t/a", "2", r), delEv("t/d", r), putEv("t/b", "3", r)})
	if len(resps) != 1 {
		t.Errorf("the txn's events came in %d responses, want 1", len(resps))
	}
}

func TestWatchRangeDelete(t *testing.T) {
	cli := newWatchEnv(t).client()
	ctx := testutil.Ctx(t)
	for _, k := range []string{"r/c", "r/a", "r/b", "r/d", "q"} {
		put(t, ctx, cli, k, "v")
	}
	r0 := currentRev(t, ctx, cli)
	wch := cli.Watch(ctx, "", clientv3.WithPrefix(), clientv3.WithPrevKV(), clientv3.WithRev(r0+1)) // every key
	r := del(t, ctx, cli, "r/a", clientv3.WithRange("r/d"))
	got, resps := recv(t, wch, 3, true)
	checkEvents(t, "range delete", got, []ev{delEv("r/a", r).withPrev("v"), delEv("r/b", r).withPrev("v"), delEv("r/c", r).withPrev("v")})
	if len(resps) != 1 {
		t.Errorf("the delete's events came in %d responses, want 1", len(resps))
	}
	// A fence proves nothing else (r/d, q) changed.
	rf := put(t, ctx, cli, "fence", "f")
	got, _ = recv(t, wch, 1, true)
	checkEvents(t, "after the range delete", got, []ev{putEv("fence", "f", rf).withPrev("-")})
}

// TestWatchRequireLeader: with WithRequireLeader a watch on a member that
// lost its quorum ends with ErrNoLeader instead of hanging.
func TestWatchRequireLeader(t *testing.T) {
	skipOnEtcd(t)
	for _, role := range []string{"follower", "leader"} {
		t.Run(role, func(t *testing.T) {
			c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
			lead := c.WaitLeader()
			m := (lead + 1) % 3
			if role == "leader" {
				m = lead
			}
			cli := c.Client(m)
			ctx := clientv3.WithRequireLeader(testutil.Ctx(t))
			wch := cli.Watch(ctx, "rl/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
			select {
			case wr := <-wch:
				if !wr.Created {
					t.Fatalf("first response is not the created notification: %+v", wr)
				}
			case <-time.After(watchTimeout):
				t.Fatalf("no created notification within %v", watchTimeout)
			}
			r1 := put(t, ctx, cli, "rl/a", "1")
			got, _ := recv(t, wch, 1, false)
			checkEvents(t, "before the quorum loss", got, []ev{putEv("rl/a", "1", r1)})

			for i := range c.Members {
				if i != m {
					c.StopMember(i)
				}
			}
			stopped := time.Now()
			const limit = 10 * time.Second
			timeout := time.After(limit)
			for {
				select {
				case wr, ok := <-wch:
					if !ok {
						t.Fatalf("channel closed without an error response")
					}
					if len(wr.Events) > 0 {
						t.Fatalf("unexpected events after the quorum loss: %v", wr.Events)
					}
					if err := wr.Err(); err != nil {
						if !errors.Is(err, rpctypes.ErrNoLeader) {
							t.Errorf("watch ended with %v, want %v", err, rpctypes.ErrNoLeader)
						}
						t.Logf("watch ended %v after the quorum loss: %v", time.Since(stopped).Round(time.Millisecond), err)
						select {
						case _, ok := <-wch:
							if ok {
								t.Errorf("response after the final error")
							}
						case <-time.After(watchTimeout):
							t.Errorf("channel not closed after the final error")
						}
						return
					}
				case <-timeout:
					t.Fatalf("watch on the %s still open %v after the other two members stopped", role, limit)
				}
			}
		})
	}
}

// TestWatchStalledStream: a raw gRPC watch stream that nobody reads must not
// slow down writes or other watchers; when it is read at last it delivers
// every event exactly once, in order.
func TestWatchStalledStream(t *testing.T) {
	env := newWatchEnv(t)
	// Fixed 64 KiB flow-control windows (no BDP growth) on the stalled
	// connection: the server can buffer in the client's transport only
	// that much, so its sends to the stream really block.
	stalledCli := env.client(grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	writer, watcher := env.client(), env.client()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n, writers = 5000, 8
	r0 := currentRev(t, ctx, writer)

	stream, err := pb.NewWatchClient(stalledCli.ActiveConnection()).Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{CreateRequest: &pb.WatchCreateRequest{
		Key: []byte("s/"), RangeEnd: []byte("s0"), StartRevision: r0 + 1,
	}}}); err != nil {
		t.Fatal(err)
	}
	created, err := stream.Recv()
	if err != nil || !created.Created {
		t.Fatalf("create on the raw stream: %v, %v", created, err)
	}
	// From here on nobody reads the stream until the writes are done.

	wch := watcher.Watch(ctx, "s/", clientv3.WithPrefix(), clientv3.WithRev(r0+1))
	val := func(i int) string { return fmt.Sprintf("%05d", i) + strings.Repeat("v", 1024-5) }
	keyOf := make([]string, n) // by revision - r0 - 1
	var mu sync.Mutex          // protects keyOf and werr
	var werr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				k := fmt.Sprintf("s/%05d", i)
				resp, err := writer.Put(ctx, k, val(i))
				mu.Lock()
				if err != nil {
					werr = fmt.Errorf("put %s: %w", k, err)
				} else if j := resp.Header.Revision - r0 - 1; j < 0 || j >= n {
					werr = fmt.Errorf("put %s at revision %d, outside (%d, %d]", k, resp.Header.Revision, r0, r0+n)
				} else {
					keyOf[j] = k
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		}()
	}
	writesDone := make(chan struct{})
	go func() { wg.Wait(); close(writesDone) }()
	select {
	case <-writesDone:
	case <-time.After(60 * time.Second):
		t.Fatalf("%d writes did not finish within 60s with a stalled watch stream open", n)
	}
	writeTime := time.Since(start)
	if werr != nil {
		t.Fatal(werr)
	}
	want := make([]ev, n)
	for j, k := range keyOf {
		var i int
		fmt.Sscanf(k, "s/%05d", &i)
		want[j] = putEv(k, val(i), r0+1+int64(j))
	}

	got, _ := recv(t, wch, n, false)
	checkEvents(t, "the live watcher next to a stalled stream", got, want)
	t.Logf("%d writes of 1 KiB in %v with a stalled stream; the other watcher had them all %v after the start",
		n, writeTime.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// Now drain the stalled stream.
	type result struct {
		evs    []ev
		cancel *pb.WatchResponse
		err    error
	}
	done := make(chan result, 1)
	go func() {
		var res result
		for len(res.evs) < n {
			resp, err := stream.Recv()
			if err != nil {
				res.err = err
				break
			}
			if resp.Canceled || resp.CompactRevision != 0 {
				res.cancel = resp
				break
			}
			for _, e := range resp.Events {
				res.evs = append(res.evs, toEv((*clientv3.Event)(e), false))
			}
		}
		done <- res
	}()
	select {
	case res := <-done:
		switch {
		case res.err != nil:
			t.Fatalf("stalled stream failed after %d of %d events: %v", len(res.evs), n, res.err)
		case res.cancel != nil:
			t.Fatalf("stalled stream canceled after %d of %d events (the test did not compact): compact revision %d, reason %q",
				len(res.evs), n, res.cancel.CompactRevision, res.cancel.CancelReason)
		}
		if len(res.evs) != n || !slices.Equal(res.evs, want) {
			first := 0
			for first < min(len(res.evs), n) && res.evs[first] == want[first] {
				first++
			}
			t.Errorf("stalled stream delivered %d events, want %d; first difference at %d", len(res.evs), n, first)
		}
	case <-time.After(watchTimeout):
		t.Fatalf("stalled stream did not deliver its %d events within %v of being read", n, watchTimeout)
	}
}

// TestWatchMemberStoppedMidStream: clientv3 resumes a watch on another
// member from its last revision when its member stops: exactly every event,
// no gap, no duplicate.
func TestWatchMemberStoppedMidStream(t *testing.T) {
	skipOnEtcd(t)
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	watcher := c.Client() // all endpoints
	const n = 300
	r0 := currentRev(t, ctx, watcher)
	wch := watcher.Watch(ctx, "mm/", clientv3.WithPrefix(), clientv3.WithRev(r0+1), clientv3.WithCreatedNotify())
	var created clientv3.WatchResponse
	select {
	case created = <-wch:
		if !created.Created {
			t.Fatalf("first response is not the created notification: %+v", created)
		}
	case <-time.After(watchTimeout):
		t.Fatalf("no created notification within %v", watchTimeout)
	}
	m := -1
	for i, mem := range c.Members {
		if mem.D.Server().MemberID() == created.Header.MemberId {
			m = i
		}
	}
	if m < 0 {
		t.Fatalf("the watch's member id %x is not a member", created.Header.MemberId)
	}
	t.Logf("watch served by member %d (leader %d)", m, c.Leader())
	var others []int
	for i := range c.Members {
		if i != m {
			others = append(others, i)
		}
	}
	writer := c.Client(others...)

	// Each write is "create if absent", so retrying one whose outcome was
	// unknown (an election after the stop) cannot write twice.
	var want []ev
	write := func(i int) {
		k, v := fmt.Sprintf("mm/%03d", i), fmt.Sprint(i)
		deadline := time.Now().Add(watchTimeout)
		for {
			resp, err := writer.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).Then(clientv3.OpPut(k, v)).Else(clientv3.OpGet(k)).Commit()
			if err == nil {
				rev := resp.Header.Revision
				if !resp.Succeeded {
					rev = resp.Responses[0].GetResponseRange().Kvs[0].ModRevision
				}
				want = append(want, putEv(k, v, rev))
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("write %s: %v", k, err)
			}
			time.Sleep(20 * time.Millisecond) // retry pacing, not a correctness decision
		}
	}
	var got []ev
	var lastMember uint64 // member id in the header of the last response
	collect := func(upTo int) {
		more, resps := recv(t, wch, upTo-len(got), false)
		got = append(got, more...)
		lastMember = resps[len(resps)-1].Header.MemberId
	}
	// A third of the writes, the watcher mid-stream; a third while the
	// member stops (a graceful stop lets open streams run for a while);
	// the last third once it is gone, which the watcher can only get from
	// another member.
	for i := 0; i < n/3; i++ {
		write(i)
	}
	collect(n / 6)
	stopped := make(chan struct{})
	go func() { c.StopMember(m); close(stopped) }()
	for i := n / 3; i < 2*n/3; i++ {
		write(i)
	}
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatalf("member %d did not stop within 30s", m)
	}
	for i := 2 * n / 3; i < n; i++ {
		write(i)
	}
	collect(n)
	checkEvents(t, "events across the member stop", got, want)
	if lastMember == created.Header.MemberId {
		t.Errorf("the last events came from the stopped member %x", lastMember)
	}
	// Nothing more: a fence write is the very next event.
	write(n)
	collect(n + 1)
	if len(got) == n+1 && got[n] != want[n] {
		t.Errorf("after %d events: got %v, want the fence %v", n, got[n], want[n])
	}
}
