package server

import (
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/watch"
)

// watchSource lets the watch registry read history from the store, under
// the server's read lock.
type watchSource struct{ s *Server }

func (w watchSource) Events(key, end []byte, from, to int64, prevKV bool, limit int) ([]mvcc.Event, bool, error) {
	w.s.mu.RLock()
	defer w.s.mu.RUnlock()
	return w.s.store.Events(key, end, from, to, prevKV, limit)
}

func (w watchSource) Rev() int64 { return w.s.Rev() }

// Watches returns the member's watch registry (for the Watch service).
func (s *Server) Watches() *watch.Registry { return s.watches }

// startWatches creates the registry (it runs its own catch-up and progress
// timers) and stops it with the server.
func (s *Server) startWatches() {
	s.watches = watch.New(watchSource{s}, watch.Config{
		ProgressInterval: s.cfg.WatchProgressInterval,
		Logger:           s.log.With("component", "watch"),
		ObserveSendDelay: func(d time.Duration) { s.metrics.watchSendDelay.Observe(d.Seconds()) },
		CountFellBehind:  s.metrics.watchFellBehind.Inc,
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-s.stopc
		s.watches.Stop()
	}()
}
