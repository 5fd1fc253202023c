package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// HTTP paths served by Handler.
const (
	PathStream   = "/raft/stream"   // POST: a body of message frames, 204 at its end
	PathSnapshot = "/raft/snapshot" // POST: one MsgSnap, 204 once raft has it
	PathProbe    = "/raft/probe"    // GET: 200 if the cluster ID matches
)

// HTTP headers carried by every request (IDs in lowercase hex, as etcd prints them).
const (
	HeaderFrom      = "X-Cairn-Member-From"
	HeaderTo        = "X-Cairn-Member-To"
	HeaderClusterID = "X-Cairn-Cluster-ID"
)

func (t *Transport) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+PathStream, t.serveStream)
	mux.HandleFunc("POST "+PathSnapshot, t.serveSnapshot)
	mux.HandleFunc("GET "+PathProbe, t.serveProbe)
	return mux
}

// checkRequest validates the identity headers, answering the request itself
// when they are wrong: 400 if missing or malformed, 412 for another cluster,
// 409 when addressed to another member.
func (t *Transport) checkRequest(w http.ResponseWriter, r *http.Request) (from uint64, ok bool) {
	from, err1 := strconv.ParseUint(r.Header.Get(HeaderFrom), 16, 64)
	to, err2 := strconv.ParseUint(r.Header.Get(HeaderTo), 16, 64)
	cid, err3 := strconv.ParseUint(r.Header.Get(HeaderClusterID), 16, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		reject(w, "transport: missing or malformed member/cluster ID headers", http.StatusBadRequest)
		return 0, false
	}
	w.Header().Set(HeaderFrom, idString(t.id))
	w.Header().Set(HeaderClusterID, idString(t.clusterID))
	if cid != t.clusterID {
		t.log.Warn("transport: rejected request from another cluster", "from", idString(from),
			"remote_cluster", idString(cid), "local_cluster", idString(t.clusterID))
		reject(w, fmt.Sprintf("%v: member %s is in cluster %s, request from member %s claims cluster %s",
			ErrClusterIDMismatch, idString(t.id), idString(t.clusterID), idString(from), idString(cid)),
			http.StatusPreconditionFailed)
		return 0, false
	}
	if to != t.id {
		t.log.Warn("transport: rejected request for another member", "from", idString(from), "to", idString(to))
		reject(w, fmt.Sprintf("%v: this is member %s, request from member %s is for member %s",
			ErrMemberIDMismatch, idString(t.id), idString(from), idString(to)), http.StatusConflict)
		return 0, false
	}
	return from, true
}

// handle runs fn as a registered handler invocation whose context is canceled,
// and whose connection read deadline is set to now, when the transport stops.
func (t *Transport) handle(w http.ResponseWriter, r *http.Request, fn func(ctx context.Context, rc *http.ResponseController)) {
	if !t.beginHandler() {
		reject(w, ErrStopped.Error(), http.StatusServiceUnavailable)
		return
	}
	defer t.handlers.Done()
	rc := http.NewResponseController(w)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	fired := make(chan struct{})
	stop := context.AfterFunc(t.ctx, func() {
		defer close(fired)
		cancel()
		_ = rc.SetReadDeadline(time.Now()) // unblock a body read
	})
	defer func() {
		if !stop() {
			<-fired // never touch rc after the handler returned
		}
	}()
	fn(ctx, rc)
}

