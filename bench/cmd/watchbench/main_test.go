package main

import (
	"io"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestHistQuantiles(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	var h hist
	var vals []int64
	for range 20000 {
		v := r.Int64N(int64(5 * time.Second))
		if r.IntN(2) == 0 {
			v = r.Int64N(int64(time.Millisecond))
		}
		vals = append(vals, v)
		h.add(v)
	}
	sort.Slice(vals, func(a, b int) bool { return vals[a] < vals[b] })
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := float64(vals[int(q*float64(len(vals)))-1]) / 1e3
		got := h.quantile(q)
		if got < exact*0.98-1 || got > exact*1.02+1 {
			t.Errorf("q%.2f: got %.1fµs, exact %.1fµs", q, got, exact)
		}
	}
	if h.maxNs != vals[len(vals)-1] {
		t.Errorf("max %d, want %d", h.maxNs, vals[len(vals)-1])
	}
	for i := 1; i < histBuckets; i++ { // bucket boundaries are increasing
		if bucketMid(i) <= bucketMid(i-1) {
			t.Fatalf("bucket %d mid %v <= %v", i, bucketMid(i), bucketMid(i-1))
		}
	}
}

func TestHistSummary(t *testing.T) {
	text := `# HELP x
cairn_watch_fanout_seconds_bucket{le="0.001"} 5
cairn_watch_fanout_seconds_bucket{le="0.01"} 9
cairn_watch_fanout_seconds_bucket{le="+Inf"} 10
cairn_watch_fanout_seconds_sum 0.05
cairn_watch_fanout_seconds_count 10
cairn_watch_fell_behind_total 7
other_metric 3
`
	before, after := metrics{}, metrics{}
	if err := parseMetrics(strings.NewReader(text), []string{"cairn_watch_"}, after); err != nil {
		t.Fatal(err)
	}
	if len(after) != 6 {
		t.Fatalf("parsed %v", after)
	}
	before["cairn_watch_fell_behind_total"] = 2
	got := histSummary(before, after)
	if len(got) != 2 || !strings.Contains(got[0], "n=10") || !strings.Contains(got[0], "p50≤1ms") || !strings.Contains(got[0], "p99≤+Inf") {
		t.Fatalf("summary %v", got)
	}
	if got[1] != "cairn_watch_fell_behind_total: +5" {
		t.Fatalf("counter line %q", got[1])
	}
}

func TestWriteTime(t *testing.T) {
	o, err := parse([]string{"-cairn", "x", "-duration", "10s", "-min-writes", "30"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		rate float64
		want time.Duration
	}{{0.5, time.Minute}, {1, 30 * time.Second}, {2, 15 * time.Second}, {7, 10 * time.Second}, {100, 10 * time.Second}} {
		if got := o.writeTime(c.rate); got != c.want {
			t.Errorf("writeTime(%v) = %v, want %v", c.rate, got, c.want)
		}
		if n := int(c.rate * o.writeTime(c.rate).Seconds()); n < o.minWrites {
			t.Errorf("rate %v: %d writes, want at least %d", c.rate, n, o.minWrites)
		}
	}
	if _, err := parse([]string{"-cairn", "x", "-min-writes", "0"}, io.Discard); err == nil {
		t.Error("-min-writes 0 accepted")
	}
}
