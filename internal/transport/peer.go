package transport

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// Sender tuning.
const (
	backoffMin      = 50 * time.Millisecond  // wait after a first failure
	backoffMax      = 100 * time.Millisecond // wait after repeated failures
	batchFlushBytes = 1 << 20                // stop draining the queue into a batch past this size
	keepBufBytes    = 4 << 20                // larger batch buffers are not kept for reuse
	snapQueueSize   = 4                      // raft sends at most one MsgSnap per peer at a time
	mismatchLogGap  = 5 * time.Second        // rate limit of the wrong-cluster Error log per peer
	errBodyLimit    = 1 << 10                // bytes of an error response body kept for the log
)

// errStreamEnded is what a sender sees when the peer ended the stream.
var errStreamEnded = errors.New("transport: stream closed by peer")

// peer is one remote member: a message queue drained by runSender, a snapshot
// queue drained by runSnapshotSender.
type peer struct {
	t      *Transport
	id     uint64
	queue  chan *raftpb.Message // closed by closeQueuesLocked (under t.mu)
	snapq  chan *raftpb.Message // closed by closeQueuesLocked (under t.mu)
	ctx    context.Context      // canceled by RemovePeer and Stop
	cancel context.CancelFunc
	c      peerCounters
	active atomic.Bool // last send succeeded and the connection has not failed since

	mu             sync.Mutex // protects the fields below
	urls           []string   // validated base URLs, without trailing slash
	next           int        // index in urls of the URL to use next
	gen            uint64     // bumped by setURLs; a stream of an older gen is reopened
	lastMismatchAt time.Time  // last wrong-cluster Error log
}

func newPeer(t *Transport, id uint64, urls []string) *peer {
	ctx, cancel := context.WithCancel(t.ctx)
	p := &peer{
		t:      t,
		id:     id,
		queue:  make(chan *raftpb.Message, t.queueSize),
		snapq:  make(chan *raftpb.Message, snapQueueSize),
		ctx:    ctx,
		cancel: cancel,
		c:      t.met.forPeer(id),
	}
	p.setURLs(urls)
	return p
}

func (p *peer) closeQueuesLocked() {
	close(p.queue)
	close(p.snapq)
}

func (p *peer) setURLs(urls []string) {
	var ok []string
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.t.log.Warn("transport: ignoring invalid peer URL", "peer", idString(p.id), "url", s)
			continue
		}
		ok = append(ok, strings.TrimRight(s, "/"))
	}
	p.mu.Lock()
	if !slices.Equal(p.urls, ok) { // the same URLs again (AddPeer of a known peer) keep the stream
		p.urls, p.next = ok, 0
		p.gen++
	}
	p.mu.Unlock()
}

// pickURL returns the URL to use and the current URL generation.
func (p *peer) pickURL() (string, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.urls) == 0 {
		return "", p.gen, fmt.Errorf("transport: peer %s has no valid URL", idString(p.id))
	}
	return p.urls[p.next%len(p.urls)], p.gen, nil
}

func (p *peer) generation() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gen
}

// rotateURL moves to the peer's next URL after a failure.
func (p *peer) rotateURL() {
	p.mu.Lock()
	p.next++
	p.mu.Unlock()
}

func (p *peer) setHeaders(h http.Header) {
	h.Set(HeaderFrom, idString(p.t.id))
	h.Set(HeaderTo, idString(p.id))
	h.Set(HeaderClusterID, idString(p.t.clusterID))
	h.Set("Content-Type", "application/octet-stream")
}

// runSender drains the queue into batches and writes each batch to the peer.
func (p *peer) runSender() {
	defer p.t.wg.Done()
	var st *stream
	defer func() {
		if st != nil {
			st.close()
		}
	}()
	buf := make([]byte, 0, 64<<10)
	backoff := time.Duration(0)
	for {
		var first *raftpb.Message
		select {
		case m, ok := <-p.queue:
			if !ok {
				return
			}
			first = m
		case <-p.ctx.Done():
			return
		}
		var n int
		buf, n = p.encodeBatch(buf[:0], first)
		if n == 0 {
			continue
		}
		var err error
		if p.t.perBatchPOST {
			err = p.postBatch(buf)
		} else {
			if st != nil && st.gen != p.generation() {
				st.close()
				st = nil
			}
			if st == nil {
				st, err = p.openStream()
			}
			if err == nil {
				err = st.write(buf)
			}
		}
		if cap(buf) > keepBufBytes {
			buf = make([]byte, 0, 64<<10)
		}
		if err == nil {
			p.active.Store(true)
			p.c.sent.Add(float64(n))
			backoff = 0
			continue
		}
		if st != nil {
			st.close()
			st = nil
		}
		if p.ctx.Err() != nil {
			p.c.droppedStopped.Add(float64(n))
			return
		}
		p.active.Store(false)
		p.c.failures.Inc()
		p.c.droppedFailed.Add(float64(n))
		p.rotateURL()
		p.t.log.Debug("transport: send failed", "peer", idString(p.id), "messages", n, "err", err)
		p.t.raft.ReportUnreachable(p.id)
		if backoff == 0 {
			backoff = backoffMin
		} else {
			backoff = backoffMax
		}
		timer := time.NewTimer(backoff)
		select {
		case <-timer.C:
		case <-p.ctx.Done():
			timer.Stop()
			return
		}
	}
}

