package server

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"time"
)

// notifier is closed when the ReadIndex round it belongs to has finished.
type notifier struct {
	c   chan struct{}
	err error
}

func newNotifier() *notifier { return &notifier{c: make(chan struct{})} }

func (n *notifier) notify(err error) {
	n.err = err
	close(n.c)
}

// linearizableReadNotify returns once the local state reflects every write
// committed before the call: it joins the next ReadIndex round.
func (s *Server) linearizableReadNotify(ctx context.Context) error {
	if s.cfg.MutantStaleReads != nil && s.cfg.MutantStaleReads() {
		return nil
	}
	s.readMu.Lock()
	nc := s.readNotif
	s.readMu.Unlock()
	select {
	case s.readWakeC <- struct{}{}:
	default:
	}
	select {
	case <-nc.c:
		return nc.err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.stopc:
		return ErrStopped
	}
}

// readLoop runs ReadIndex rounds, one at a time. Every read that arrives
// while a round is in flight waits for the next one, so one round serves
// many reads.
func (s *Server) readLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.readWakeC:
		case <-s.stopc:
			return
		}
		s.readMu.Lock()
		nr := s.readNotif
		s.readNotif = newNotifier()
		s.readMu.Unlock()

		index, err := s.readIndex()
		if err == nil {
			select {
			case <-s.applied.Wait(index):
			case <-s.stopc:
				err = ErrStopped
			}
		}
		s.metrics.readIndexRounds.Inc()
		nr.notify(err)
		if errors.Is(err, ErrStopped) {
			return
		}
	}
}

// readIndex asks raft (through the leader) for the current commit index,
// retrying while the request may have been lost, up to RequestTimeout.
func (s *Server) readIndex() (uint64, error) {
	id := s.nextID()
	rctx := make([]byte, 8)
	binary.BigEndian.PutUint64(rctx, id)
	deadline := time.NewTimer(s.cfg.RequestTimeout)
	defer deadline.Stop()
	retry := time.NewTicker(500 * time.Millisecond)
	defer retry.Stop()

	send := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
		defer cancel()
		if err := s.waitLeader(ctx); err != nil {
			return err
		}
		return s.node.ReadIndex(ctx, rctx)
	}
	// Answers to earlier rounds that gave up are stale: drop them first.
	for drained := false; !drained; {
		select {
		case <-s.node.ReadStates():
		default:
			drained = true
		}
	}
	if err := send(); err != nil {
		return 0, err
	}
	for {
		select {
		case rs := <-s.node.ReadStates():
			if bytes.Equal(rs.RequestCtx, rctx) {
				return rs.Index, nil
			}
			// An answer to an earlier, timed-out round: ignore it.
		case <-retry.C:
			// The request or its answer may have been dropped (leader
			// change, lost message): ask again with the same context.
			if err := send(); err != nil {
				return 0, err
			}
		case <-deadline.C:
			return 0, ErrTimeout
		case <-s.stopc:
			return 0, ErrStopped
		}
	}
}
