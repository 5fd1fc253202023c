package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
)

// writeResult is what one segment's writer did.
type writeResult struct {
	sent, failed int
	acked        []int64 // write indexes (revision-base-1) of acknowledged Puts, ascending
	firstErr     string
	elapsed      time.Duration
	putP50       time.Duration
	putP99       time.Duration
	putMax       time.Duration
	late         int // Puts started more than one interval after their slot (in-flight cap hit)
}

// currentRev is the store revision as seen by a serializable-free Range.
func currentRev(ctx context.Context, kv pb.KVClient, key []byte) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := kv.Range(ctx, &pb.RangeRequest{Key: key, CountOnly: true})
	if err != nil {
		return 0, fmt.Errorf("watchbench: range: %w", err)
	}
	return resp.Header.Revision, nil
}

// write issues rate Puts per second for dur, open-loop: Put i (sequence
// number seq0+i) is started at
// start+i/rate whatever the latency of the previous ones (at most 256 in
// flight). Its value carries the sequence number; the ack time is stored
// in t under the revision the response reports. keyOf names the key of
// write seq.
func write(ctx context.Context, kv pb.KVClient, t *tracker, seq0 int, rate float64, dur time.Duration,
	keyOf func(seq int) []byte, valueSize int) writeResult {
	n := int(rate * dur.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	var (
		mu  sync.Mutex
		res writeResult
		lat []time.Duration
		wg  sync.WaitGroup
	)
	sem := make(chan struct{}, 256)
	start := time.Now()
	for i := range n {
		slot := start.Add(time.Duration(i) * interval)
		if d := time.Until(slot); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if time.Since(slot) > interval {
			res.late++
		}
		res.sent++
		wg.Add(1)
		go func(seq int) {
			defer wg.Done()
			defer func() { <-sem }()
			val := fmt.Appendf(nil, "seq=%08d ", seq)
			for len(val) < valueSize {
				val = append(val, 'x')
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			t0 := time.Now()
			if seq < len(t.sends) {
				t.sends[seq].Store(t.now())
			}
			resp, err := kv.Put(pctx, &pb.PutRequest{Key: keyOf(seq), Value: val})
			d := time.Since(t0)
			ackAt := t.now()
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failed++
				if res.firstErr == "" {
					res.firstErr = err.Error()
				}
				return
			}
			i := resp.Header.Revision - t.base - 1
			if i < 0 || i >= int64(len(t.acks)) {
				res.failed++
				if res.firstErr == "" {
					res.firstErr = fmt.Sprintf("revision %d outside the tracked range (base %d, %d writes): another writer?", resp.Header.Revision, t.base, len(t.acks))
				}
				return
			}
			t.acks[i].Store(ackAt)
			res.acked = append(res.acked, i)
			lat = append(lat, d)
		}(seq0 + i)
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	sort.Slice(res.acked, func(a, b int) bool { return res.acked[a] < res.acked[b] })
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	if len(lat) > 0 {
		res.putP50 = lat[(len(lat)-1)/2]
		res.putP99 = lat[min(len(lat)-1, (len(lat)*99+99)/100-1)]
		res.putMax = lat[len(lat)-1]
	}
	return res
}
