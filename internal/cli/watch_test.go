package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-db/cairn/internal/testutil"
)

var (
	watchPut = &mvccpb.Event{Type: mvccpb.PUT,
		Kv:     &mvccpb.KeyValue{Key: []byte("config/mode"), Value: []byte("green"), CreateRevision: 2, ModRevision: 7, Version: 3},
		PrevKv: &mvccpb.KeyValue{Key: []byte("config/mode"), Value: []byte("blue"), CreateRevision: 2, ModRevision: 5, Version: 2}}
	watchPutSpaces = &mvccpb.Event{Type: mvccpb.PUT,
		Kv: &mvccpb.KeyValue{Key: []byte("config/motd"), Value: []byte("hello world\n"), CreateRevision: 8, ModRevision: 8, Version: 1, Lease: 0x694d}}
	watchDel = &mvccpb.Event{Type: mvccpb.DELETE,
		Kv:     &mvccpb.KeyValue{Key: []byte("config/mode"), ModRevision: 9},
		PrevKv: &mvccpb.KeyValue{Key: []byte("config/mode"), Value: []byte("green"), CreateRevision: 2, ModRevision: 7, Version: 3}}
)

// stripPrev returns a copy of ev without its previous pair.
func stripPrev(ev *mvccpb.Event) *mvccpb.Event {
	return &mvccpb.Event{Type: ev.Type, Kv: ev.Kv}
}

