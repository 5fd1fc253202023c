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

// startWatches creates the registry and the tickers that drive it; the
// tickers stop with the server.
func (s *Server) startWatches() {
	sync := time.NewTicker(100 * time.Millisecond)
	progress := time.NewTicker(s.cfg.WatchProgressInterval)
	s.watches = watch.New(watchSource{s}, watch.Config{
		Ticks:            sync.C,
		ProgressInterval: s.cfg.WatchProgressInterval,
		ProgressTicks:    progress.C,
		Logger:           s.log.With("component", "watch"),
	})
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		<-s.stopc
		sync.Stop()
		progress.Stop()
		s.watches.Stop()
	}()
}
