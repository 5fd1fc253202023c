package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"context"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdDir returns the directory holding bin/etcd and bin/etcdctl built by
// scripts/build-etcd.sh. When they are missing the test is skipped, unless
// CI is set, where their absence is a failure (.ci/run builds them).
func EtcdDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("CAIRN_ETCD_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			cache = filepath.Join(home, ".cache")
		}
		dir = filepath.Join(cache, "cairn", "etcd-v3.7.3")
	}
	if _, err := os.Stat(filepath.Join(dir, "bin", "etcd")); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd binaries missing in %s: run scripts/build-etcd.sh", dir)
		}
		t.Skipf("etcd binaries missing in %s: run scripts/build-etcd.sh", dir)
	}
	return dir
}

// StartEtcd starts a single-member etcd on free 127.0.0.1 ports and returns
// its client URL. It is killed at test end.
func StartEtcd(t testing.TB) string {
	t.Helper()
	dir := EtcdDir(t)
	client := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	peer := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	cmd := exec.Command(filepath.Join(dir, "bin", "etcd"),
		"--name", "e0", "--data-dir", t.TempDir(),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "e0="+peer, "--log-level", "error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err = cli.Get(ctx, "health")
		cancel()
		if err == nil {
			return client
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("etcd did not become ready: %v", err)
	return ""
}