func TestOutputWatchEvents(t *testing.T) {
	events := func(evs ...*mvccpb.Event) func(p printer) error {
		return func(p printer) error {
			var seen int64
			return p.watchEvents(evs, &watchOptions{}, &seen)
		}
	}
	plain := events(stripPrev(watchPut), watchPutSpaces, stripPrev(watchDel))
	withPrev := events(watchPut, watchPutSpaces, watchDel)

	checkGolden(t, "table", render(t, outputTable, plain),
		"PUT config/mode green (rev 7)\n"+
			"PUT config/motd \"hello world\\n\" (rev 8)\n"+
			"DELETE config/mode (rev 9)\n")
	checkGolden(t, "table prev-kv", render(t, outputTable, withPrev),
		"PUT config/mode green (rev 7, prev blue)\n"+
			"PUT config/motd \"hello world\\n\" (rev 8)\n"+
			"DELETE config/mode (rev 9, prev green)\n")
	checkGolden(t, "value", render(t, outputValue, withPrev), "green\nhello world\n\n")
	checkGolden(t, "json", render(t, outputJSON, plain),
		`{"type":"PUT","kv":{"key":"config/mode","create_revision":2,"mod_revision":7,"version":3,"value":"green","lease":0}}`+"\n"+
			`{"type":"PUT","kv":{"key":"config/motd","create_revision":8,"mod_revision":8,"version":1,"value":"hello world\n","lease":26957}}`+"\n"+
			`{"type":"DELETE","kv":{"key":"config/mode","create_revision":0,"mod_revision":9,"version":0,"value":"","lease":0}}`+"\n")
	checkGolden(t, "json prev-kv", render(t, outputJSON, events(watchDel)),
		`{"type":"DELETE","kv":{"key":"config/mode","create_revision":0,"mod_revision":9,"version":0,"value":"","lease":0},`+
			`"prev_kv":{"key":"config/mode","create_revision":2,"mod_revision":7,"version":3,"value":"green","lease":0}}`+"\n")
	checkGolden(t, "table empty key and value", render(t, outputTable, events(&mvccpb.Event{Kv: &mvccpb.KeyValue{ModRevision: 3}})),
		`PUT "" "" (rev 3)`+"\n")
	checkGolden(t, "table spaces", render(t, outputTable, events(&mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte("a b"), Value: []byte("c d"), ModRevision: 4}})),
		`PUT "a b" "c d" (rev 4)`+"\n")

	// Every json line is an object that decodes into etcd's event shape.
	for _, line := range strings.Split(strings.TrimSpace(render(t, outputJSON, withPrev)), "\n") {
		var ev struct {
			Type string `json:"type"`
			KV   struct {
				Key         string `json:"key"`
				ModRevision int64  `json:"mod_revision"`
			} `json:"kv"`
			PrevKV *struct {
				Value string `json:"value"`
			} `json:"prev_kv"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil || ev.Type == "" || ev.KV.ModRevision == 0 {
			t.Errorf("json line %q: %+v, %v", line, ev, err)
		}
	}
}

func TestOutputWatchProgress(t *testing.T) {
	progress := func(p printer) error { return p.watchProgress(testHeader) }
	checkGolden(t, "table", render(t, outputTable, progress), "PROGRESS (rev 9)\n")
	checkGolden(t, "value", render(t, outputValue, progress), "")
	checkGolden(t, "json", render(t, outputJSON, progress),
		`{"header":{"cluster_id":14841639068965178418,"member_id":10276657743932975437,"revision":9,"raft_term":2},"progress_notify":true}`+"\n")
}

// loop runs watchLoop over the given responses (the channel is closed after
// them unless open) and returns its output and error.
func loop(t *testing.T, ctx context.Context, o *watchOptions, open bool, resps ...clientv3.WatchResponse) (string, error) {
	t.Helper()
	ch := make(chan clientv3.WatchResponse, len(resps))
	for _, r := range resps {
		ch <- r
	}
	if !open {
		close(ch)
	}
	var out bytes.Buffer
	inv := &invocation{verb: "watch", g: &globalFlags{output: outputTable}, stdout: &out, stderr: &out}
	err := inv.watchLoop(ctx, ch, o)
	return out.String(), err
}

func TestWatchLoop(t *testing.T) {
	hdr := func(rev int64) *pb.ResponseHeader { return &pb.ResponseHeader{Revision: rev} }
	r1 := clientv3.WatchResponse{Header: hdr(7), Events: []*mvccpb.Event{stripPrev(watchPut), watchPutSpaces}}
	r2 := clientv3.WatchResponse{Header: hdr(9), Events: []*mvccpb.Event{stripPrev(watchDel)}}
	progress := clientv3.WatchResponse{Header: hdr(12)}
	all := "PUT config/mode green (rev 7)\nPUT config/motd \"hello world\\n\" (rev 8)\nDELETE config/mode (rev 9)\n"

	t.Run("count stops mid-response", func(t *testing.T) {
		out, err := loop(t, context.Background(), &watchOptions{count: 1}, true, r1, r2)
		checkGolden(t, "out", out, "PUT config/mode green (rev 7)\n")
		if err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("count across responses and progress", func(t *testing.T) {
		out, err := loop(t, context.Background(), &watchOptions{count: 3}, true, r1, progress, r2)
		checkGolden(t, "out", out, "PUT config/mode green (rev 7)\nPUT config/motd \"hello world\\n\" (rev 8)\nPROGRESS (rev 12)\nDELETE config/mode (rev 9)\n")
		if err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("compacted", func(t *testing.T) {
		out, err := loop(t, context.Background(), &watchOptions{}, false,
			clientv3.WatchResponse{Header: hdr(20), Canceled: true, CompactRevision: 14})
		if out != "" || !errors.Is(err, errWatchCanceled) ||
			err.Error() != "watch canceled: required revision has been compacted (compact revision 14)" {
			t.Errorf("out %q, err %v", out, err)
		}
	})
	t.Run("canceled with a reason", func(t *testing.T) {
		_, err := loop(t, context.Background(), &watchOptions{}, false, r1,
			clientv3.WatchResponse{Header: hdr(20), Canceled: true, CancelReason: "permission denied"})
		if !errors.Is(err, errWatchCanceled) || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("err %v", err)
		}
	})
	t.Run("channel closes", func(t *testing.T) {
		out, err := loop(t, context.Background(), &watchOptions{}, false, r1, r2)
		checkGolden(t, "out", out, all)
		if !errors.Is(err, errWatchCanceled) {
			t.Errorf("err %v", err)
		}
	})
	t.Run("interrupted without count", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := loop(t, ctx, &watchOptions{}, true); err != nil {
			t.Errorf("err %v, want nil", err)
		}
	})
	t.Run("interrupted before count", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := loop(t, ctx, &watchOptions{count: 5}, true); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v, want context.Canceled", err)
		}
	})
}

func TestWatchUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"watch"}, "cairn watch: watch needs KEY"},
		{[]string{"watch", "a", "b", "c"}, "watch takes KEY [RANGE_END], got 3 arguments"},
		{[]string{"watch", "a", "b", "--prefix"}, "RANGE_END cannot be combined with --prefix"},
		{[]string{"watch", "a", "--rev", "-1"}, "--rev must not be negative"},
		{[]string{"watch", "a", "--count", "-2"}, "--count must not be negative"},
		{[]string{"watch", "a", "--count", "x"}, "invalid value"},
	} {
		code, _, errs := runCLI(t, "", tc.args...)
		if code != exitUsage || !strings.Contains(errs, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, errs, tc.want)
		}
	}
	code, out, _ := runCLI(t, "", "help", "watch")
	if code != exitOK || !strings.Contains(out, "Usage: cairn watch [flags] KEY [RANGE_END]") || !strings.Contains(out, "--progress-notify") {
		t.Errorf("help watch: exit %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, "", "help"); code != exitOK || !strings.Contains(out, "  watch ") {
		t.Errorf("help does not list watch: %s", out)
	}
}

// watchCluster is a one-member Cairn cluster, or the cluster
// CAIRN_TEST_ENDPOINTS names.
func watchCluster(t *testing.T) *cluster {
	t.Helper()
	eps := os.Getenv("CAIRN_TEST_ENDPOINTS")
	if eps == "" {
		eps = strings.Join(testutil.NewCluster(t, 1, testutil.ClusterOptions{}).Endpoints(), ",")
	}
	c := &cluster{t: t, endpoints: eps, prefix: fmt.Sprintf("cairn-cli-test/%s/%d/", t.Name(), time.Now().UnixNano())}
	t.Cleanup(func() { c.run("", "del", c.prefix, "--prefix") })
	return c
}

// startWatch runs `cairn watch args...` in the background (see start).
func (c *cluster) startWatch(ctx context.Context, args ...string) (wait func(d time.Duration) (int, string, string)) {
	return c.start(ctx, &syncBuffer{}, "watch", args...)
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu  sync.Mutex // protects the field below
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// revOf returns the header revision of `put ... -o json`.
func revOf(t *testing.T, putJSON string) int64 {
	t.Helper()
	var j struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(putJSON), &j); err != nil || j.Header.Revision == 0 {
		t.Fatalf("put -o json: %q: %v", putJSON, err)
	}
	return j.Header.Revision
}

func TestIntegrationWatch(t *testing.T) {
	c := watchCluster(t)
	p := c.prefix
	r1 := revOf(t, c.must("", "put", p+"a", "1", "-o", "json"))
	r2 := revOf(t, c.must("", "put", p+"b", "two words", "-o", "json"))
	c.must("", "del", p+"a")
	r3 := r2 + 1

	// History replay from r1: exactly three events, then exit 0.
	wait := c.startWatch(context.Background(), p, "--prefix", "--rev", strconv.FormatInt(r1, 10), "--count", "3", "--prev-kv")
	code, out, errs := wait(15 * time.Second)
	want := fmt.Sprintf("PUT %sa 1 (rev %d)\nPUT %sb \"two words\" (rev %d)\nDELETE %sa (rev %d, prev 1)\n", p, r1, p, r2, p, r3)
	if code != exitOK || out != want {
		t.Errorf("watch --rev --count 3: exit %d, stderr %q\n got %q\nwant %q", code, errs, out, want)
	}

	// Live events: a watch from the next revision sees puts made after it
	// started (starting at r3+1 makes this independent of when the watch is
	// registered).
	wait = c.startWatch(context.Background(), p+"b", "--rev", strconv.FormatInt(r3+1, 10), "--count", "2", "-o", "value")
	r4 := revOf(t, c.must("", "put", p+"b", "x", "-o", "json"))
	c.must("", "put", p+"c", "not watched")
	c.must("", "put", p+"b", "y")
	code, out, errs = wait(15 * time.Second)
	if code != exitOK || out != "x\ny\n" || r4 != r3+1 {
		t.Errorf("watch KEY --count 2 -o value: exit %d, stderr %q, out %q (first put at rev %d, want %d)", code, errs, out, r4, r3+1)
	}

	// json: one object per event.
	wait = c.startWatch(context.Background(), p+"a", p+"c", "--rev", strconv.FormatInt(r1, 10), "--count", "2", "-o", "json")
	code, out, errs = wait(15 * time.Second)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitOK || len(lines) != 2 {
		t.Fatalf("watch RANGE -o json: exit %d, stderr %q, out %q", code, errs, out)
	}
	var ev jsonEvent
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Type != "PUT" || ev.KV.Key != p+"b" || *ev.KV.Value != "two words" || ev.KV.ModRevision != r2 {
		t.Errorf("second json event %q: %+v %v", lines[1], ev, err)
	}

	// A watch from now sees a put made once it runs; interrupting an endless
	// watch then exits 0. The put is repeated until the watch, registered at
	// some moment after it starts, reports one (bounded).
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out2 syncBuffer
	wait = c.start(ctx, &out2, "watch", p+"live", "-o", "value")
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out2.String(), "now\n") {
		if time.Now().After(deadline) {
			t.Fatalf("watch from now printed %q within 15s of puts", out2.String())
		}
		c.must("", "put", p+"live", "now")
		time.Sleep(50 * time.Millisecond) // pacing of the retries, not a correctness decision
	}
	cancel()
	if code, out, errs := wait(15 * time.Second); code != exitOK {
		t.Errorf("interrupted watch: exit %d, out %q, stderr %q", code, out, errs)
	}
}

func TestIntegrationWatchCompacted(t *testing.T) {
	c := watchCluster(t)
	p := c.prefix
	r1 := revOf(t, c.must("", "put", p+"k", "1", "-o", "json"))
	r2 := revOf(t, c.must("", "put", p+"k", "2", "-o", "json"))
	c.must("", "compact", strconv.FormatInt(r2, 10))
	wait := c.startWatch(context.Background(), p+"k", "--rev", strconv.FormatInt(r1, 10))
	code, out, errs := wait(15 * time.Second)
	want := fmt.Sprintf("cairn: watch canceled: required revision has been compacted (compact revision %d)\n", r2)
	if code != exitError || out != "" || errs != want {
		t.Errorf("watch at a compacted revision: exit %d, out %q\n got stderr %q\nwant stderr %q", code, out, errs, want)
	}
}
