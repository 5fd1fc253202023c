package transport

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Transport sends raft messages to peers and receives theirs. Create it with
// New, mount Handler on the peer listener, register peers with AddPeer, and
// call Send from the raft goroutine. All methods are safe for concurrent use.
type Transport struct {
	id, clusterID uint64
	raft          Raft
	log           *slog.Logger
	queueSize     int
	met           *metrics
	httpTr        *http.Transport
	client        *http.Client
	ctx           context.Context // canceled by Stop
	cancel        context.CancelFunc
	handler       http.Handler
	stopOnce      sync.Once
	onStreamLost  func(from uint64)

	// perBatchPOST selects one POST per batch instead of a long-lived stream;
	// kept only so the benchmark can compare both (see doc.go). Tests set it
	// before AddPeer.
	perBatchPOST bool

	wg       sync.WaitGroup // goroutines started by the transport
	handlers sync.WaitGroup // HTTP handler invocations in progress

	mu      sync.RWMutex // protects the fields below
	peers   map[uint64]*peer
	stopped bool
}

// New validates cfg, applies defaults and returns a Transport with no peers.
// Errors wrap ErrInvalidConfig.
func New(cfg Config) (*Transport, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	met, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	httpTr := &http.Transport{
		Proxy:               nil, // peers are addressed directly
		DialContext:         dialer.DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &Transport{
		id:           cfg.ID,
		clusterID:    cfg.ClusterID,
		raft:         cfg.Raft,
		onStreamLost: cfg.OnStreamLost,
		log:          cfg.Logger.With("member", idString(cfg.ID)),
		queueSize:    cfg.QueueSize,
		met:          met,
		httpTr:       httpTr,
		client:       &http.Client{Transport: httpTr},
		ctx:          ctx,
		cancel:       cancel,
		peers:        make(map[uint64]*peer),
	}
	t.handler = t.newHandler()
	return t, nil
}

// Handler returns the HTTP handler serving the peer endpoints (PathStream,
// PathSnapshot, PathProbe). Mount it on the peer listener's server; that server
// must not impose a body read timeout shorter than the stream's life (the
// stream handler clears the connection's read deadline itself).
func (t *Transport) Handler() http.Handler { return t.handler }

// AddPeer registers peer id reachable at urls (e.g. "http://10.0.0.2:2380") and
// starts its sender goroutines. Adding a known peer updates its URLs. It is a
// no-op after Stop or for id == 0 or the local ID.
func (t *Transport) AddPeer(id uint64, urls []string) {
	if id == 0 || id == t.id {
		t.log.Warn("transport: ignoring AddPeer", "peer", idString(id))
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if p, ok := t.peers[id]; ok {
		p.setURLs(urls)
		return
	}
	p := newPeer(t, id, urls)
	t.peers[id] = p
	t.wg.Add(2)
	go p.runSender()
	go p.runSnapshotSender()
	t.log.Info("transport: peer added", "peer", idString(id), "urls", urls)
}

// RemovePeer stops sending to id: its queues are closed, its in-flight
// requests canceled. It does not wait for the peer's goroutines (Stop does).
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	p, ok := t.peers[id]
	if ok {
		delete(t.peers, id)
		p.closeQueuesLocked()
	}
	t.mu.Unlock()
	if !ok {
		return
	}
	p.cancel()
	t.met.deletePeer(id)
	t.log.Info("transport: peer removed", "peer", idString(id))
}

// UpdatePeer replaces the URLs of a known peer; its current connection is
// closed before the next batch so the new URLs take effect. Unknown peers are
// ignored.
func (t *Transport) UpdatePeer(id uint64, urls []string) {
	t.mu.RLock()
	p := t.peers[id]
	t.mu.RUnlock()
	if p == nil {
		t.log.Debug("transport: UpdatePeer of unknown peer", "peer", idString(id))
		return
	}
	p.setURLs(urls)
	t.log.Info("transport: peer updated", "peer", idString(id), "urls", urls)
}

// Send queues msgs for their targets (m.To) and returns without touching the
// network. A message for an unknown peer, or one that finds its peer's queue
// full, is dropped and counted; raft retransmits. A dropped MsgSnap is
// reported to Raft.ReportSnapshot(to, true) before Send returns.
func (t *Transport) Send(msgs []*raftpb.Message) {
	var failedSnaps []uint64
	t.mu.RLock()
	for _, m := range msgs {
		to := m.GetTo()
		p := t.peers[to]
		if p == nil {
			if !t.stopped {
				t.met.dropped.WithLabelValues(idString(to), dropUnknownPeer).Inc()
				t.log.Debug("transport: dropping message to unknown peer", "to", idString(to), "type", m.GetType())
			}
			if m.GetType() == raftpb.MsgSnap {
				failedSnaps = append(failedSnaps, to)
			}
			continue
		}
		if m.GetType() == raftpb.MsgSnap {
			select {
			case p.snapq <- m:
			default:
				p.c.droppedFull.Inc()
				failedSnaps = append(failedSnaps, to)
			}
			continue
		}
		select {
		case p.queue <- m:
		default:
			p.c.droppedFull.Inc()
		}
	}
	t.mu.RUnlock()
	for _, to := range failedSnaps {
		t.raft.ReportSnapshot(to, true)
	}
}

// ActivePeers returns how many peers are currently reachable: their last send
// succeeded and no failure, and no end of the stream connection, has been seen
// since.
func (t *Transport) ActivePeers() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	n := 0
	for _, p := range t.peers {
		if p.active.Load() {
			n++
		}
	}
	return n
}

// Stop closes every queue, cancels in-flight requests, makes running handlers
// return, waits for all goroutines and handler calls, and closes idle
// connections. After Stop returns, Raft is never called again. Idempotent.
func (t *Transport) Stop() {
	t.stopOnce.Do(func() {
		t.mu.Lock()
		t.stopped = true
		for id, p := range t.peers {
			p.closeQueuesLocked()
			delete(t.peers, id)
		}
		t.mu.Unlock()
		t.cancel()
		t.wg.Wait()
		t.handlers.Wait()
		t.httpTr.CloseIdleConnections()
		t.log.Info("transport: stopped")
	})
}

// beginHandler registers a handler invocation; false after Stop.
func (t *Transport) beginHandler() bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.stopped {
		return false
	}
	t.handlers.Add(1)
	return true
}
