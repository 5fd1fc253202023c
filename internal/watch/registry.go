package watch

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cairn-db/cairn/internal/mvcc"
)

// Source is the history a Registry catches watchers up from. The server implements it over its mvcc store, with
// its own locking; a Registry never calls it while holding its own lock, so Source may take locks that the
// applier holds while it calls Notify.
type Source interface {
	// Events is mvcc.Store.Events. A compacted window must fail with an error for which
	// errors.Is(err, mvcc.ErrCompacted) holds; a *mvcc.CompactedError (what the store returns) also tells the
	// compaction revision for the cancel response (otherwise a Source may implement CompactRev() int64).
	Events(key, end []byte, from, to int64, prevKV bool, limit int) ([]mvcc.Event, bool, error)
	// Rev is the store's current revision; New reads it once, as the revision the registry starts at.
	Rev() int64
}

// compactRever is an optional Source method, used when an ErrCompacted does not carry its revision.
type compactRever interface{ CompactRev() int64 }

const (
	// maxWatchersPerSync bounds the watchers one catch-up pass reads history for (etcd's value).
	maxWatchersPerSync = 512
	// maxRevsPerSync bounds the revisions one history read returns (etcd's watchBatchMaxRevs).
	maxRevsPerSync = 1000
	// maxPassesPerTick bounds the catch-up passes run back to back on one tick while they make progress.
	maxPassesPerTick = 100
)

type wstate uint8

const (
	stateSynced   wstate = iota + 1 // in the index: Notify delivers to it
	stateUnsynced                   // in the unsynced list: the sync goroutine catches it up from minRev
	stateGone                       // canceled, compacted or its stream closed
)

// watcher is one watch of a stream. Every field is protected by the Registry's mu.
type watcher struct {
	s        *Stream
	id       int64
	key, end []byte // end nil: the single key (unless gte)
	gte      bool   // every key >= key
	prevKV   bool
	progress bool
	noPut    bool
	noDelete bool
	fragment bool
	startRev int64

	// minRev is the lowest revision not yet delivered: events below it are never sent again. For a synced
	// watcher it may lag (it is only raised when events are delivered); for an unsynced one it is exact.
	minRev int64
	state  wstate
	slot   int // position in the wset holding it
	pslot  int // position in Registry.progress (if progress)

	sentSinceProgress bool // events were sent since the last progress tick (elides the next notification)

	// Notify's scratch: indexes into the notified events, and whether the watcher is on Notify's touched list.
	batch   []int32
	touched bool
}

func (w *watcher) single() bool { return w.end == nil && !w.gte }

func (w *watcher) interval() ivl {
	if w.gte {
		return ivl{lo: string(w.key), hi: bound{inf: true}}
	}
	return ivl{lo: string(w.key), hi: bound{key: string(w.end)}}
}

// srcEnd is the range end in mvcc's convention.
func (w *watcher) srcEnd() []byte {
	if w.gte {
		return []byte{0}
	}
	return w.end
}

func (w *watcher) filtered(ev *mvcc.Event) bool {
	return (w.noPut && ev.Type == mvcc.EventPut) || (w.noDelete && ev.Type == mvcc.EventDelete)
}

// Registry is the set of watchers of one server. See the package documentation.
type Registry struct {
	src Source
	cfg Config
	log *slog.Logger

	stopOnce sync.Once
	stopc    chan struct{}
	done     chan struct{}
	// kick (capacity 1) asks the sync goroutine for a catch-up pass now; nil when Config.Ticks is set.
	kick chan struct{}

	// syncMu serializes catch-up passes; taken before mu, held across the unlocked history reads so that two
	// passes never catch the same watcher up twice.
	syncMu sync.Mutex

	mu         sync.Mutex // protects the fields below and every watcher and stream field
	backlogc   *sync.Cond // on mu: a backlog shrank or a stream closed
	rev        int64      // the last revision notified: every event up to it has been through Notify
	synced     *index
	unsynced   wset
	progress   []*watcher // watchers that asked for progress notifications, each knowing its pslot
	streams    map[*Stream]struct{}
	backlogged map[*Stream]struct{} // streams with a non-empty backlog
	stopped    bool
	touched    []*watcher // Notify's scratch
	// queuedAt is when the responses being made were queued: nanoseconds since start, plus 1 (0 = unknown).
	queuedAt int64
	start    time.Time
}

