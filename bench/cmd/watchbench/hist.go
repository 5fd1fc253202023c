package main

import (
	"math/bits"
	"time"
)

// hist is a log-linear histogram of non-negative durations kept in
// microseconds: exact below 128 µs, then 64 buckets per power of two, so a
// percentile read from it is within 1.6% of the exact value. It is small
// (histBuckets counters) so that every watch stream can own one per
// segment without locking.
type hist struct {
	counts []uint32
	n      int64
	maxNs  int64 // exact
}

const (
	subBits     = 7
	histBuckets = (40-subBits+2)<<(subBits-1) + 1<<subBits // values up to 2^40 µs
)

func bucketOf(us int64) int {
	if us < 1<<subBits {
		return int(us)
	}
	if us >= 1<<40 {
		us = 1<<40 - 1
	}
	shift := bits.Len64(uint64(us)) - subBits
	return shift<<(subBits-1) + int(us>>shift)
}

// bucketMid is the middle of bucket i, in microseconds.
func bucketMid(i int) float64 {
	if i < 1<<subBits {
		return float64(i)
	}
	shift := i>>(subBits-1) - 1
	m := i - shift<<(subBits-1)
	low := int64(m) << shift
	return float64(low) + float64(int64(1)<<shift)/2
}

func (h *hist) add(ns int64) {
	if h.counts == nil {
		h.counts = make([]uint32, histBuckets)
	}
	if ns < 0 {
		ns = 0
	}
	h.counts[bucketOf(ns/int64(time.Microsecond))]++
	h.n++
	h.maxNs = max(h.maxNs, ns)
}

func (h *hist) merge(o *hist) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint32, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.maxNs = max(h.maxNs, o.maxNs)
}

// quantile is the nearest-rank q-quantile in microseconds (0 when empty).
func (h *hist) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.999999)
	rank = min(max(rank, 1), h.n)
	var cum int64
	for i, c := range h.counts {
		cum += int64(c)
		if cum >= rank {
			return min(bucketMid(i), float64(h.maxNs)/1e3)
		}
	}
	return float64(h.maxNs) / 1e3
}
