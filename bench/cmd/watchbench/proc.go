package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// memberPIDs finds the processes serving the given data directories by
// their command line (package cluster does not export its PIDs).
func memberPIDs(dataDirs []string) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	pids := make([]int, len(dataDirs))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] != "--data-dir" {
				continue
			}
			for j, d := range dataDirs {
				if args[i+1] == d && pids[j] == 0 {
					pids[j] = pid
				}
			}
		}
	}
	for j, p := range pids {
		if p == 0 {
			return nil, fmt.Errorf("watchbench: no process with --data-dir %s", dataDirs[j])
		}
	}
	return pids, nil
}

// rss is the sum of the processes' current resident set sizes (VmRSS), in bytes.
func rss(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return 0, err
		}
		found := false
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(rest)
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return 0, err
				}
				sum += kb * 1024
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("watchbench: no VmRSS for pid %d", pid)
		}
	}
	return sum, nil
}

// metrics is a flat scrape: series name with labels -> value, summed over
// the members.
type metrics map[string]float64

// scrape reads /metrics from every endpoint and keeps the series whose name
// starts with one of the prefixes.
func scrape(ctx context.Context, endpoints []string, prefixes []string) (metrics, error) {
	out := metrics{}
	for _, ep := range endpoints {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		req, _ := http.NewRequestWithContext(rctx, http.MethodGet, ep+"/metrics", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			cancel()
			return nil, err
		}
		err = parseMetrics(resp.Body, prefixes, out)
		_ = resp.Body.Close()
		cancel()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseMetrics(r io.Reader, prefixes []string, out metrics) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		ok := false
		for _, p := range prefixes {
			ok = ok || strings.HasPrefix(line, p)
		}
		if !ok {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] += v
	}
	return sc.Err()
}

// histSummary summarizes the histograms among after-before: one line per
// histogram family, "name: n=COUNT mean=… p50≤… p99≤…" (bucket upper bounds,
// summed over label sets and members), and one per counter ("…_total"),
// "name: +DELTA".
func histSummary(before, after metrics) []string {
	type fam struct {
		count, sum float64
		buckets    map[float64]float64
	}
	fams := map[string]*fam{}
	counters := map[string]float64{}
	get := func(name string) *fam {
		f := fams[name]
		if f == nil {
			f = &fam{buckets: map[float64]float64{}}
			fams[name] = f
		}
		return f
	}
	for series, v := range after {
		d := v - before[series]
		name, labels, _ := strings.Cut(series, "{")
		switch {
		case strings.HasSuffix(name, "_bucket"):
			le := labelValue(labels, "le")
			ub, err := strconv.ParseFloat(le, 64)
			if le == "+Inf" {
				ub, err = 1e300, nil
			}
			if err == nil {
				get(strings.TrimSuffix(name, "_bucket")).buckets[ub] += d
			}
		case strings.HasSuffix(name, "_count"):
			get(strings.TrimSuffix(name, "_count")).count += d
		case strings.HasSuffix(name, "_sum"):
			get(strings.TrimSuffix(name, "_sum")).sum += d
		case strings.HasSuffix(name, "_total"):
			counters[name] += d
		}
	}
	var out []string
	for name, d := range counters {
		out = append(out, fmt.Sprintf("%s: +%.0f", name, d))
	}
	for name, f := range fams {
		if len(f.buckets) == 0 {
			continue
		}
		ubs := make([]float64, 0, len(f.buckets))
		for ub := range f.buckets {
			ubs = append(ubs, ub)
		}
		sort.Float64s(ubs)
		q := func(p float64) string {
			for _, ub := range ubs {
				if f.count > 0 && f.buckets[ub] >= p*f.count {
					if ub >= 1e300 {
						return "+Inf"
					}
					return strconv.FormatFloat(ub*1e3, 'g', 4, 64) + "ms"
				}
			}
			return "-"
		}
		mean := 0.0
		if f.count > 0 {
			mean = f.sum / f.count * 1e3
		}
		out = append(out, fmt.Sprintf("%s: n=%.0f mean=%.3gms p50≤%s p99≤%s", name, f.count, mean, q(0.5), q(0.99)))
	}
	sort.Strings(out)
	return out
}

func labelValue(labels, key string) string {
	for part := range strings.SplitSeq(strings.TrimSuffix(labels, "}"), ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.Trim(v, `"`)
		}
	}
	return ""
}
