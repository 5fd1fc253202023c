package raftnode

import (
	"fmt"
	"io"
	"log/slog"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/storage/snap"
	"github.com/cairn-db/cairn/internal/storage/vfs"
	"github.com/cairn-db/cairn/internal/storage/wal"
)

// SeedConfig describes the data dir of a member of a new cluster that
// starts from existing state (a restored backup).
type SeedConfig struct {
	FS              vfs.FS
	WALDir, SnapDir string
	Metadata        []byte // the WAL's metadata, as Start's Config.Metadata
	// Voters are the new cluster's members: every member is seeded with the
	// same snapshot, at index 1 of term 1, whose configuration they are.
	Voters []uint64
	// Write streams the state into the snapshot file.
	Write func(io.Writer) error
}

// Seed writes a snapshot file and a WAL that starts from it, so that Start
// restarts raft from that snapshot. Every member of the new cluster must be
// seeded with the same state and voters.
func Seed(cfg SeedConfig) error {
	if wal.Exists(cfg.FS, cfg.WALDir) {
		return fmt.Errorf("%s already holds a WAL: restore into an empty data dir", cfg.WALDir)
	}
	if err := vfs.MkdirAllSync(cfg.FS, cfg.SnapDir, 0o700); err != nil {
		return fmt.Errorf("create snapshot dir %s: %w", cfg.SnapDir, err)
	}
	const index, term = 1, 1
	meta := snap.Meta{Index: index, Term: term, ConfState: &raftpb.ConfState{Voters: cfg.Voters}}
	if err := snap.New(cfg.FS, cfg.SnapDir, slog.New(slog.DiscardHandler)).Save(meta, cfg.Write); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	w, err := wal.Create(cfg.FS, cfg.WALDir, cfg.Metadata, wal.Options{})
	if err != nil {
		return fmt.Errorf("create wal: %w", err)
	}
	if err := w.SaveSnapshot(wal.Marker{Index: index, Term: term}); err != nil {
		w.Close()
		return fmt.Errorf("mark snapshot in wal: %w", err)
	}
	hs := &raftpb.HardState{Term: proto.Uint64(term), Commit: proto.Uint64(index)}
	if err := w.Save(hs, nil, true); err != nil {
		w.Close()
		return fmt.Errorf("save hard state: %w", err)
	}
	return w.Close()
}