// New returns a registry at src.Rev() and starts its one goroutine, which runs catch-up passes on
// Config.Ticks (or every SyncInterval) and progress notifications on ProgressTicks (or every ProgressInterval).
// Stop stops it.
func New(src Source, cfg Config) *Registry {
	cfg = cfg.withDefaults()
	r := &Registry{
		src:        src,
		cfg:        cfg,
		log:        cfg.Logger,
		stopc:      make(chan struct{}),
		done:       make(chan struct{}),
		rev:        src.Rev(),
		synced:     newIndex(),
		streams:    make(map[*Stream]struct{}),
		backlogged: make(map[*Stream]struct{}),
		start:      time.Now(),
	}
	r.backlogc = sync.NewCond(&r.mu)
	ticks, pticks := cfg.Ticks, cfg.ProgressTicks
	var stops []func()
	if ticks == nil {
		t := time.NewTicker(cfg.SyncInterval)
		ticks, stops = t.C, append(stops, t.Stop)
		r.kick = make(chan struct{}, 1)
	}
	if pticks == nil {
		t := time.NewTicker(cfg.ProgressInterval)
		pticks, stops = t.C, append(stops, t.Stop)
	}
	go r.run(ticks, pticks, stops)
	return r
}

func (r *Registry) run(ticks, pticks <-chan time.Time, stops []func()) {
	defer close(r.done)
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	for {
		select {
		case <-r.stopc:
			return
		case <-ticks:
			r.syncAll()
		case <-r.kick:
			start := time.Now()
			r.syncAll()
			// Prompt passes take at most half of the registry's time: after one, the applier and the send loops
			// have it for at least as long before the next. When every core is busy and thousands of watchers are
			// behind, back-to-back passes would hold mu and the store's read lock against Notify and the writes.
			if !r.pause(time.Since(start)) {
				return
			}
		case <-pticks:
			r.progressTick()
		}
	}
}

// pause waits d, or until Stop; false on Stop.
func (r *Registry) pause(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopc:
		return false
	}
}

