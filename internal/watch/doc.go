// Package watch is Cairn's watcher registry: the server side of etcd 3.7's Watch below the gRPC layer (etcd's
// storage/mvcc watchable store, watcher groups and watch streams, and the per-stream bookkeeping of
// etcdserver/api/v3rpc/watch.go).
//
// # What it owns
//
// Every watcher of every Watch stream: what it watches, the next revision it needs, whether it is synced
// (fed by Notify as revisions are applied) or unsynced (behind, fed from history by the sync goroutine), and
// each stream's bounded queue of responses. It owns no data: history comes from a Source (the server's view of
// its mvcc store), new events from Notify.
//
// # Entry points
//
//   - New(src, cfg) starts the registry's one goroutine; Stop stops it, waits for it and closes every stream.
//   - Registry.Notify(rev, evs): called by the applier after each applied batch. Never waits for a consumer.
//   - Registry.Restored(rev): called after a snapshot replaced the store; every watcher is caught up again from
//     the new store's history.
//   - Registry.NewStream, then Stream.Create, Cancel, RequestProgress, Close; the gRPC send loop drains
//     Stream.Responses and turns each Response into an etcd WatchResponse (Revision is the header revision).
//
// # Semantics (etcd 3.7's)
//
//   - Create puts a Created response (the watcher's id, the current revision) on the stream before any event of
//     the watcher. WatchID 0 asks for an automatic id (the lowest unused, counting from 0). A duplicate id, an
//     empty range (End set, not "\x00", and not after Key) or a negative StartRev get a Created+Canceled response
//     with WatchID -1 and etcd's error text as CancelReason. An empty Key means "\x00".
//   - StartRev 0, or above the current revision, makes a synced watcher that sees revisions from max(current+1,
//     StartRev). StartRev at or below the current revision makes an unsynced watcher, caught up from history
//     by the next sync pass; if that history was compacted (StartRev below the compaction revision; the
//     compaction revision itself is still readable, as in etcd) it gets a Canceled response with
//     CompactRevision and is removed.
//   - A watcher sees every event of its range, in revision order, exactly once: one response per applied batch
//     (Notify) or per history read (catch-up, at most 1000 revisions), cut at revision boundaries once a response
//     reaches Config.ResponseBytes, so one revision's events always share a response unless the watcher asked
//     for Fragment, in which case a response larger than ResponseBytes is split, every piece but the last with
//     Fragment set. NoPut and NoDelete filter; PrevKV attaches the previous key-value (without it PrevKV is nil).
//   - Cancel puts a Canceled response after the watcher's queued responses; an unknown id is ignored.
//   - Progress: every ProgressInterval each synced watcher that asked for ProgressNotify, got no event since the
//     previous tick and has reached its StartRev gets an empty response with the current revision (dropped if
//     the queue is full). RequestProgress puts one response with WatchID -1 when every watcher of the stream is
//     synced, and nothing otherwise (etcd 3.7's RequestProgressAll).
//
// # Never blocking, bounded memory
//
// Each stream has one queue of at most Config.MaxPending responses, pushed to only while holding the registry lock,
// never waiting; the stream's send loop takes the whole queue at once (Stream.Ready, Stream.Take), so a write that
// queues a response for each of a stream's watchers costs the send loop one wake-up. When Notify finds a stream's
// queue full, the watchers it was delivering to leave the synced index and join the unsynced list, remembering the
// first revision they missed; the response is dropped. The sync goroutine reads history for unsynced watchers whose
// stream has room (one read per distinct interval, outside the registry lock) and delivers it, every revision a
// watcher missed in one response (up to ResponseBytes), so a stream that fell behind costs fewer messages, not
// more; a watcher whose history is complete returns to the synced index. It runs such a pass as soon as there is
// work it can do: when the send loop takes the queue of a stream marked behind (Stream.Take), when a watcher is
// created at a past revision, and after Restored, but never more than half of the time (after a prompt pass it
// waits as long as the pass took, so that under overload Notify and the writes keep their share of the lock); the
// SyncInterval tick (etcd's only schedule, which makes a watcher that fell behind wait up to 100 ms) remains as the
// fallback. Responses that must not be lost (created, canceled, compacted, requested progress) go to the stream's
// backlog when the queue is full; while the backlog is not empty nothing else is queued for that stream, so order
// is kept; Create and Cancel wait while the backlog holds MaxPending responses. A slow stream therefore delays
// neither the applier nor other streams, and pins at most 2 x MaxPending responses: the queue and the batch its
// send loop is sending (see Config.MaxPending for the byte bound).
//
// # Data structures and cost
//
// Synced watchers are indexed by key (a map for single keys) and by interval (a treap of distinct intervals
// augmented with the largest end of each subtree), so Notify costs O(log n + m) per event for m matching
// watchers: a watcher that does not match is never looked at. A watcher that wants all of a batch without
// filters shares the batch's event slice (one slice without PrevKVs is built per batch for those that did not
// ask for them): 50,000 watchers of one key cost one channel send each and no allocation. Catch-up costs one
// Source.Events per distinct interval per pass (see mvcc.Store.Events for its cost).
//
// # Concurrency
//
// Registry.mu protects every watcher, stream and index field; channel sends happen under it, never blocking.
// Registry.syncMu serializes catch-up passes and is taken before mu; history is read holding syncMu only, so a
// Source may take locks that the applier holds while calling Notify. The only goroutine is the sync goroutine,
// started by New and stopped by Stop. Stream methods are safe for concurrent use.
//
// # Imports
//
// The standard library and internal/mvcc (for Event and the compaction error). No etcd or gRPC types: the API
// layer converts.
//
// # Testing
//
//	go test -race ./internal/watch/
//
// Tests drive time through Config.Ticks/ProgressTicks or call the catch-up pass directly; nothing sleeps.
// Table tests cover each behaviour above; a stalled-stream test notifies 10,000 revisions while one stream is
// never drained; a seeded randomized test (WATCH_SEED=<n> to rerun one, WATCH_STEPS for length) runs many
// watchers on random ranges with random start revisions, filters, slow consumers, cancels and compactions and
// compares what each received with a brute-force filter of every event. Benchmarks: Notify with 50,000
// watchers of one key and of 1,000 keys.
package watch
