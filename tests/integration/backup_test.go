package integration

import (
	"bytes"
	"context"
	"io"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/testutil"
)

// A snapshot saved from a live cluster restores into a fresh 3-member
// cluster with the same keys, history and leases: HashKV at the snapshot's
// revision is equal to the source's, and the new cluster takes writes.
func TestSnapshotSaveRestore(t *testing.T) {
	src := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	cli := src.Client(0, 1, 2)
	for i := range 200 {
		if _, err := cli.Put(ctx, "bk/"+string(rune('a'+i%26))+"/"+string(rune('a'+i/26)), "v"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cli.Delete(ctx, "bk/a/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}
	g, err := cli.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "bk/leased", "v", clientv3.WithLease(g.ID)); err != nil {
		t.Fatal(err)
	}
	rc, err := cli.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	backup, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := server.ReadBackup(backup)
	if err != nil {
		t.Fatal(err)
	}
	srcHash, err := cli.HashKV(ctx, src.Members[0].ClientURL, info.Revision)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup: %d bytes, revision %d, %d keys, %d leases", len(backup), info.Revision, info.Keys, info.Leases)

	// A damaged backup is refused.
	bad := bytes.Clone(backup)
	bad[len(bad)/2] ^= 1
	if _, _, err := server.ReadBackup(bad); err == nil {
		t.Fatal("a damaged backup was accepted")
	}

	dst := testutil.NewCluster(t, 3, testutil.ClusterOptions{Seed: func(m *testutil.Member) {
		_, err := daemon.Restore(daemon.RestoreConfig{DataDir: m.Cfg.DataDir, Name: m.Cfg.Name,
			InitialCluster: m.Cfg.InitialCluster, InitialClusterToken: m.Cfg.InitialClusterToken}, backup, m.FS)
		if err != nil {
			t.Fatal(err)
		}
	}})
	dcli := dst.Client(0, 1, 2)
	for i := range dst.Members {
		h, err := dcli.HashKV(ctx, dst.Members[i].ClientURL, info.Revision)
		if err != nil {
			t.Fatal(err)
		}
		if h.Hash != srcHash.Hash || h.Header.Revision != info.Revision {
			t.Fatalf("member %d: HashKV %d at revision %d, source %d at %d", i, h.Hash, h.Header.Revision, srcHash.Hash, info.Revision)
		}
	}
	ttl, err := dcli.TimeToLive(ctx, g.ID, clientv3.WithAttachedKeys())
	if err != nil || ttl.GrantedTTL != 600 || len(ttl.Keys) != 1 {
		t.Fatalf("restored lease: %+v %v", ttl, err)
	}
	put, err := dcli.Put(context.Background(), "bk/after", "x")
	if err != nil || put.Header.Revision != info.Revision+1 {
		t.Fatalf("write after restore: %v at %v (want revision %d)", err, put, info.Revision+1)
	}
	m, err := dcli.MemberList(ctx)
	if err != nil || len(m.Members) != 3 || m.Header.ClusterId == srcHash.Header.ClusterId {
		t.Fatalf("restored cluster's members: %v %v (a new cluster needs a new cluster ID)", m, err)
	}
}