// kickSync asks for a catch-up pass as soon as the sync goroutine is free; it never waits.
func (r *Registry) kickSync() {
	if r.kick == nil {
		return
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// behindLocked records that s has work for a catch-up pass (watchers behind, or a backlog) that its queue has no
// room for now: the send loop's next Take asks for the pass. If the queue has room already (it was taken between
// the caller finding it full and now), the pass is asked for here, so the wake-up is never lost.
func (r *Registry) behindLocked(s *Stream) {
	s.behind.Store(true)
	if s.q.room() > 0 && s.behind.CompareAndSwap(true, false) {
		r.kickSync()
	}
}

// Stop stops the goroutine, waits for it, and closes every stream (their Responses channels close). Notify may
// still be called after Stop; it delivers to nothing. Stop is idempotent.
func (r *Registry) Stop() {
	r.stopOnce.Do(func() { close(r.stopc) })
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for s := range r.streams {
		r.closeStreamLocked(s)
	}
}

// Rev returns the last revision notified.
func (r *Registry) Rev() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rev
}

// Notify hands the registry the events of the revisions just applied, in order (all of (previous rev, rev]),
// and the new current revision. It never waits for a consumer: a watcher whose stream has no room is moved to
// the unsynced list, remembering the first revision it missed, and is caught up from history later. Cost:
// O(log n + m) per event for m matching watchers among n watched intervals, plus one allocation per response.
//
// Notify takes ownership of evs: responses may share the slice (and its KeyValues) with every watcher that
// wants all of it, so neither the caller nor a consumer may modify them. Call it from one goroutine (the
// applier), in revision order.
func (r *Registry) Notify(rev int64, evs []mvcc.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stampLocked()
	seen := r.rev // events at or below it were notified before (or predate the registry)
	r.rev = max(r.rev, rev)
	if r.synced.n == 0 || len(evs) == 0 {
		return
	}
	for i := range evs {
		mod := evs[i].KV.ModRevision
		if mod <= seen {
			continue
		}
		r.synced.each(evs[i].KV.Key, func(w *watcher) {
			if mod < w.minRev {
				return
			}
			if !w.touched {
				w.touched = true
				r.touched = append(r.touched, w)
			}
			w.batch = append(w.batch, int32(i))
		})
	}
	var stripped []mvcc.Event // evs without PrevKV, built once for every watcher that wants all of evs
	caches := eventCaches{n: len(evs)}
	for _, w := range r.touched {
		w.touched = false
		var out []mvcc.Event
		var cs []*EventCache
		if len(w.batch) == len(evs) && !w.noPut && !w.noDelete {
			if w.prevKV {
				out = evs
			} else {
				if stripped == nil {
					stripped = make([]mvcc.Event, len(evs))
					for i, ev := range evs {
						ev.PrevKV = nil
						stripped[i] = ev
					}
				}
				out = stripped
			}
			cs = caches.all(w.prevKV)
		} else {
			out, cs = r.selectEvents(w, evs, w.batch, &caches)
		}
		w.batch = w.batch[:0]
		if len(out) == 0 {
			w.minRev = max(w.minRev, rev+1)
			continue
		}
		if ok, missed := r.sendEventsLocked(w, out, cs, rev); !ok {
			r.unsyncLocked(w, missed)
			if r.cfg.CountFellBehind != nil {
				r.cfg.CountFellBehind()
			}
			continue
		}
		w.minRev = max(w.minRev, rev+1)
	}
	clear(r.touched)
	r.touched = r.touched[:0]
}

// stampLocked records when the responses made next are queued (see Stream.Sent).
func (r *Registry) stampLocked() { r.queuedAt = int64(time.Since(r.start)) + 1 }

// selectEvents returns a new slice of evs[idx...] filtered and stripped for w, with their cache slots.
func (r *Registry) selectEvents(w *watcher, evs []mvcc.Event, idx []int32, caches *eventCaches) ([]mvcc.Event, []*EventCache) {
	out := make([]mvcc.Event, 0, len(idx))
	cs := make([]*EventCache, 0, len(idx))
	for _, i := range idx {
		ev := evs[i]
		if w.filtered(&ev) {
			continue
		}
		if !w.prevKV {
			ev.PrevKV = nil
		}
		out = append(out, ev)
		cs = append(cs, caches.at(int(i), w.prevKV))
	}
	return out, cs
}

// Restored tells the registry that the store was replaced (a snapshot was installed) and is now at rev. Every
// synced watcher is moved to the unsynced list from the first revision it has not seen, and is caught up from
// the new store's history (or canceled as compacted if that history is gone), as etcd does on restore.
func (r *Registry) Restored(rev int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ws []*watcher
	r.synced.all(func(w *watcher) { ws = append(ws, w) })
	for _, w := range ws {
		r.unsyncLocked(w, max(w.minRev, r.rev+1))
	}
	r.rev = max(r.rev, rev)
}

// unsyncLocked moves a synced watcher to the unsynced list; from is the first revision it has not received.
func (r *Registry) unsyncLocked(w *watcher, from int64) {
	r.synced.remove(w)
	w.minRev = from
	w.state = stateUnsynced
	r.unsynced.add(w)
	r.behindLocked(w.s)
}

// addLocked registers a new watcher, synced or not.
func (r *Registry) addLocked(w *watcher) {
	if w.startRev == 0 || w.startRev > r.rev {
		w.minRev = max(r.rev+1, w.startRev)
		w.state = stateSynced
		r.synced.add(w)
	} else {
		w.minRev = w.startRev
		w.state = stateUnsynced
		r.unsynced.add(w)
		r.behindLocked(w.s)
	}
	if w.progress {
		w.pslot = len(r.progress)
		r.progress = append(r.progress, w)
	}
	w.s.watchers[w.id] = w
}

// removeLocked forgets a watcher.
func (r *Registry) removeLocked(w *watcher) {
	switch w.state {
	case stateSynced:
		r.synced.remove(w)
	case stateUnsynced:
		r.unsynced.remove(w)
	}
	w.state = stateGone
	if w.progress {
		last := r.progress[len(r.progress)-1]
		r.progress[w.pslot], last.pslot = last, w.pslot
		r.progress[len(r.progress)-1] = nil
		r.progress = r.progress[:len(r.progress)-1]
	}
	delete(w.s.watchers, w.id)
}

// syncAll runs catch-up passes while they make progress.
func (r *Registry) syncAll() {
	for range maxPassesPerTick {
		progressed, remaining := r.syncPass()
		if !progressed || remaining == 0 {
			return
		}
	}
}

// syncGroup is one history read shared by unsynced watchers of one interval.
type syncGroup struct {
	key, end []byte
	from     int64
	prevKV   bool
	ws       []member
	evs      []mvcc.Event
	caches   eventCaches // of evs, shared by the group's watchers
	more     bool
	err      error
	// tails memoizes, per starting index and form (with or without PrevKV), the events from there on with their
	// cache slots, shared by every unfiltered watcher of the group that needs them (read-only, like Notify's).
	tails map[tailKey]tail
}

type tailKey struct {
	first  int
	prevKV bool
}

type tail struct {
	evs []mvcc.Event
	cs  []*EventCache
}

// member is a watcher of a syncGroup with its minRev as of the pass's start (only the pass changes it).
type member struct {
	w      *watcher
	minRev int64
}

func (g *syncGroup) add(m member) {
	if len(g.ws) == 0 || m.minRev < g.from {
		g.from = m.minRev
	}
	g.prevKV = g.prevKV || m.w.prevKV
	g.ws = append(g.ws, m)
}

type groupKey struct {
	key, end string
	gte      bool
}

// syncPass catches up to maxWatchersPerSync unsynced watchers whose streams have room: it reads their history
// without holding mu, then delivers. It reports whether any watcher advanced and how many remain unsynced.
func (r *Registry) syncPass() (progressed bool, remaining int) {
	r.syncMu.Lock()
	defer r.syncMu.Unlock()

	r.mu.Lock()
	for s := range r.backlogged {
		r.flushLocked(s)
	}
	to := r.rev
	groups := make(map[groupKey]*syncGroup)
	var order []*syncGroup
	chosen := 0
	room := make(map[*Stream]int) // queue slots left per stream: choose no more watchers than can be served
	for _, w := range r.unsynced.ws {
		if chosen == maxWatchersPerSync {
			break
		}
		left, ok := room[w.s]
		if !ok {
			// Mark the stream before looking at its room, so that a Take from now on asks for another pass; if
			// there is room, this pass serves the stream and the mark goes (only Take clears it meanwhile).
			w.s.behind.Store(true)
			if w.s.hasRoomLocked() {
				left = w.s.q.room()
				w.s.behind.Store(false)
			}
		}
		if left == 0 {
			w.s.behind.Store(true) // this pass fills the queue: the next Take asks for another
			room[w.s] = 0
			continue
		}
		room[w.s] = left - 1
		chosen++
		gk := groupKey{string(w.key), string(w.end), w.gte}
		g := groups[gk]
		if g == nil {
			g = &syncGroup{key: w.key, end: w.srcEnd()}
			groups[gk] = g
			order = append(order, g)
		}
		g.add(member{w, w.minRev})
	}
	r.mu.Unlock()
	if len(order) == 0 {
		return false, 0
	}

	for i := 0; i < len(order); i++ { // order grows when a compacted read is split
		g := order[i]
		g.evs, g.more, g.err = r.src.Events(g.key, g.end, g.from, to, g.prevKV, maxRevsPerSync)
		g.caches = eventCaches{n: len(g.evs)}
		if !errors.Is(g.err, mvcc.ErrCompacted) || len(g.ws) < 2 {
			continue
		}
		// The group's oldest watcher is compacted; the others may not be. Read again for those at or above the
		// compaction revision (or, if it is unknown, for each watcher alone).
		crev := r.knownCompactRev(g.err)
		var rest []member
		var split []*syncGroup
		for _, m := range g.ws {
			switch {
			case m.minRev == g.from || (crev > 0 && m.minRev < crev):
				rest = append(rest, m)
			case crev > 0:
				if len(split) == 0 {
					split = append(split, &syncGroup{key: g.key, end: g.end})
				}
				split[0].add(m)
			default:
				ng := &syncGroup{key: g.key, end: g.end}
				ng.add(m)
				split = append(split, ng)
			}
		}
		g.ws = rest
		order = append(order, split...)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.stampLocked()
	for _, g := range order {
		for _, m := range g.ws {
			if m.w.state == stateUnsynced && r.catchUpLocked(m.w, g, to) {
				progressed = true
			}
		}
	}
	return progressed, r.unsynced.len()
}

// catchUpLocked delivers to w what g read for it (events in [w.minRev, to]), or cancels it if its history was
// compacted. It reports whether w advanced.
func (r *Registry) catchUpLocked(w *watcher, g *syncGroup, to int64) bool {
	if g.err != nil {
		if !errors.Is(g.err, mvcc.ErrCompacted) {
			r.log.Warn("watch: history read failed", "watch_id", w.id, "from", g.from, "to", to, "err", g.err)
			return false
		}
		crev := r.compactRev(g.err, w)
		r.log.Info("watch: canceled, history compacted", "watch_id", w.id, "min_rev", w.minRev, "compact_rev", crev)
		r.removeLocked(w)
		r.sendCtrlLocked(w.s, Response{WatchID: w.id, Canceled: true, CompactRevision: crev, Revision: r.rev})
		return true
	}
	next := to + 1
	if g.more {
		next = g.evs[len(g.evs)-1].KV.ModRevision + 1
	}
	if next <= w.minRev {
		return false
	}
	first := sort.Search(len(g.evs), func(i int) bool { return g.evs[i].KV.ModRevision >= w.minRev })
	out, cs := g.eventsFor(w, first)
	if len(out) > 0 {
		if ok, missed := r.sendEventsLocked(w, out, cs, to); !ok {
			r.behindLocked(w.s)
			if missed > w.minRev {
				w.minRev = missed
				return true
			}
			return false
		}
	}
	w.minRev = next
	if w.minRev > r.rev {
		r.unsynced.remove(w)
		w.state = stateSynced
		r.synced.add(w)
	}
	return true
}

// eventsFor returns g's events from index first on as w wants them (filtered, PrevKV kept or stripped) with their
// cache slots. Watchers without filters share one slice per starting index and form: a stream's hundred watchers
// of one key that fell behind together cost one slice, not a hundred.
func (g *syncGroup) eventsFor(w *watcher, first int) ([]mvcc.Event, []*EventCache) {
	shared := !w.noPut && !w.noDelete
	tk := tailKey{first, w.prevKV}
	if shared {
		if t, ok := g.tails[tk]; ok {
			return t.evs, t.cs
		}
	}
	out := make([]mvcc.Event, 0, len(g.evs)-first)
	cs := make([]*EventCache, 0, len(g.evs)-first)
	for i := first; i < len(g.evs); i++ {
		ev := g.evs[i]
		if w.filtered(&ev) {
			continue
		}
		if !w.prevKV {
			ev.PrevKV = nil
		}
		out = append(out, ev)
		cs = append(cs, g.caches.at(i, w.prevKV))
	}
	if shared {
		if g.tails == nil {
			g.tails = make(map[tailKey]tail)
		}
		g.tails[tk] = tail{out, cs}
	}
	return out, cs
}

// knownCompactRev is the compaction revision behind a compacted read, 0 if the Source does not tell.
func (r *Registry) knownCompactRev(err error) int64 {
	var ce *mvcc.CompactedError
	if errors.As(err, &ce) && ce.CompactRev > 0 {
		return ce.CompactRev
	}
	if c, ok := r.src.(compactRever); ok {
		return max(c.CompactRev(), 0)
	}
	return 0
}

func (r *Registry) compactRev(err error, w *watcher) int64 {
	if rev := r.knownCompactRev(err); rev > 0 {
		return rev
	}
	return w.minRev // a non-zero placeholder: the cancel must carry a CompactRevision
}

// progressTick sends a progress notification to every synced watcher that asked for them and got no events
// since the previous tick (etcd elides the notification then), if its start revision has been reached. A
// notification that finds no room is dropped, like etcd's.
func (r *Registry) progressTick() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.progress {
		if w.state == stateSynced && !w.sentSinceProgress && r.rev >= w.startRev {
			r.trySendLocked(w.s, Response{WatchID: w.id, Revision: r.rev, ProgressNotify: true})
		}
		w.sentSinceProgress = false
	}
}
