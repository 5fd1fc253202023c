// Package mvcc is Cairn's multi-version key-value store: an in-memory, deterministic state machine with the
// semantics of etcd 3.7's storage/mvcc and etcdserver/txn packages.
//
// # What it owns
//
// The key space and its history: for every key, the versions still needed by reads at revisions at or above the
// compaction revision; the current revision (1 for an empty store, plus one per txn that writes); the compaction
// revision. It owns no leases (a LeaseChecker answers "does lease N exist") and no watchers (Txn returns the
// events it made, in order, for the caller to fan out).
//
// # Entry points
//
//   - New, Restore: make a store.
//   - Store.Txn: the only write. Put and Delete are a TxnRequest with no compares and one success op.
//   - Store.Range: reads at any retained revision.
//   - Store.Compact: drops history below a revision.
//   - Store.Hash, Store.HashKV: consistency checks between replicas.
//   - Store.Events: the history of a key range between two revisions, in txn order (watch catch-up).
//   - Store.Clone, Store.WriteTo: snapshots; Clone is O(1) copy-on-write.
//   - ValidateTxn, ValidatePut, ValidateRange, ValidateDelete: the stateless request checks of etcd's gRPC layer,
//     to run before proposing.
//
// Errors are sentinels declared in errors.go with etcd's texts; test them with errors.Is.
//
// # Determinism and concurrency
//
// No I/O except the io.Reader/io.Writer given to WriteTo and Restore, no goroutines, no clock, no randomness, no
// dependence on map iteration order: the same calls give the same state and the same hashes on every replica.
// A Store is not safe for concurrent use: the caller serializes Txn, Compact and Clone, and may run the read-only
// methods concurrently with each other only under a sync.RWMutex (reads under RLock, writes under Lock). A
// Clone shares nothing mutable with its origin and can be read or serialized in another goroutine without the
// lock.
//
// # Data structure
//
// A github.com/google/btree BTreeG ordered by key holds one entry per key with its versions oldest first. A read
// at the current revision takes the last version (O(1) per key); a read at an older revision binary-searches the
// key's versions. A write to one key is O(log n). Clone clones the B-tree (copy-on-write nodes) and renews the
// store's ownership token: an entry created under another token is copied before it is appended to, so a clone
// never sees a later write.
//
// # Semantics worth knowing (all from etcd 3.7)
//
//   - Compares, including those of nested txns on the chosen path, see the state before the txn; ops see the
//     writes of the ops before them. Ops are checked (leases, IgnoreValue/IgnoreLease, range revisions) before
//     anything is written, so a failing txn has no effect.
//   - A range inside a txn at a revision above the pre-txn revision fails with ErrFutureRev; below the
//     compaction revision with ErrCompacted, the same way on every replica.
//   - Range: Count counts the keys in the interval at that revision and ignores Limit and revision filters;
//     sorting by anything other than key ascending, or filtering, fetches everything before Limit is applied;
//     KeysOnly also zeroes Lease unless sorting by value (etcd serves such reads from its index).
//   - Compaction keeps per key the newest version at or below the compaction revision, drops a tombstone below it
//     and keeps one exactly at it.
//
// # Snapshot format
//
// WriteTo writes a versioned, checksummed format described in snapshot.go (magic "CAIRNMVC", format version 1,
// CRC-32C trailer); Restore rejects other versions, truncation, bad checksums and inconsistent content.
//
// # Imports
//
// Only the standard library and github.com/google/btree. Not etcd's protobuf types: the API layer converts.
//
// # Testing
//
//	go test -race ./internal/mvcc/
//
// Table tests cover each behaviour and error; model_test.go drives a seeded random stream of txns, ranges at
// random revisions, compactions, clones and snapshot round trips against a naive model (a full map per
// revision) and prints its seed: rerun one with MVCC_SEED=<seed> (and MVCC_STEPS=<n> for a longer run).
// FuzzRestore feeds Restore garbage and mutated snapshots; benchmarks cover Txn(put) and Range.
package mvcc
