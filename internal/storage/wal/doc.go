// Package wal is Cairn's write-ahead log: the durable record of raft's
// HardState and log entries (go.etcd.io/raft/v3, raftpb types), plus markers
// naming the snapshot the log continues from.
//
// # Entry points
//
//	Create(fs, dir, metadata, opts)  new WAL; dir must not hold one
//	Open(fs, dir, opts)              recover: (*WAL, *State, error)
//	(*WAL).Save(hs, ents, sync)      group commit: one write, at most one fsync
//	(*WAL).SaveSnapshot(marker)      append a snapshot marker, fsync
//	(*WAL).ReleaseTo(index, keep)    delete old segments covered by a snapshot
//	(*WAL).Close()
//
// The raft Ready loop saves the snapshot marker (if any) first, then
// Save(rd.HardState, rd.Entries, rd.MustSync), and sends messages only after
// Save returns. A WAL holds an exclusive lock on <dir>/wal.lock while open.
//
// # Directory and segments
//
// The log is a sequence of segment files <seq:016x>-<first:016x>.wal, seq
// counting up by one from the oldest kept segment and first being the index
// the next entry had when the segment was cut (no live entry of an older
// segment is >= first). Each segment is preallocated to Options.SegmentSize
// (default 64 MiB); the zero-filled space after the last record is the normal
// end of the log. A new segment is built as <name>.tmp (header block written,
// preallocated, fsynced), renamed into place and the directory fsynced, and
// the previous segment is fsynced before that: only the last segment can
// ever hold unsynced data. Stale *.wal.tmp files are removed by Open.
//
// # Record format (version 1)
//
// Every record is
//
//	[u32 length][u32 crc][u8 type][payload][zero padding to a multiple of 8]
//
// little endian; length counts type+payload (so a valid record has length
// >= 1 and an all-zero header means end of log); crc is CRC-32C (Castagnoli)
// over type+payload. A record longer than 1 GiB is invalid. Types:
//
//	1 segment    magic "CAIRNWAL", u32 version (1), u32 reserved, u64 seq,
//	             u64 first — always the first record of a segment, and must
//	             match the file name
//	2 metadata   opaque bytes given at Create; identical in every segment
//	3 entry      raftpb.Entry, protobuf encoded
//	4 hardstate  raftpb.HardState, protobuf encoded
//	5 snapshot   u64 index, u64 term: the log continues from this snapshot
//
// Each segment starts with a header block: segment, metadata, snapshot (the
// latest marker) and hardstate (the latest, if any), so any suffix of
// segments is self-describing once older ones are released.
//
// # Recovery rules (Open)
//
// Records are replayed in order: the latest hardstate and marker win; an
// entry with an index at or below the last one replaces that index and drops
// everything after it; entries must otherwise be contiguous (the first entry
// read may start anywhere, as older segments may have been released), and
// the result must continue from the marker (Entries[0].Index ==
// Snapshot.Index+1). Damage is classified as follows:
//
//   - In a sealed (non-last) segment any invalid record, or any non-zero
//     byte after the last record, is ErrCorrupt.
//   - In the last segment, an invalid record (bad length, crc, padding or
//     type) or non-zero bytes after the last valid record, followed by no
//     valid record at any later 8-byte-aligned offset, is a torn tail: it is
//     cut off, the rest of the preallocated space re-zeroed and fsynced, and
//     a Warn logged. If a valid record follows, it is ErrCorrupt: records
//     before the tail are never dropped silently.
//   - A record whose crc holds but whose payload does not decode, a
//     misplaced segment header, mismatched metadata, an index gap or a
//     missing segment is ErrCorrupt.
//
// Corruption errors are *CorruptError values naming the file and byte offset
// ("wal: corrupt record in 0000000000000003-0000000000000101.wal at offset
// 1234: crc mismatch"). Known limits: damage to the very last record of the
// log is indistinguishable from a torn write and is repaired (it was the
// newest write); on a real disk, a crash that persists a later page of an
// unsynced write but not an earlier one surfaces as ErrCorrupt rather than
// being repaired (fail-stop, never silent loss).
//
// # Errors
//
// A failed write or fsync is sticky: that call returns the error and every
// later Save/SaveSnapshot returns ErrFailed wrapping it; the process is
// expected to stop and recover with Open. ErrOutOfOrder and ErrTooLarge
// reject a call without writing anything.
//
// # Testing
//
//	go test -race ./internal/storage/wal/
//	go test -run '^$' -bench . ./internal/storage/wal/
//	go test -fuzz FuzzOpen -fuzztime 20s ./internal/storage/wal/
//
// Tests run on vfs.MemFS (crash simulation) and vfs.ErrorFS (fault
// injection). The randomized crash test logs its seed; set WAL_SEED=<n> to
// replay it.
package wal
