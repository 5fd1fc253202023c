package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-db/cairn/internal/testutil"
)

// runCairn runs the cairn binary (a client verb) and returns its exit code,
// stdout and stderr.
func runCairn(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("cairn %q did not exit within 60s", args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("cairn %q: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// startServe starts `cairn serve args...`; the process is killed at test
// end and its output logged if the test failed.
func startServe(t *testing.T, name string, args ...string) {
	t.Helper()
	var out bytes.Buffer // Stdout and Stderr are the same writer: written by one goroutine at a time
	cmd := exec.Command(cairnBin, append([]string{"serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			s := out.String()
			if len(s) > 4000 {
				s = s[len(s)-4000:]
			}
			t.Logf("--- %s output (tail) ---\n%s", name, s)
		}
	})
}

// TestEtcdctlSnapshotSaveCairnRestore saves a snapshot of a 3-member Cairn
// cluster with etcdctl (which only checks that the stream ends with room for
// a SHA-256: a size 32 more than a multiple of 512; `cairn snapshot status`
// then checks the SHA-256 itself), restores it with `cairn snapshot
// restore` into three new data dirs, starts a new 3-member
// cluster on them with `cairn serve` and checks that the keys written before
// the save are there and that HashKV at the backup's revision equals the
// source's.
func TestEtcdctlSnapshotSaveCairnRestore(t *testing.T) {
	etcdctl := filepath.Join(testutil.EtcdDir(t), "bin", "etcdctl")
	pc := startProcCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cli := pc.Client()
	want := map[string]string{}
	for i := range 300 {
		k, v := fmt.Sprintf("e2e/snap/%03d", i), strings.Repeat(fmt.Sprint(i), 20)
		if _, err := cli.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
		want[k] = v
	}
	for i := 0; i < 300; i += 7 {
		k := fmt.Sprintf("e2e/snap/%03d", i)
		if _, err := cli.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
		delete(want, k)
	}

	file := filepath.Join(t.TempDir(), "etcdctl.db")
	out, err := exec.CommandContext(ctx, etcdctl, "--endpoints", pc.Procs[0].Client, "--dial-timeout", "5s", "--command-timeout", "30s",
		"snapshot", "save", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Snapshot saved at "+file) {
		t.Fatalf("etcdctl snapshot save: %v\n%s", err, out)
	}

	code, stdout, stderr := runCairn(t, "snapshot", "status", file, "-o", "json")
	if code != 0 {
		t.Fatalf("cairn snapshot status of etcdctl's file: exit %d: %s", code, stderr)
	}
	var info struct {
		Revision int64 `json:"revision"`
		Keys     int   `json:"keys"`
	}
	if err := json.Unmarshal([]byte(stdout), &info); err != nil {
		t.Fatalf("status -o json: %v: %q", err, stdout)
	}
	if info.Keys != len(want) || info.Revision < 301 {
		t.Fatalf("status: %d keys at revision %d, want %d keys at 301 or later: %s", info.Keys, info.Revision, len(want), stdout)
	}
	srcHashes := pc.HashKVs(info.Revision)
	srcHash := srcHashes[pc.Procs[0].Name]
	for name, h := range srcHashes {
		if h != srcHash {
			t.Fatalf("source members disagree on HashKV at %d: %v (%s)", info.Revision, srcHashes, name)
		}
	}

	// Three new members: restore each data dir, then serve it with the same
	// --name and --initial-cluster* flags.
	type member struct{ name, dataDir, client, peer string }
	var ms []member
	var initial []string
	for i := range 3 {
		m := member{
			name:    fmt.Sprintf("r%d", i),
			dataDir: filepath.Join(t.TempDir(), fmt.Sprintf("r%d", i)),
			client:  fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
			peer:    fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
		}
		ms = append(ms, m)
		initial = append(initial, m.name+"="+m.peer)
	}
	clusterFlags := func(m member) []string {
		return []string{"--name", m.name, "--data-dir", m.dataDir, "--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "e2e-restored", "--initial-advertise-peer-urls", m.peer}
	}
	for _, m := range ms {
		code, stdout, stderr := runCairn(t, append([]string{"snapshot", "restore", file}, clusterFlags(m)...)...)
		if code != 0 || !strings.HasPrefix(stdout, "Restored "+file) {
			t.Fatalf("cairn snapshot restore %s: exit %d\n%s%s", m.name, code, stdout, stderr)
		}
	}
	for _, m := range ms {
		startServe(t, m.name, append(clusterFlags(m),
			"--listen-client-urls", m.client, "--advertise-client-urls", m.client, "--listen-peer-urls", m.peer,
			"--heartbeat-interval", "50", "--election-timeout", "500")...)
	}

	for _, m := range ms {
		mcli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.client}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			t.Fatal(err)
		}
		defer mcli.Close()
		var resp *clientv3.GetResponse
		deadline := time.Now().Add(30 * time.Second)
		for {
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			resp, err = mcli.Get(rctx, "e2e/snap/", clientv3.WithPrefix()) // linearizable: the member is in the cluster
			rcancel()
			if err == nil || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond) // polling interval while the member starts
		}
		if err != nil {
			t.Fatalf("%s not ready within 30s: %v", m.name, err)
		}
		got := map[string]string{}
		for _, kv := range resp.Kvs {
			got[string(kv.Key)] = string(kv.Value)
		}
		if len(got) != len(want) {
			t.Fatalf("%s holds %d keys under e2e/snap/, want %d", m.name, len(got), len(want))
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("%s: %s = %q, want %q", m.name, k, got[k], v)
			}
		}
		h, err := mcli.HashKV(ctx, m.client, info.Revision)
		if err != nil {
			t.Fatalf("%s: HashKV at %d: %v", m.name, info.Revision, err)
		}
		if h.Hash != srcHash {
			t.Fatalf("%s: HashKV at revision %d is %d, the source's %d", m.name, info.Revision, h.Hash, srcHash)
		}
	}
	t.Logf("restored %d keys at revision %d on 3 new members; HashKV %x as on the source", len(want), info.Revision, srcHash)
}