func (t *Transport) serveStream(w http.ResponseWriter, r *http.Request) {
	from, ok := t.checkRequest(w, r)
	if !ok {
		return
	}
	t.handle(w, r, func(ctx context.Context, rc *http.ResponseController) {
		_ = rc.SetReadDeadline(time.Time{}) // a stream lives as long as the peer wants
		received := t.met.received.WithLabelValues(idString(from))
		props := t.startProposalPump(from)
		defer props.stop()
		fr := newFrameReader(r.Body)
		for {
			p, err := fr.next()
			if err == io.EOF {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			if err != nil {
				t.streamLost(from)
				t.streamError(w, ctx, from, err)
				return
			}
			m, err := decodeMessage(p)
			if err != nil {
				t.streamError(w, ctx, from, err)
				return
			}
			if m.GetTo() != t.id {
				t.met.dropped.WithLabelValues(idString(m.GetTo()), dropWrongMember).Inc()
				t.log.Debug("transport: dropping message for another member", "from", idString(from), "to", idString(m.GetTo()))
				continue
			}
			received.Inc()
			if m.GetType() == raftpb.MsgProp {
				props.push(m)
				continue
			}
			if err := t.raft.Process(ctx, m); err != nil {
				t.log.Debug("transport: raft rejected message", "from", idString(from), "type", m.GetType(), "err", err)
			}
		}
	})
}

// proposalQueueSize bounds the forwarded proposals a stream holds while
// raft cannot take them.
const proposalQueueSize = 1024

// proposalPump hands a stream's forwarded proposals (MsgProp) to raft on a
// goroutine of their own. raft blocks a MsgProp while this member knows no
// leader, and the message that would tell it the leader may be the next one
// on the same stream: stepping proposals inline could stall the stream for
// good. A proposal that finds the pump's queue full is dropped, as raft
// drops proposals it cannot take; the proposer times out and retries. When
// the stream ends (the peer reconnects, say), the proposals already
// received are still handed to raft: dropping them would leave their
// clients waiting for a timeout.
type proposalPump struct {
	t     *Transport
	from  uint64
	queue chan *raftpb.Message
}

// proposalStepTimeout bounds how long the pump waits for raft to take one
// proposal (raft blocks it while this member knows no leader).
const proposalStepTimeout = 2 * time.Second

func (t *Transport) startProposalPump(from uint64) *proposalPump {
	p := &proposalPump{t: t, from: from, queue: make(chan *raftpb.Message, proposalQueueSize)}
	// Counted with the handlers (Stop waits for them after canceling t.ctx):
	// this runs inside a handler, so the count is above zero here.
	t.handlers.Add(1)
	go func() {
		defer t.handlers.Done()
		for m := range p.queue {
			ctx, cancel := context.WithTimeout(t.ctx, proposalStepTimeout)
			if err := t.raft.Process(ctx, m); err != nil {
				t.log.Debug("transport: raft rejected proposal", "from", idString(from), "err", err)
			}
			cancel()
		}
	}()
	return p
}

func (p *proposalPump) push(m *raftpb.Message) {
	select {
	case p.queue <- m:
	default:
		p.t.met.dropped.WithLabelValues(idString(p.t.id), dropProposalBacklog).Inc()
	}
}

// stop ends the pump once it handed over what is queued (or the transport
// stops); it does not wait.
func (p *proposalPump) stop() { close(p.queue) }

// streamLost reports a broken incoming stream, unless we are stopping.
func (t *Transport) streamLost(from uint64) {
	if t.onStreamLost == nil || t.ctx.Err() != nil {
		return
	}
	t.onStreamLost(from)
}

func (t *Transport) streamError(w http.ResponseWriter, ctx context.Context, from uint64, err error) {
	if ctx.Err() != nil {
		return // stopping, or the peer went away
	}
	if errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame) {
		t.log.Warn("transport: bad stream from peer", "from", idString(from), "err", err)
		reject(w, err.Error(), http.StatusBadRequest)
		return
	}
	t.log.Debug("transport: stream from peer ended", "from", idString(from), "err", err)
}

func (t *Transport) serveSnapshot(w http.ResponseWriter, r *http.Request) {
	from, ok := t.checkRequest(w, r)
	if !ok {
		return
	}
	t.handle(w, r, func(ctx context.Context, rc *http.ResponseController) {
		_ = rc.SetReadDeadline(time.Time{})
		start := time.Now()
		m, err := decodeSnapshot(r.Body)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Warn("transport: bad snapshot from peer", "from", idString(from), "err", err)
				reject(w, err.Error(), http.StatusBadRequest)
			}
			return
		}
		if m.GetTo() != t.id {
			reject(w, fmt.Sprintf("%v: snapshot for member %s received by member %s",
				ErrMemberIDMismatch, idString(m.GetTo()), idString(t.id)), http.StatusConflict)
			return
		}
		t.log.Info("transport: snapshot received", "from", idString(from), "bytes", len(m.GetSnapshot().GetData()),
			"index", m.GetSnapshot().GetMetadata().GetIndex(), "duration", time.Since(start))
		if err := t.raft.Process(ctx, m); err != nil {
			t.log.Warn("transport: raft rejected snapshot", "from", idString(from), "err", err)
			reject(w, "transport: raft rejected snapshot: "+err.Error(), http.StatusInternalServerError)
			return
		}
		t.met.received.WithLabelValues(idString(from)).Inc()
		w.WriteHeader(http.StatusNoContent)
	})
}

// serveProbe answers 200 with this member's ID and cluster ID headers; a
// request that carries a different cluster ID gets 412.
func (t *Transport) serveProbe(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(HeaderFrom, idString(t.id))
	w.Header().Set(HeaderClusterID, idString(t.clusterID))
	if s := r.Header.Get(HeaderClusterID); s != "" {
		if cid, err := strconv.ParseUint(s, 16, 64); err != nil || cid != t.clusterID {
			reject(w, fmt.Sprintf("%v: member %s is in cluster %s, probe claims cluster %s",
				ErrClusterIDMismatch, idString(t.id), idString(t.clusterID), s), http.StatusPreconditionFailed)
			return
		}
	}
	_, _ = io.WriteString(w, "ok\n")
}

// reject answers with an error and closes the connection afterwards: the
// request body (a stream that may never end) is left unread, and without
// "Connection: close" the server would try to drain it before replying.
func reject(w http.ResponseWriter, msg string, code int) {
	w.Header().Set("Connection", "close")
	http.Error(w, msg, code)
}
