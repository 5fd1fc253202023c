package cli

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

var testBackupInfo = server.BackupInfo{
	Version: 1, ClusterID: 0xcdf818194e3a8c32, MemberID: 0x8e9e05c52164694d, Index: 120,
	Revision: 42, Compacted: 7, Keys: 10, Leases: 1,
	Members: []server.Member{
		{ID: 0x8e9e05c52164694d, Name: "m0", PeerURLs: []string{"http://127.0.0.1:2380"}},
		{ID: 0x2e3f1a0b9c8d7e6f, Name: "m1", PeerURLs: []string{"http://127.0.0.1:2381"}},
		{ID: 0x91bc3c398fb3c146, Name: "m2", PeerURLs: []string{"http://127.0.0.1:2382"}},
	},
	Created: time.Date(2026, 11, 26, 16, 58, 49, 0, time.UTC),
}

// fakeBackup builds a backup file in the format server.ReadBackup reads
// (magic, JSON header, state, zero padding to 512, SHA-256) around an
// opaque state: enough for save and status, which do not decode the state.
// Restores of real backups are in the integration test.
func fakeBackup(t *testing.T, info server.BackupInfo, state []byte) []byte {
	t.Helper()
	b := server.EncodeBackup(info, state)
	if _, _, err := server.ReadBackup(b); err != nil {
		t.Fatalf("fakeBackup does not follow the backup format: %v", err)
	}
	return b
}

func TestSnapshotUsageErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.db") // usage is checked before the file is read
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"snapshot"}, "'cairn snapshot' needs a sub-verb: save, status or restore"},
		{[]string{"snapshot", "--name", "x"}, "'cairn snapshot' needs a sub-verb"},
		{[]string{"snapshot", "load"}, `unknown command "snapshot load"`},
		{[]string{"snapshot", "save"}, "cairn snapshot save: snapshot save takes exactly one argument: FILE\nRun 'cairn snapshot save --help' for usage."},
		{[]string{"snapshot", "save", "a", "b"}, "snapshot save takes exactly one argument: FILE"},
		{[]string{"snapshot", "save", "a", "--endpoints", " , "}, "--endpoints is empty"},
		{[]string{"snapshot", "status"}, "snapshot status takes exactly one argument: FILE"},
		{[]string{"snapshot", "status", "a", "--name", "x"}, "flag provided but not defined: -name"},
		{[]string{"snapshot", "restore"}, "snapshot restore takes exactly one argument: FILE"},
		{[]string{"snapshot", "restore", missing, "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"snapshot", "restore", missing, "--name", "m9", "--initial-cluster", "m0=http://127.0.0.1:2380"},
			`--name "m9" is missing from --initial-cluster (m0=http://127.0.0.1:2380)`},
		{[]string{"snapshot", "restore", missing, "--name", "m1", "--initial-cluster", "m0=http://127.0.0.1:2380,m1=http://127.0.0.1:2381"},
			"--initial-advertise-peer-urls http://127.0.0.1:2380 is not in --initial-cluster for m1 (http://127.0.0.1:2381)"},
		{[]string{"snapshot", "restore", missing, "--name", "m1", "--initial-cluster", "m0=http://127.0.0.1:2380,m1=http://127.0.0.1:2381",
			"--initial-advertise-peer-urls", "http://127.0.0.1:2382"}, "--initial-advertise-peer-urls http://127.0.0.1:2382 is not in --initial-cluster for m1"},
		{[]string{"snapshot", "restore", missing, "--initial-cluster", "default=localhost"}, `bad URL "localhost": want scheme://host:port`},
		{[]string{"snapshot", "restore", missing, "--initial-advertise-peer-urls", "https://127.0.0.1:2380"}, "TLS is not supported yet"},
		{[]string{"snapshot", "restore", missing, "--data-dir", ""}, "--data-dir must not be empty"},
		{[]string{"snapshot", "restore", missing, "--initial-cluster-token", ""}, "--initial-cluster-token must not be empty"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != exitUsage || !strings.Contains(errs, tt.want) || out != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errs, tt.want)
		}
		if strings.Contains(errs, "cairn serve --help") {
			t.Errorf("%q: the error points at serve's help: %q", tt.args, errs)
		}
	}
}

