package server

import (
	"context"
	"errors"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// AutoCompaction configures the leader's automatic compaction.
type AutoCompaction struct {
	// Mode is "periodic" (keep Period of history) or "revision" (keep
	// Revisions revisions). Empty or a zero retention disables it.
	Mode      string
	Period    time.Duration
	Revisions int64
	// Ticks drives the compactor and tells it the time: each tick it
	// samples the revision and, on the leader only, proposes a compaction
	// when one is due. The daemon ticks every Period/10 (periodic) or every
	// 5 minutes (revision); tests send the times they want.
	Ticks <-chan time.Time
}

// RunCompactor proposes compactions through the log, on the leader only,
// until ctx ends. A compaction is a proposal like any write, so every member
// compacts at the same revision.
func (s *Server) RunCompactor(ctx context.Context, ac AutoCompaction) {
	c := &compactor{s: s, ac: ac}
	for {
		select {
		case now := <-ac.Ticks:
			c.step(ctx, now)
		case <-ctx.Done():
			return
		}
	}
}

// compactor is the compaction schedule's state; step is one tick.
type compactor struct {
	s       *Server
	ac      AutoCompaction
	samples []sample
	last    int64
}

type sample struct {
	at  time.Time
	rev int64
}

func (c *compactor) step(ctx context.Context, now time.Time) {
	s, ac := c.s, c.ac
	rev := s.Rev()
	var target int64
	switch ac.Mode {
	case "periodic":
		c.samples = append(c.samples, sample{now, rev})
		// The newest sample at least Period old is the compaction point.
		cut := -1
		for i, sm := range c.samples {
			if now.Sub(sm.at) >= ac.Period {
				cut = i
			}
		}
		if cut < 0 {
			return
		}
		target = c.samples[cut].rev
		c.samples = c.samples[cut:]
	case "revision":
		target = rev - ac.Revisions
	default:
		return
	}
	if !s.node.IsLeader() || target <= c.last || target <= 0 {
		return
	}
	if _, err := s.Compact(ctx, target); err != nil && !errors.Is(err, mvcc.ErrCompacted) {
		s.log.Warn("auto compaction failed", "revision", target, "err", err)
		return
	}
	c.last = target
	s.log.Info("auto compaction done", "revision", target, "mode", ac.Mode)
}
