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
	type sample struct {
		at  time.Time
		rev int64
	}
	var samples []sample
	var last int64
	for {
		var now time.Time
		select {
		case now = <-ac.Ticks:
		case <-ctx.Done():
			return
		}
		rev := s.Rev()
		var target int64
		switch ac.Mode {
		case "periodic":
			samples = append(samples, sample{now, rev})
			// The newest sample at least Period old is the compaction point.
			cut := -1
			for i, sm := range samples {
				if now.Sub(sm.at) >= ac.Period {
					cut = i
				}
			}
			if cut < 0 {
				continue
			}
			target = samples[cut].rev
			samples = samples[cut:]
		case "revision":
			target = rev - ac.Revisions
		default:
			return
		}
		if !s.node.IsLeader() || target <= last || target <= 0 {
			continue
		}
		if _, err := s.Compact(ctx, target); err != nil && !errors.Is(err, mvcc.ErrCompacted) {
			s.log.Warn("auto compaction failed", "revision", target, "err", err)
			continue
		}
		last = target
		s.log.Info("auto compaction done", "revision", target, "mode", ac.Mode)
	}
}