// The restore flags have serve's defaults and are checked by serve's parser.
func TestRestoreConfig(t *testing.T) {
	cfgOf := func(args ...string) daemon.RestoreConfig {
		t.Helper()
		fs := flag.NewFlagSet("snapshot restore", flag.ContinueOnError)
		snapshotRestoreVerb().register(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		cfg, err := restoreConfig(fs)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return cfg
	}
	d := daemon.DefaultConfig()
	cfg := cfgOf()
	if cfg.DataDir != d.DataDir || cfg.Name != d.Name || cfg.InitialClusterToken != d.InitialClusterToken || clusterText(cfg) != "default=http://127.0.0.1:2380" {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg = cfgOf("--name", "b", "--initial-advertise-peer-urls", "http://10.0.0.2:2380", "--data-dir", "/d/b",
		"--initial-cluster", "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380", "--initial-cluster-token", "t2")
	if cfg.DataDir != "/d/b" || cfg.Name != "b" || cfg.InitialClusterToken != "t2" ||
		clusterText(cfg) != "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380" {
		t.Errorf("set: %+v", cfg)
	}
	// Without --initial-cluster, serve's default: <name>=<initial-advertise-peer-urls>.
	if cfg := cfgOf("--name", "solo", "--initial-advertise-peer-urls", "http://10.0.0.9:2390"); clusterText(cfg) != "solo=http://10.0.0.9:2390" {
		t.Errorf("derived --initial-cluster: %q", clusterText(cfg))
	}
}

func TestSnapshotStatus(t *testing.T) {
	b := fakeBackup(t, testBackupInfo, bytes.Repeat([]byte("s"), 700))
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := hex.EncodeToString(b[len(b)-32:])

	code, out, errs := runCLI(t, "", "snapshot", "status", path)
	if code != exitOK {
		t.Fatalf("status: exit %d: %s", code, errs)
	}
	checkGolden(t, "table", out, `REVISION  KEYS  LEASES  MEMBERS  SIZE    CREATED               MADE BY
42        10    1       3        1.6 kB  2026-11-26T16:58:49Z  m0 (8e9e05c52164694d)
`)
	_, out, _ = runCLI(t, "", "snapshot", "status", path, "-o", "value")
	checkGolden(t, "value", out, "42\t10\t1\t3\t1.6 kB\t2026-11-26T16:58:49Z\tm0 (8e9e05c52164694d)\n")
	_, out, _ = runCLI(t, "", "snapshot", "status", path, "-w", "json")
	checkGolden(t, "json", out, fmt.Sprintf(`{"path":%q,"size":1568,"sha256":"%s","version":1,`+
		`"cluster_id":14841639068965178418,"member_id":10276657743932975437,"index":120,"revision":42,"compact_revision":7,"keys":10,"leases":1,`+
		`"members":[{"id":10276657743932975437,"name":"m0","peerURLs":["http://127.0.0.1:2380"]},`+
		`{"id":3332410886450937455,"name":"m1","peerURLs":["http://127.0.0.1:2381"]},`+
		`{"id":10501334649042878790,"name":"m2","peerURLs":["http://127.0.0.1:2382"]}],"created":"2026-11-26T16:58:49Z"}`+"\n", path, sum))

	// Damaged, truncated, missing and foreign files fail with exit 1 and say why.
	damaged := bytes.Clone(b)
	damaged[100] ^= 1
	foreign := bytes.Repeat([]byte{0}, 4096+32) // a bbolt-sized file
	for name, tc := range map[string]struct {
		content []byte
		want    string
	}{
		"damaged":   {damaged, "SHA-256 mismatch"},
		"truncated": {b[:len(b)-1], "is not a backup's size (truncated?)"},
		"foreign":   {foreign, "SHA-256 mismatch"},
		"missing":   {nil, "no such file or directory"},
	} {
		p := filepath.Join(t.TempDir(), name+".db")
		if tc.content != nil {
			if err := os.WriteFile(p, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		code, out, errs := runCLI(t, "", "snapshot", "status", p)
		if code != exitError || out != "" || !strings.Contains(errs, tc.want) || !strings.HasPrefix(errs, "cairn: ") {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and %q", name, code, out, errs, tc.want)
		}
	}
}

// errReader returns its data, then err.
type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestSaveBackup(t *testing.T) {
	b := fakeBackup(t, testBackupInfo, bytes.Repeat([]byte("s"), 5000))
	const dir, path, part = "/backups", "/backups/b.db", "/backups/b.db.part"
	newFS := func(t *testing.T) *vfs.MemFS {
		fs := vfs.NewMem()
		if err := vfs.MkdirAllSync(fs, dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// A previous backup, which only a complete, intact one may replace.
		if err := writeMem(fs, path, []byte("previous")); err != nil {
			t.Fatal(err)
		}
		return fs
	}
	exists := func(fs vfs.FS, p string) bool { _, err := fs.Stat(p); return err == nil }

	t.Run("ok", func(t *testing.T) {
		fs := newFS(t)
		bf, err := saveBackup(fs, path, bytes.NewReader(b), nil)
		if err != nil {
			t.Fatal(err)
		}
		if bf.path != path || bf.size != int64(len(b)) || bf.info.Revision != 42 || !bytes.Equal(bf.sum, b[len(b)-32:]) {
			t.Errorf("backupFile: %+v", bf)
		}
		// Durable: the file was synced and its rename too.
		fs.Crash()
		got, err := readAll(fs, path)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("after a crash %s holds %d bytes (%v), want the backup's %d", path, len(got), err, len(b))
		}
		if exists(fs, part) {
			t.Error(part + " left behind")
		}
	})

	failures := []struct {
		name string
		src  io.Reader
		efs  func(*vfs.ErrorFS)
		want []string
		is   error
	}{
		{name: "damaged", src: bytes.NewReader(append(bytes.Clone(b[:2000]), append([]byte{b[2000] ^ 1}, b[2001:]...)...)),
			want: []string{"the downloaded snapshot is damaged: /backups/b.db: server: not an intact cairn backup: SHA-256 mismatch", "removed " + part}, is: server.ErrBadBackup},
		{name: "short", src: bytes.NewReader(b[:len(b)-100]),
			want: []string{"is not a backup's size (truncated?)", "removed " + part}, is: server.ErrBadBackup},
		{name: "stream broken", src: &errReader{data: b[:3000], err: errors.New("rpc error: connection reset")},
			want: []string{"download failed after 3000 bytes: rpc error: connection reset", "removed " + part}},
		{name: "interrupted", src: &errReader{data: b[:100], err: fmt.Errorf("snapshot stream: %w", os.ErrDeadlineExceeded)},
			want: []string{"download failed after 100 bytes"}, is: os.ErrDeadlineExceeded},
		{name: "disk full", src: bytes.NewReader(b), efs: func(e *vfs.ErrorFS) { e.FailWritesAfter(1000) },
			want: []string{"download failed after 1000 bytes", "no space left on device", "removed " + part}, is: syscall.ENOSPC},
		{name: "sync fails", src: bytes.NewReader(b), efs: func(e *vfs.ErrorFS) { e.FailSync(syscall.EIO) },
			want: []string{"cannot write " + part, "input/output error", "removed " + part}, is: syscall.EIO},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			mem := newFS(t)
			var fs vfs.FS = mem
			if tc.efs != nil {
				efs := vfs.NewErrorFS(mem, nil)
				tc.efs(efs)
				fs = efs
			}
			_, err := saveBackup(fs, path, tc.src, nil)
			if err == nil {
				t.Fatal("saved")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if exists(mem, part) {
				t.Error(part + " left behind")
			}
			if got, _ := readAll(mem, path); string(got) != "previous" {
				t.Errorf("the previous %s was replaced by %d bytes", path, len(got))
			}
		})
	}

	t.Run("no directory", func(t *testing.T) {
		_, err := saveBackup(vfs.NewMem(), "/nowhere/b.db", bytes.NewReader(b), nil)
		if err == nil || !strings.Contains(err.Error(), "cannot create /nowhere/b.db.part") {
			t.Fatalf("error %v", err)
		}
	})
}

func writeMem(fs vfs.FS, path string, data []byte) error {
	f, err := fs.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &progress{w: &buf, now: func() time.Time { return now }}
	cw := &countWriter{w: io.Discard, prog: p}
	cw.Write(make([]byte, 500)) // first: drawn
	now = now.Add(progressEvery / 2)
	cw.Write(make([]byte, 700)) // too soon: not drawn
	now = now.Add(progressEvery / 2)
	cw.Write(make([]byte, 1_500_000))
	p.finish()
	want := "\rreceived 500 B (500 bytes)\033[K\rreceived 1.5 MB (1501200 bytes)\033[K\rreceived 1.5 MB (1501200 bytes)\033[K\n"
	if buf.String() != want {
		t.Errorf("progress:\n got %q\nwant %q", buf.String(), want)
	}
	if cw.n != 1501200 {
		t.Errorf("counted %d", cw.n)
	}
	// A nil progress (stderr is not a terminal) shows nothing.
	var none *progress
	(&countWriter{w: io.Discard, prog: none}).Write([]byte("x"))
	none.finish()
	if isTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is not a terminal")
	}
}

func TestOutputSnapshot(t *testing.T) {
	bf := backupFile{path: "b.db", size: 1568, sum: bytes.Repeat([]byte{0xab}, 32), info: testBackupInfo}
	sum := strings.Repeat("ab", 32)
	checkGolden(t, "saved table", render(t, outputTable, func(p printer) error { return p.snapshotSaved(bf) }), "Snapshot saved at b.db\n")
	checkGolden(t, "saved value", render(t, outputValue, func(p printer) error { return p.snapshotSaved(bf) }), "b.db\n")
	saved := render(t, outputJSON, func(p printer) error { return p.snapshotSaved(bf) })
	if !strings.HasPrefix(saved, `{"path":"b.db","size":1568,"sha256":"`+sum+`","version":1,"cluster_id":14841639068965178418,`) {
		t.Errorf("saved json: %s", saved)
	}

	// The maker is named when it is in the backup's member table.
	other := bf
	other.info.MemberID = 0x1
	checkGolden(t, "status unknown maker", render(t, outputValue, func(p printer) error { return p.snapshotStatus(other) }),
		"42\t10\t1\t3\t1.6 kB\t2026-11-26T16:58:49Z\t1\n")

	u := func(s string) url.URL { v, _ := url.Parse(s); return *v }
	cfg := daemon.RestoreConfig{DataDir: "/var/lib/cairn/n1", Name: "n1", InitialClusterToken: "restored",
		InitialCluster: map[string][]url.URL{"n2": {u("http://10.0.0.2:2380")}, "n1": {u("http://10.0.0.1:2380")}, "n3": {u("http://10.0.0.3:2380")}}}
	checkGolden(t, "restored table", render(t, outputTable, func(p printer) error { return p.snapshotRestored(bf, cfg) }),
		"Restored b.db (revision 42, 10 keys, 1 lease) into /var/lib/cairn/n1 as member n1 of a new cluster of 3 (n1, n2, n3), token restored.\n"+
			"Start it with 'cairn serve --name n1 --data-dir /var/lib/cairn/n1' and its listen URLs, once every member is restored.\n")
	checkGolden(t, "restored value", render(t, outputValue, func(p printer) error { return p.snapshotRestored(bf, cfg) }), "/var/lib/cairn/n1\n")
	restored := render(t, outputJSON, func(p printer) error { return p.snapshotRestored(bf, cfg) })
	if !strings.HasPrefix(restored, `{"data_dir":"/var/lib/cairn/n1","name":"n1","initial_cluster":"n1=http://10.0.0.1:2380,n2=http://10.0.0.2:2380,n3=http://10.0.0.3:2380",`+
		`"initial_cluster_token":"restored","backup":{"path":"b.db","size":1568,"sha256":"`+sum+`","version":1,`) {
		t.Errorf("restored json: %s", restored)
	}
}
