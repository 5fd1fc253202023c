package server

import (
	"context"
	"time"
)

// MoveLeader hands leadership from this member, which must lead, to the
// voting member target, and waits until target leads (or ctx ends).
func (s *Server) MoveLeader(ctx context.Context, target uint64) error {
	if !s.node.IsLeader() {
		return ErrNotLeader
	}
	if target == s.cfg.MemberID {
		return nil
	}
	ok := false
	for _, m := range s.Members() {
		ok = ok || (m.ID == target && !m.IsLearner)
	}
	if !ok {
		return ErrBadTransferee
	}
	start := time.Now()
	s.node.TransferLeadership(ctx, target)
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for s.node.Leader() != target {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ErrTransferTimeout
		case <-s.stopc:
			return ErrStopped
		}
	}
	s.log.Info("leadership transferred", "to", target, "took", time.Since(start))
	return nil
}
