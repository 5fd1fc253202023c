package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-db/cairn/bench/cluster"
)

func TestPercentileNearestRank(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i))
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50}, {0.99, 99}, {1, 100}, {0.001, 1}} {
		if got := percentile(s, c.p); got != c.want {
			t.Errorf("percentile(%v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile([]time.Duration{7}, 0.99); got != 7 {
		t.Errorf("one sample: %v", got)
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("no samples: %v", got)
	}
}

func TestErrorLogBoundedAndSorted(t *testing.T) {
	var l errorLog
	for i := range maxErrorKinds + 5 {
		l.add(fmt.Errorf("e%02d", i))
	}
	l.add(errors.New("e03"))
	l.add(errors.New("e03"))
	l.add(errors.New("e00"))
	got := errorSummary(l.errs)
	if len(got) != maxErrorKinds+1 {
		t.Fatalf("%d kinds: %v", len(got), got)
	}
	if got[0] != "5× "+otherErrors || got[1] != "3× e03" || got[2] != "2× e00" || got[3] != "1× e01" {
		t.Errorf("summary %v", got)
	}
}

// TestMeasureCounts drives measure with a fake operation: every third call
// fails, and calls block until the run ends once the deadline is near.
func TestMeasureCounts(t *testing.T) {
	var calls atomic.Int64
	fn := func(ctx context.Context, w int) (time.Duration, error) {
		n := calls.Add(1)
		if n%3 == 0 {
			return 0, errors.New("boom")
		}
		if n > 30 { // block until the deadline cancels us
			<-ctx.Done()
			if w%2 == 0 {
				return 0, ctx.Err()
			}
			return 0, status.Error(codes.Canceled, "grpc: the client connection is closing")
		}
		return time.Duration(n) * time.Millisecond, nil
	}
	out, err := measure(context.Background(), 4, 50*time.Millisecond, fn)
	if err != nil {
		t.Fatal(err)
	}
	if out.ok+out.failed+out.cutOff != calls.Load() {
		t.Errorf("ok %d + failed %d + cut off %d != calls %d", out.ok, out.failed, out.cutOff, calls.Load())
	}
	if out.ok != 20 || out.failed < 10 || out.cutOff != 4 {
		t.Errorf("ok %d failed %d cut off %d (calls %d)", out.ok, out.failed, out.cutOff, calls.Load())
	}
	if out.errs["boom"] != out.failed {
		t.Errorf("errs %v, failed %d", out.errs, out.failed)
	}
	if out.elapsed < 50*time.Millisecond {
		t.Errorf("elapsed %v", out.elapsed)
	}
	for i := 1; i < len(out.lats); i++ {
		if out.lats[i] < out.lats[i-1] {
			t.Fatalf("latencies not sorted: %v", out.lats)
		}
	}
}

func TestMeasureStopsAfterTooManyErrors(t *testing.T) {
	fn := func(ctx context.Context, w int) (time.Duration, error) { return 0, errors.New("down") }
	out, err := measure(context.Background(), 2, time.Minute, fn)
	if !errors.Is(err, errTooMany) || out.failed < maxErrors {
		t.Fatalf("err %v, failed %d", err, out.failed)
	}
}

func TestShellJoin(t *testing.T) {
	got := shellJoin([]string{"/tmp/coordbench", "-cairn", "/tmp/cairn-cb", "-duration", "2s", "-json", "a b", "it's", ""})
	want := `/tmp/coordbench -cairn /tmp/cairn-cb -duration 2s -json 'a b' 'it'\''s' ''`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestParse(t *testing.T) {
	o, err := parse([]string{"-cairn", "/x"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.clients != 64 || o.leases != 10000 || o.duration != 10*time.Second ||
		strings.Join(o.cases, ",") != "grant,keepalive,lock16,lock256,seq" || len(o.systems) != 2 {
		t.Errorf("defaults %+v", o)
	}
	for _, bad := range [][]string{
		{},
		{"-cairn", "/x", "-cases", "grant,nope"},
		{"-cairn", "/x", "-systems", "zookeeper"},
		{"-cairn", "/x", "-clients", "0"},
		{"-cairn", "/x", "-duration", "0s"},
		{"-cairn", "/x", "extra"},
	} {
		if _, err := parse(bad, io.Discard); err == nil {
			t.Errorf("parse(%q) accepted", bad)
		}
	}
}

func TestPrintReport(t *testing.T) {
	recs := []record{
		{Case: caseGrant, System: cluster.Cairn, Clients: 8, Ops: 2000, OpsPerSec: 1000, P50ms: 1, P99ms: 4, MaxMs: 9, CPUSec: 1, CPUusPerOp: 500, MaxRSSMiB: 40, TotalRSSMiB: 120},
		{Case: caseGrant, System: cluster.Etcd, Clients: 8, Ops: 1000, OpsPerSec: 500, P50ms: 2, P99ms: 8, MaxMs: 20, CPUSec: 1, CPUusPerOp: 1000, MaxRSSMiB: 50, TotalRSSMiB: 150,
			Errors: 2, ErrorKinds: []string{"2× etcdserver: request timed out"}},
		{Case: caseKeepAlive, System: cluster.Cairn, Clients: 8, Leases: 500, Failure: "cluster: member exited: cairn m1\nlog | tail"},
		{Case: caseSeq, System: cluster.Cairn, Clients: 8, Ops: 10, OpsPerSec: 5, P50ms: 1, P99ms: 2, MaxMs: 3},
		{Case: caseSeq, System: cluster.Etcd, Clients: 8, Skipped: errNoSeqOnEtcd},
	}
	f := facts{command: "coordbench -cairn /x", nproc: "2", goVer: "go version go1.26.8 linux/amd64", kernel: "6.18", binaries: [][2]string{{"cairn", "`/x`"}}}
	var b bytes.Buffer
	printReport(&b, f, options{duration: 2 * time.Second}, recs)
	out := b.String()
	for _, want := range []string{
		"Command: `coordbench -cairn /x`",
		"| CPUs (`nproc`) | 2 |",
		"| Go (`go version`) | go version go1.26.8 linux/amd64 |",
		"| lease grant | 8 | cairn | 2000 | 1000.0 | 1.000 | 4.000 | 9.000 | 1.0 | 500.0 | 40.0 / 120.0 | 0 | 0 |",
		"| lease keepalive (500 leases) | 8 | cairn | **failed** (below) |",
		"| sequential create | 8 | etcd | n/a: etcd has no sequential-key operation",
		"| lease grant | 8 | 2.00 | 0.50 | 0.50 |",
		"- etcd grant (8 clients): 2× etcdserver: request timed out",
		"      log | tail",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "| sequential create | 8 | 2") {
		t.Errorf("ratio row for a case etcd skipped:\n%s", out)
	}
	// Every row of a table has as many cells as its header.
	var cols int
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "|") {
			cols = 0
			continue
		}
		n := strings.Count(strings.ReplaceAll(line, `\|`, ""), "|")
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("row has %d separators, header %d: %s", n, cols, line)
		}
	}
}
