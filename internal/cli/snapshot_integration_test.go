package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/testutil"
)

// TestIntegrationSnapshotSaveStatusRestore saves a backup of a live 3-member
// cluster with `cairn snapshot save`, describes it with `snapshot status`,
// restores it with `snapshot restore` into the on-disk data dirs of a new
// 3-member cluster, starts that cluster and checks its keys, lease and
// HashKV. It always starts its own clusters (not CAIRN_TEST_ENDPOINTS'): it
// compares the source's hash with the restored one's.
func TestIntegrationSnapshotSaveStatusRestore(t *testing.T) {
	src := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	c := &cluster{t: t, endpoints: strings.Join(src.Endpoints(), ",")}
	for i := range 20 {
		c.must("", "put", fmt.Sprintf("snap/k%02d", i), fmt.Sprintf("v%d", i))
	}
	c.must("", "del", "snap/k00")
	c.must("", "put", "snap/k01", "v1-again")
	leaseID := strings.TrimSpace(c.must("", "lease", "grant", "600", "-o", "value"))
	c.must("", "put", "snap/leased", "x", "--lease", leaseID)

	dir := t.TempDir()
	file := filepath.Join(dir, "backup.db")

	// save reads from the first of --endpoints only, as etcdctl does: a
	// dead first endpoint fails the save and leaves nothing behind.
	dead := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	code, _, errs := c.run("", "snapshot", "save", file, "--endpoints", dead+","+c.endpoints)
	if code != exitError || !strings.Contains(errs, "no member answered at "+dead+" (connection refused)") {
		t.Fatalf("save from a dead first endpoint: exit %d: %s", code, errs)
	}
	for _, p := range []string{file, file + partSuffix} {
		if _, err := os.Stat(p); err == nil {
			t.Fatalf("%s exists after a failed save", p)
		}
	}

	if out := c.must("", "snapshot", "save", file); out != "Snapshot saved at "+file+"\n" {
		t.Fatalf("save: %q", out)
	}
	if _, err := os.Stat(file + partSuffix); err == nil {
		t.Fatalf("%s left behind", file+partSuffix)
	}
	var info jsonBackup
	if err := json.Unmarshal([]byte(c.must("", "snapshot", "status", file, "-o", "json")), &info); err != nil {
		t.Fatal(err)
	}
	// 20 keys, the lease, the three source members; the maker is one of them.
	if info.Keys != 20 || info.Leases != 1 || len(info.Members) != 3 || info.Revision < 23 || info.Path != file {
		t.Fatalf("status: %+v", info)
	}
	table := c.must("", "snapshot", "status", file)
	rows := strings.Split(strings.TrimSuffix(table, "\n"), "\n")
	if len(rows) != 2 || strings.Join(strings.Fields(rows[0]), " ") != "REVISION KEYS LEASES MEMBERS SIZE CREATED MADE BY" ||
		!strings.HasPrefix(strings.Join(strings.Fields(rows[1]), " "), fmt.Sprintf("%d 20 1 3 ", info.Revision)) ||
		!strings.HasSuffix(rows[1], fmt.Sprintf("(%x)", info.MemberID)) {
		t.Fatalf("status table:\n%s", table)
	}
	ctx := testutil.Ctx(t)
	scli := src.Client()
	srcHash, err := scli.HashKV(ctx, src.Members[0].ClientURL, info.Revision)
	if err != nil {
		t.Fatal(err)
	}

	// Restore into three new data dirs (t.TempDir(), on disk) and start them.
	token := "restored-" + t.Name()
	dst := testutil.NewCluster(t, 3, testutil.ClusterOptions{
		OnDisk: true,
		Mutate: func(cfg *daemon.Config) { cfg.InitialClusterToken = token },
		Seed: func(m *testutil.Member) {
			code, out, errs := c.run("", "snapshot", "restore", file, "--name", m.Name, "--data-dir", m.Cfg.DataDir,
				"--initial-cluster", clusterText(daemon.RestoreConfig{InitialCluster: m.Cfg.InitialCluster}),
				"--initial-cluster-token", token, "--initial-advertise-peer-urls", m.PeerURL)
			if code != exitOK {
				t.Fatalf("restore %s: exit %d: %s", m.Name, code, errs)
			}
			want := fmt.Sprintf("Restored %s (revision %d, 20 keys, 1 lease) into %s as member %s of a new cluster of 3 (m0, m1, m2), token %s.\n",
				file, info.Revision, m.Cfg.DataDir, m.Name, token)
			if !strings.HasPrefix(out, want) {
				t.Fatalf("restore %s:\n got %q\nwant %q...", m.Name, out, want)
			}
		},
	})
	d := &cluster{t: t, endpoints: strings.Join(dst.Endpoints(), ",")}
	if out := d.must("", "get", "snap/", "--prefix", "--count-only"); out != "20\n" {
		t.Errorf("restored cluster holds %q keys under snap/, want 20", out)
	}
	if out := d.must("", "get", "snap/k01", "-o", "value"); out != "v1-again\n" {
		t.Errorf("snap/k01 = %q", out)
	}
	if out := d.must("", "get", "snap/k00", "--count-only"); out != "0\n" {
		t.Errorf("the deleted key is back: %q", out)
	}
	if out := d.must("", "lease", "ttl", leaseID, "--keys"); !strings.Contains(out, "snap/leased") {
		t.Errorf("restored lease: %q", out)
	}
	dcli := dst.Client()
	for i, m := range dst.Members {
		h, err := dcli.HashKV(ctx, m.ClientURL, info.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if h.Hash != srcHash.Hash {
			t.Errorf("member %d: HashKV %d at revision %d, source %d", i, h.Hash, info.Revision, srcHash.Hash)
		}
	}
	if resp, err := dcli.Put(context.Background(), "snap/after", "x"); err != nil || resp.Header.Revision != info.Revision+1 {
		t.Errorf("write after restore: %v %v (want revision %d)", resp, err, info.Revision+1)
	}
	if resp, err := dcli.Get(ctx, "snap/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || resp.Header.ClusterId == srcHash.Header.ClusterId {
		t.Errorf("the restored cluster kept the source's cluster ID %x (%v)", srcHash.Header.ClusterId, err)
	}

	// A data dir that holds a member is refused.
	m := dst.Members[0]
	code, _, errs = c.run("", "snapshot", "restore", file, "--name", m.Name, "--data-dir", m.Cfg.DataDir,
		"--initial-cluster", clusterText(daemon.RestoreConfig{InitialCluster: m.Cfg.InitialCluster}),
		"--initial-cluster-token", token, "--initial-advertise-peer-urls", m.PeerURL)
	if code != exitError || !strings.Contains(errs, "already belongs to a member") {
		t.Errorf("restore into a member's data dir: exit %d: %s", code, errs)
	}
	// So is a damaged backup, before anything is written.
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 1
	bad := filepath.Join(dir, "bad.db")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "never")
	code, _, errs = c.run("", "snapshot", "restore", bad, "--data-dir", empty)
	if code != exitError || !strings.Contains(errs, server.ErrBadBackup.Error()) {
		t.Errorf("restore of a damaged backup: exit %d: %s", code, errs)
	}
	if _, err := os.Stat(empty); err == nil {
		t.Errorf("a damaged backup's restore created %s", empty)
	}
}
