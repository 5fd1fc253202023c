package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"path/filepath"

	"github.com/cairn-db/cairn/internal/raftnode"
	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// RestoreConfig says where and as which member of which new cluster a
// backup is restored (`cairn snapshot restore`, like `etcdutl snapshot
// restore`).
type RestoreConfig struct {
	DataDir             string
	Name                string
	InitialCluster      map[string][]url.URL
	InitialClusterToken string
}

// Restore builds the data dir of member cfg.Name of a new cluster whose
// state is the backup's: the same keys, history, revision and leases, and
// cfg.InitialCluster as its members. Every member of the new cluster is
// restored from the same backup with the same cluster flags; they then
// start with `cairn serve` (the --initial-cluster* flags are ignored for a
// data dir that exists).
func Restore(cfg RestoreConfig, backup []byte, fs vfs.FS) (server.BackupInfo, error) {
	info, state, err := server.ReadBackup(backup)
	if err != nil {
		return info, err
	}
	if _, ok := cfg.InitialCluster[cfg.Name]; !ok {
		return info, fmt.Errorf("--name %q is not in --initial-cluster", cfg.Name)
	}
	members, id := initialMembers(cfg.InitialCluster, cfg.InitialClusterToken, cfg.Name)
	newState, err := server.RestoredState(state, members)
	if err != nil {
		return info, fmt.Errorf("backup state: %w", err)
	}
	memberDir := filepath.Join(cfg.DataDir, "member")
	idPath := filepath.Join(memberDir, "identity.json")
	if _, err := readFile(fs, idPath); err == nil {
		return info, fmt.Errorf("data dir %s already belongs to a member: restore into a new, empty --data-dir", cfg.DataDir)
	}
	if err := vfs.MkdirAllSync(fs, memberDir, 0o700); err != nil {
		return info, fmt.Errorf("cannot create data dir %s: %w", cfg.DataDir, err)
	}
	metadata, _ := json.Marshal(id)
	ids := make([]uint64, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	err = raftnode.Seed(raftnode.SeedConfig{
		FS: fs, WALDir: filepath.Join(memberDir, "wal"), SnapDir: filepath.Join(memberDir, "snap"),
		Metadata: metadata, Voters: ids,
		Write: func(w io.Writer) error { _, err := io.Copy(w, bytes.NewReader(newState)); return err },
	})
	if err != nil {
		return info, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	b, _ := json.MarshalIndent(id, "", "  ")
	if err := writeFileSync(fs, idPath, b); err != nil {
		return info, fmt.Errorf("data dir %s: %w", cfg.DataDir, err)
	}
	return info, nil
}
