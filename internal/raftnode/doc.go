// Package raftnode is the only importer of go.etcd.io/raft/v3. It owns the raft
// node, its in-memory log (raft.MemoryStorage), the write-ahead log and the
// snapshot files, and runs the one goroutine that drives raft.
//
// # The Ready loop
//
// One goroutine (Node.run) owns raft. For every raft.Ready it does, in order:
//
//  1. Persist: a snapshot received from the leader is written to a snapshot
//     file and marked in the WAL; then the HardState and the new entries are
//     appended to the WAL with ONE fsync when Ready.MustSync (group commit);
//     then they are appended to the in-memory raft log. A persistence error is
//     fatal: the node stops and reports it on Errors(); it never carries on
//     after a failed fsync.
//  2. Send: outgoing messages go to the Transport, which never blocks. No
//     message leaves before the state it depends on is durable.
//  3. Apply: committed entries (and a received snapshot) are handed, in order,
//     to the applier over the channel returned by Apply(). The applier runs in
//     its own goroutine, so raft keeps replicating while it applies.
//  4. Advance.
//
// Ticks come from an injected ticker channel (a time.Ticker in production, a
// manual channel in tests). ReadIndex results are delivered on ReadStates().
//
// Snapshots: the applier serializes its state (from a copy-on-write clone, off
// the apply path) and calls CreateSnapshot, which writes the snapshot file,
// marks it in the WAL, compacts the in-memory log keeping CatchUpEntries for
// slow followers, and releases old WAL segments and snapshot files.
//
// Imports: raft, internal/storage/{vfs,wal,snap}. Nothing above it.
package raftnode