// encodeBatch encodes first and everything already queued (up to
// batchFlushBytes) into buf, returning the number of messages encoded.
func (p *peer) encodeBatch(buf []byte, first *raftpb.Message) ([]byte, int) {
	n := 0
	add := func(m *raftpb.Message) {
		out, err := appendFrame(buf, m)
		if err != nil {
			p.c.droppedFailed.Inc()
			p.t.log.Error("transport: cannot encode message", "peer", idString(p.id), "type", m.GetType(), "err", err)
			return
		}
		buf = out
		n++
	}
	add(first)
	for len(buf) < batchFlushBytes {
		select {
		case m, ok := <-p.queue:
			if !ok {
				return buf, n // queue closed: send what we have; the next receive ends the loop
			}
			add(m)
		default:
			return buf, n
		}
	}
	return buf, n
}

// stream is one long-lived POST to PathStream whose body is fed through a pipe.
type stream struct {
	gen        uint64
	pw         *io.PipeWriter
	closedByUs atomic.Bool
}

// openStream starts the request; the connection is made when the first write
// reaches the HTTP client.
func (p *peer) openStream() (*stream, error) {
	u, gen, err := p.pickURL()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, u+PathStream, pr)
	if err != nil {
		return nil, fmt.Errorf("transport: build request: %w", err)
	}
	p.setHeaders(req.Header)
	st := &stream{gen: gen, pw: pw}
	p.t.wg.Add(1)
	go func() {
		defer p.t.wg.Done()
		err := p.roundTrip(req)
		if err == nil {
			err = errStreamEnded
		}
		pr.CloseWithError(err) // a blocked or later write fails with err
		if !st.closedByUs.Load() {
			p.active.Store(false)
			if p.ctx.Err() == nil {
				p.t.log.Debug("transport: stream ended", "peer", idString(p.id), "err", err)
			}
		}
	}()
	return st, nil
}

func (s *stream) write(b []byte) error {
	_, err := s.pw.Write(b)
	return err
}

// close ends the request body cleanly; the peer answers and the request
// goroutine exits.
func (s *stream) close() {
	s.closedByUs.Store(true)
	s.pw.Close()
}

// postBatch sends one batch as its own POST (the alternative to streaming).
func (p *peer) postBatch(b []byte) error {
	u, _, err := p.pickURL()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, u+PathStream, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("transport: build request: %w", err)
	}
	p.setHeaders(req.Header)
	return p.roundTrip(req)
}

// roundTrip performs req and drains the response. A non-2xx status becomes an
// error (ErrClusterIDMismatch for 412, ErrMemberIDMismatch for 409, both
// logged at Error, rate limited).
func (p *peer) roundTrip(req *http.Request) error {
	resp, err := p.t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyLimit))
	msg := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusPreconditionFailed:
		p.logMismatch(msg)
		return fmt.Errorf("%w: %s", ErrClusterIDMismatch, msg)
	case http.StatusConflict:
		p.logMismatch(msg)
		return fmt.Errorf("%w: %s", ErrMemberIDMismatch, msg)
	case http.StatusServiceUnavailable:
		return fmt.Errorf("%w (remote): %s", ErrStopped, msg)
	}
	return fmt.Errorf("transport: peer %s answered %s: %s", idString(p.id), resp.Status, msg)
}

func (p *peer) logMismatch(msg string) {
	p.mu.Lock()
	now := time.Now()
	doLog := p.lastMismatchAt.IsZero() || now.Sub(p.lastMismatchAt) >= mismatchLogGap
	if doLog {
		p.lastMismatchAt = now
	}
	p.mu.Unlock()
	if doLog {
		p.t.log.Error("transport: peer rejected us: wrong cluster or member", "peer", idString(p.id), "response", msg)
	}
}

// runSnapshotSender sends each MsgSnap as its own streaming POST, so heartbeats
// and appends on the stream are never stuck behind tens of MiB of Data.
func (p *peer) runSnapshotSender() {
	defer p.t.wg.Done()
	for {
		select {
		case m, ok := <-p.snapq:
			if !ok {
				return
			}
			p.sendSnapshot(m)
		case <-p.ctx.Done():
			return
		}
	}
}

func (p *peer) sendSnapshot(m *raftpb.Message) {
	start := time.Now()
	size := len(m.GetSnapshot().GetData())
	err := p.postSnapshot(m)
	if p.ctx.Err() != nil {
		return // removed or stopping: nobody is waiting for the report
	}
	if err != nil {
		p.t.met.snapshots.WithLabelValues(idString(p.id), "failed").Inc()
		p.c.failures.Inc()
		p.t.log.Warn("transport: snapshot send failed", "peer", idString(p.id), "bytes", size,
			"duration", time.Since(start), "err", err)
		p.t.raft.ReportUnreachable(p.id)
		p.t.raft.ReportSnapshot(p.id, true)
		return
	}
	p.t.met.snapshots.WithLabelValues(idString(p.id), "ok").Inc()
	p.t.log.Info("transport: snapshot sent", "peer", idString(p.id), "bytes", size,
		"index", m.GetSnapshot().GetMetadata().GetIndex(), "duration", time.Since(start))
	p.t.raft.ReportSnapshot(p.id, false)
}

func (p *peer) postSnapshot(m *raftpb.Message) error {
	prefix, err := encodeSnapshotPrefix(m)
	if err != nil {
		return err
	}
	u, _, err := p.pickURL()
	if err != nil {
		return err
	}
	data := m.GetSnapshot().GetData()
	body := io.MultiReader(bytes.NewReader(prefix), bytes.NewReader(data))
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, u+PathSnapshot, body)
	if err != nil {
		return fmt.Errorf("transport: build request: %w", err)
	}
	req.ContentLength = int64(len(prefix) + len(data))
	p.setHeaders(req.Header)
	return p.roundTrip(req)
}
