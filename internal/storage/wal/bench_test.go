package wal

import (
	"fmt"
	"testing"

	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// BenchmarkSave64 measures one group commit of 64 small entries with one
// fsync, on the in-memory FS (CPU cost) and on the OS (real fsync).
func BenchmarkSave64(b *testing.B) {
	for _, tc := range []struct {
		name string
		fs   func(b *testing.B) (vfs.FS, string)
	}{
		{"mem", func(b *testing.B) (vfs.FS, string) { return vfs.NewMem(), testDir }},
		{"os", func(b *testing.B) (vfs.FS, string) { return vfs.OS(), b.TempDir() }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			fs, dir := tc.fs(b)
			w, err := Create(fs, dir, []byte("meta"), Options{SegmentSize: 8 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			batch := ents(1, 64, 1)
			data := []byte(fmt.Sprintf("%0100d", 0)) // ~100-byte command
			for _, e := range batch {
				e.Data = data
			}
			idx := uint64(0)
			h := hs(1, 1, 0)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for _, e := range batch {
					idx++
					*e.Index = idx
				}
				if err := w.Save(h, batch, true); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
