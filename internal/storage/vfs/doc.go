// Package vfs is Cairn's file-system seam. Everything durable (the WAL, the
// snapshot files, the data-directory lock) goes through the FS interface so
// that tests can swap the operating system for a strict in-memory file system
// and simulate power loss and I/O faults deterministically.
//
// # Entry points
//
//   - OS() is the real file system. File.Sync is fdatasync on Linux;
//     FS.SyncDir fsyncs a directory; FS.Lock takes a non-blocking flock.
//   - NewMem() returns a *MemFS: strict, in memory. Each file keeps the
//     content it had at its last Sync, each directory the entries it had at
//     its last SyncDir. MemFS.Crash reverts to exactly that durable state
//     (unsynced writes vanish; a created-and-synced file whose directory was
//     never synced vanishes; an unsynced rename or remove is undone), drops
//     all locks and kills every open handle (ErrCrashed).
//   - NewErrorFS(fs, sleep) wraps any FS with injectable faults: failing
//     Sync/SyncDir with a given error, ENOSPC after N more written bytes, and
//     slow syncs through an injected sleep function. It also counts Sync and
//     Write calls so tests can assert group commit.
//   - Preallocate(f, size) reserves space (fallocate on Linux, Truncate
//     elsewhere); MkdirAllSync creates directories and makes them durable.
//
// # Rules for users
//
// A write is durable only after File.Sync; a create, rename or remove only
// after SyncDir on the parent directory. Code that must survive a crash does
// write-to-temp, Sync, Rename, SyncDir. MemFS enforces exactly this, so a
// test that calls Crash checks the real crash contract.
//
// This package imports only the standard library and golang.org/x/sys/unix.
//
// # Testing
//
//	go test -race ./internal/storage/vfs/
//
// The MemFS model test is randomized; its seed is logged and can be fixed
// with VFS_SEED=<n>.
package vfs
