package watch

import (
	"bytes"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// CreateRequest is etcd's WatchCreateRequest, decoded.
type CreateRequest struct {
	// WatchID 0 asks for an id chosen by the stream (etcd's AutoWatchID: the lowest unused id counting up from
	// 0, so the first auto id is 0); any other value is used as given and must be unused on the stream.
	WatchID int64
	// Key and End select the keys as in a range: End empty is the single key Key, End "\x00" is every key >= Key,
	// otherwise [Key, End), which must not be empty. An empty Key means "\x00" (the smallest key), as in etcd.
	Key, End []byte
	// StartRev 0 watches from the next revision; a revision at or below the current one replays history from
	// it (canceled with CompactRevision if it has been compacted); a future revision waits for it.
	StartRev       int64
	PrevKV         bool // attach each event's previous key-value
	ProgressNotify bool // periodic empty responses while nothing happens
	NoPut          bool // filter out puts
	NoDelete       bool // filter out deletes
	Fragment       bool // split large responses (see Config.ResponseBytes)
}

// Response is one message for the gRPC send loop to turn into an etcd WatchResponse (header revision =
// Revision). Its Events (and their KeyValues) may be shared with other responses and with the store: read-only.
type Response struct {
	// WatchID is the watcher's id; -1 for a created-and-canceled answer to a bad create request, and for a
	// progress response to Stream.RequestProgress.
	WatchID  int64
	Created  bool
	Canceled bool
	// CancelReason is set on a created-and-canceled answer to a bad create request (the error's text).
	CancelReason string
	// CompactRevision is set (with Canceled) when the watcher's history was compacted before it got it.
	CompactRevision int64
	// Revision is the header revision: the registry's revision when the response was made.
	Revision int64
	Events   []mvcc.Event
	// Caches, when not nil, holds one slot per event of Events: the slot is shared by every response carrying
	// the same event in the same form (with or without PrevKV), so the API layer encodes it once for all.
	Caches []*EventCache
	// Fragment: more fragments of this response follow (only for watchers created with Fragment).
	Fragment bool
	// ProgressNotify marks a progress notification (no events). etcd's wire format has no such field: it is
	// implied by an empty response that is neither created, canceled nor compacted.
	ProgressNotify bool

	queuedAt int64 // events responses: Registry.queuedAt when queued
}

// Stream is the set of watchers of one gRPC Watch stream, with one bounded queue of responses for all of them.
// Its methods are safe for concurrent use.
type Stream struct {
	r *Registry
	q *queue // at most Config.MaxPending responses; pushed to only under r.mu

	// protected by r.mu:
	closed   bool
	nextID   int64
	watchers map[int64]*watcher
	// behind is set (under r.mu) when the stream has work for a catch-up pass that its queue had no room for:
	// watchers moved aside, or a backlog. Take clears it, and asks for a pass, once it has made room.
	behind atomic.Bool
	// backlog holds responses that must go out, in order, before anything else: control responses that found
	// the queue full and the remaining fragments of a fragmented response. While it is not empty, Notify
	// delivers nothing to this stream (its watchers fall behind and are caught up later).
	backlog []Response
}

// NewStream returns a new, empty stream. After Stop it returns a closed stream.
func (r *Registry) NewStream() *Stream {
	s := &Stream{r: r, q: newQueue(r.cfg.MaxPending), watchers: make(map[int64]*watcher)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		s.closed = true
		s.q.close()
		return s
	}
	r.streams[s] = struct{}{}
	return s
}

// Ready receives a value when responses may be waiting, or the stream was closed: the gRPC send loop then
// calls Take until it returns an empty batch.
func (s *Stream) Ready() <-chan struct{} { return s.q.ready }

// Take returns every response queued on the stream, in order, reusing buf (the previous batch, which must no
// longer be used) for the queue; ok is false once the stream is closed (by Close or Registry.Stop) and everything
// queued before was taken.
//
// Taking a non-empty batch from a stream whose watchers are behind asks the sync goroutine for a catch-up pass at
// once, so they are not left waiting for the next SyncInterval tick while their queue has room.
func (s *Stream) Take(buf []Response) (batch []Response, ok bool) {
	batch, ok = s.q.take(buf)
	if len(batch) > 0 && s.behind.Load() && s.behind.CompareAndSwap(true, false) {
		s.r.kickSync()
	}
	return batch, ok
}

// Sent tells the registry that batch, returned by Take, was handed to the transport: each events response's
// time from being queued (at apply, or in a catch-up pass) to now goes to Config.ObserveSendDelay.
func (s *Stream) Sent(batch []Response) {
	if s.r.cfg.ObserveSendDelay == nil {
		return
	}
	now := time.Since(s.r.start)
	for i := range batch {
		if q := batch[i].queuedAt; q != 0 {
			s.r.cfg.ObserveSendDelay(now - time.Duration(q-1))
		}
	}
}

// Create adds a watcher. It always puts exactly one response on the stream, ahead of any of the watcher's
// events: Created with the watcher's id and the current revision; or, when it fails, Created and Canceled with
// WatchID -1 and the error's text as CancelReason, as etcd does. The returned error (ErrEmptyRange,
// ErrDuplicateWatchID, ErrNegativeStartRev, or ErrStreamClosed when nothing was put on the closed stream) is
// for the caller's information: it must not send anything else for it.
//
// Create waits while the stream's backlog of undelivered control responses is full (MaxPending of them), as
// etcd's receive loop waits on its control channel; Close ends the wait.
func (s *Stream) Create(req CreateRequest) error {
	r := s.r
	key := bytes.Clone(req.Key)
	if len(key) == 0 {
		key = []byte{0}
	}
	var end []byte
	gte := false
	switch {
	case len(req.End) == 0:
	case len(req.End) == 1 && req.End[0] == 0:
		gte = true
	default:
		end = bytes.Clone(req.End)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.waitBacklogLocked() {
		return ErrStreamClosed
	}
	fail := func(err error) error {
		r.sendCtrlLocked(s, Response{WatchID: -1, Created: true, Canceled: true, CancelReason: err.Error(), Revision: r.rev})
		return err
	}
	if req.StartRev < 0 {
		return fail(ErrNegativeStartRev)
	}
	if end != nil && bytes.Compare(key, end) >= 0 {
		return fail(ErrEmptyRange)
	}
	id := req.WatchID
	if id == 0 {
		for s.watchers[s.nextID] != nil {
			s.nextID++
		}
		id = s.nextID
		s.nextID++
	} else if s.watchers[id] != nil {
		return fail(ErrDuplicateWatchID)
	}
	w := &watcher{
		s: s, id: id, key: key, end: end, gte: gte, startRev: req.StartRev, slot: -1,
		prevKV: req.PrevKV, progress: req.ProgressNotify, noPut: req.NoPut, noDelete: req.NoDelete, fragment: req.Fragment,
	}
	r.sendCtrlLocked(s, Response{WatchID: id, Created: true, Revision: r.rev})
	r.addLocked(w)
	return nil
}

// Cancel removes the watcher id and puts a Canceled response for it on the stream, after every response already
// queued for it; no event of it follows. An unknown id (never created, already canceled, or canceled by
// compaction) is ignored, as etcd does. Cancel may wait like Create.
func (s *Stream) Cancel(id int64) {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if !s.waitBacklogLocked() {
		return
	}
	w := s.watchers[id]
	if w == nil {
		return
	}
	r.removeLocked(w)
	r.sendCtrlLocked(s, Response{WatchID: id, Canceled: true, Revision: r.rev})
}

// RequestProgress asks for a progress notification: when every watcher of the stream is synced (and past its
// start revision), one response with WatchID -1 and the current revision is put on the stream; otherwise, or
// when the stream has no watcher, nothing (etcd 3.7's RequestProgressAll). The response follows every event up
// to that revision of every watcher of the stream.
func (s *Stream) RequestProgress() {
	r := s.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if s.closed || len(s.watchers) == 0 {
		return
	}
	for _, w := range s.watchers {
		if w.state != stateSynced || r.rev < w.startRev {
			return
		}
	}
	if len(s.backlog) < r.cfg.MaxPending {
		r.sendCtrlLocked(s, Response{WatchID: -1, Revision: r.rev, ProgressNotify: true})
	}
}

// Close removes every watcher of the stream and closes its queue (queued responses can still be taken). It is
// idempotent.
func (s *Stream) Close() {
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.closeStreamLocked(s)
}

func (r *Registry) closeStreamLocked(s *Stream) {
	if s.closed {
		return
	}
	for _, w := range s.watchers {
		r.removeLocked(w)
	}
	s.closed = true
	s.backlog = nil
	s.q.close()
	delete(r.streams, s)
	delete(r.backlogged, s)
	r.backlogc.Broadcast()
}

// waitBacklogLocked waits until the backlog has room for a control response; false if the stream is closed.
func (s *Stream) waitBacklogLocked() bool {
	r := s.r
	for !s.closed && len(s.backlog) >= r.cfg.MaxPending {
		r.flushLocked(s)
		if len(s.backlog) < r.cfg.MaxPending {
			break
		}
		r.backlogc.Wait()
	}
	return !s.closed
}

// hasRoomLocked reports whether an event response can go on the queue now.
func (s *Stream) hasRoomLocked() bool {
	return !s.closed && len(s.backlog) == 0 && s.q.room() > 0
}

// flushLocked moves backlog to the queue while there is room.
func (r *Registry) flushLocked(s *Stream) {
	n := 0
	for n < len(s.backlog) && s.q.push(s.backlog[n]) {
		n++
	}
	if n == 0 {
		return
	}
	clear(s.backlog[:n])
	s.backlog = s.backlog[n:]
	if len(s.backlog) == 0 {
		s.backlog = nil
		delete(r.backlogged, s)
	}
	r.backlogc.Broadcast()
}

// sendCtrlLocked queues a response that must not be lost: on the queue if the backlog is empty and there is
// room, else at the end of the backlog.
func (r *Registry) sendCtrlLocked(s *Stream, resp Response) {
	if s.closed {
		return
	}
	if len(s.backlog) > 0 {
		r.flushLocked(s)
	}
	if len(s.backlog) == 0 && s.q.push(resp) {
		return
	}
	s.backlog = append(s.backlog, resp)
	r.backlogged[s] = struct{}{}
	r.behindLocked(s)
}

// trySendLocked queues a response that may be dropped (a periodic progress notification).
func (r *Registry) trySendLocked(s *Stream, resp Response) bool {
	if s.closed || len(s.backlog) > 0 {
		return false
	}
	return s.q.push(resp)
}

// sendEventsLocked queues evs (non-empty, in revision order) for w with header revision rev: in responses cut at
// revision boundaries once they reach ResponseBytes, each split into fragments if w asked for them. It stops at
// the first response that finds no room and returns false with that response's first revision (everything
// before it was queued). A fragmented response is all or nothing: once its first fragment is queued, the rest
// go to the backlog if the queue fills.
func (r *Registry) sendEventsLocked(w *watcher, evs []mvcc.Event, cs []*EventCache, rev int64) (ok bool, missed int64) {
	s := w.s
	if s.closed {
		return true, 0
	}
	if len(s.backlog) > 0 {
		r.flushLocked(s)
	}
	budget := r.cfg.ResponseBytes
	for len(evs) > 0 {
		chunk := evs
		size := 0
		for i := range evs {
			if i > 0 && size >= budget && evs[i].KV.ModRevision != evs[i-1].KV.ModRevision {
				chunk = evs[:i]
				break
			}
			size += eventSize(&evs[i])
		}
		if !r.sendResponseLocked(w, Response{WatchID: w.id, Revision: rev, Events: chunk, Caches: cs[:len(chunk)], queuedAt: r.queuedAt}, size) {
			return false, chunk[0].KV.ModRevision
		}
		w.sentSinceProgress = true
		evs, cs = evs[len(chunk):], cs[len(chunk):]
	}
	return true, 0
}

func (r *Registry) sendResponseLocked(w *watcher, resp Response, size int) bool {
	s := w.s
	if len(s.backlog) > 0 {
		return false
	}
	maxEvs := r.cfg.MaxEventsPerResponse
	if !w.fragment || len(resp.Events) < 2 || (size <= r.cfg.ResponseBytes && (maxEvs == 0 || len(resp.Events) <= maxEvs)) {
		return s.q.push(resp)
	}
	frags := r.fragments(resp)
	if !s.q.push(frags[0]) {
		return false
	}
	for i := 1; i < len(frags); i++ {
		if len(s.backlog) == 0 && s.q.push(frags[i]) {
			continue
		}
		s.backlog = append(s.backlog, frags[i])
		r.backlogged[s] = struct{}{}
		r.behindLocked(s)
	}
	return true
}

// fragments splits resp into pieces of at most ResponseBytes (a single larger event goes alone) and at most
// MaxEventsPerResponse events; every piece but the last has Fragment set.
func (r *Registry) fragments(resp Response) []Response {
	budget, maxEvs := r.cfg.ResponseBytes, r.cfg.MaxEventsPerResponse
	var out []Response
	evs := resp.Events
	start, size := 0, 0
	for i := range evs {
		sz := eventSize(&evs[i])
		if i > start && (size+sz > budget || (maxEvs > 0 && i-start >= maxEvs)) {
			f := resp
			f.Events, f.Caches, f.Fragment = evs[start:i], resp.Caches[start:i], true
			out = append(out, f)
			start, size = i, 0
		}
		size += sz
	}
	f := resp
	f.Events, f.Caches = evs[start:], resp.Caches[start:]
	return append(out, f)
}

// eventSize estimates an event's encoded size: keys and values plus 64 bytes per KeyValue.
func eventSize(ev *mvcc.Event) int {
	n := 64 + len(ev.KV.Key) + len(ev.KV.Value)
	if ev.PrevKV != nil {
		n += 64 + len(ev.PrevKV.Key) + len(ev.PrevKV.Value)
	}
	return n
}

// EventCache memoizes one event's encoding for the API layer. The registry gives every event it delivers a slot
// per form (with or without PrevKV), shared by all the responses that carry it, so that with thousands of
// watchers on one key the event is encoded once, not once per watcher. The value is the API layer's (for gRPC, the
// encoded bytes already wrapped as the transport wants them, so that nothing is converted per watcher either).
// Safe for concurrent use.
type EventCache struct {
	once sync.Once
	v    any
}

// Value returns the cached value, calling encode the first time. On a nil cache it just calls encode.
func (c *EventCache) Value(encode func() any) any {
	if c == nil {
		return encode()
	}
	c.once.Do(func() { c.v = encode() })
	return c.v
}

// eventCaches hands out the cache slots of one batch of n events, allocated per form on first use.
type eventCaches struct {
	n     int
	slots [2][]*EventCache // [0]: events without PrevKV, [1]: with
}

func (c *eventCaches) all(withPrevKV bool) []*EventCache {
	form := 0
	if withPrevKV {
		form = 1
	}
	if c.slots[form] == nil {
		arr := make([]EventCache, c.n)
		ptrs := make([]*EventCache, c.n)
		for i := range arr {
			ptrs[i] = &arr[i]
		}
		c.slots[form] = ptrs
	}
	return c.slots[form]
}

func (c *eventCaches) at(i int, withPrevKV bool) *EventCache { return c.all(withPrevKV)[i] }
