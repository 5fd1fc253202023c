package daemon

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

var errAddrInUse = syscall.EADDRINUSE

func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeFileSync writes path durably: temp file, fsync, rename, fsync dir.
func writeFileSync(fs vfs.FS, path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := fs.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := fs.Rename(tmp, path); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

func (d *Daemon) startCompactor(ctx context.Context) error {
	mode, period, revs, err := d.cfg.AutoCompaction()
	if err != nil {
		return err
	}
	if (mode == "periodic" && period <= 0) || (mode == "revision" && revs <= 0) || mode == "" {
		return nil
	}
	interval := 5 * time.Minute
	if mode == "periodic" {
		interval = max(period/10, time.Second)
	}
	t := time.NewTicker(interval)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer t.Stop()
		d.srv.RunCompactor(ctx, server.AutoCompaction{Mode: mode, Period: period, Revisions: revs, Ticks: t.C})
	}()
	return nil
}
