// Package snap owns Cairn's snapshot files: the state-machine image raft
// asks for when it compacts its log, stored beside the WAL.
//
// # Entry points
//
//	New(fs, dir, logger)                  a Snapshotter for one directory
//	(*Snapshotter).Save(meta, write)      stream a snapshot to disk durably
//	(*Snapshotter).Load()                 newest snapshot that verifies
//	(*Snapshotter).LoadNewestAvailable(i) same, among those with Index <= i
//	(*Snapshotter).Purge(keep)            retention, and cleanup of *.tmp
//
// Save writes <term:016x>-<index:016x>.snap.tmp, fsyncs it, renames it to
// <term:016x>-<index:016x>.snap and fsyncs the directory, so a visible .snap
// file is always complete; a crash mid-Save leaves at most a .tmp, which Load
// ignores and Purge removes. The body is streamed through a 1 MiB buffer; it
// is never held in memory.
//
// Load verifies the whole file before returning a reader over the body. A
// file that fails verification is logged at Warn, renamed to *.broken (kept
// for the operator) and the next older snapshot tried; ErrNoSnapshot if none
// is left. The returned reader checks the checksum again as it streams and
// returns ErrCorrupt instead of io.EOF if the file changed after Load.
//
// # File format (version 1)
//
//	magic "CAIRNSNP" (8 bytes)
//	u32 version (1)
//	u32 meta length M
//	meta (M bytes): u64 index, u64 term, raftpb.ConfState (protobuf)
//	body (any length): the bytes the write function produced
//	u64 body length
//	u32 CRC-32C (Castagnoli) of every byte before it
//
// Integers are little endian. The index and term in the header must match
// the file name.
//
// # Testing
//
//	go test -race ./internal/storage/snap/
//	go test -fuzz FuzzLoad -fuzztime 20s ./internal/storage/snap/
//
// Tests use vfs.MemFS, including simulated crashes during Save.
package snap
