package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// writeUnique runs `workers` writers putting unique keys until stop is
// closed; it returns the keys whose put was acknowledged.
func writeUnique(cli *clientv3.Client, prefix string, workers int, stop <-chan struct{}) []string {
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("%s/%d/%06d", prefix, w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_, err := cli.Put(ctx, k, "v")
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	return acked
}

func assertPresent(t *testing.T, cli *clientv3.Client, prefix string, acked []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	have := map[string]bool{}
	for _, kv := range resp.Kvs {
		have[string(kv.Key)] = true
	}
	var lost []string
	for _, k := range acked {
		if !have[k] {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		t.Fatalf("%d of %d acknowledged writes lost, e.g. %v", len(lost), len(acked), lost[:min(5, len(lost))])
	}
	t.Logf("all %d acknowledged writes present (%d keys in total)", len(acked), len(resp.Kvs))
}

func TestKill9AllMembersLosesNoAcknowledgedWrite(t *testing.T) {
	pc := startProcCluster(t, 3)
	cli := pc.Client()
	stop := make(chan struct{})
	var acked []string
	done := make(chan struct{})
	go func() { acked = writeUnique(cli, "set", 8, stop); close(done) }()
	time.Sleep(1500 * time.Millisecond) // let writes flow; the check does not depend on this
	for _, p := range pc.Procs {
		p.Kill()
	}
	close(stop)
	<-done
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	for _, p := range pc.Procs {
		p.Start()
	}
	pc.WaitReady(pc.Procs...)
	assertPresent(t, pc.Client(), "set", acked)
}

func TestKillLeaderWritesContinueAndMemberCatchesUp(t *testing.T) {
	pc := startProcCluster(t, 3)
	cli := pc.Client()
	lead := pc.Leader()
	stop := make(chan struct{})
	var acked []string
	done := make(chan struct{})
	go func() { acked = writeUnique(cli, "lk", 4, stop); close(done) }()
	time.Sleep(500 * time.Millisecond)
	killedAt := time.Now()
	lead.Kill()
	// Writes must succeed again through the surviving members.
	var others []*proc
	for _, p := range pc.Procs {
		if p != lead {
			others = append(others, p)
		}
	}
	ocli := pc.Client(others...)
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := ocli.Put(ctx, "after-kill", "x")
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no write succeeded within 15s of killing the leader: %v", err)
		}
	}
	t.Logf("first write after leader kill succeeded after %v", time.Since(killedAt))
	close(stop)
	<-done
	lead.Start()
	pc.WaitReady(lead)
	assertPresent(t, pc.Client(lead), "lk", acked)
	resp, err := pc.Client(lead).Get(context.Background(), "after-kill")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("restarted member misses the write made while it was down: %v %v", resp, err)
	}
	checkHashesEqual(t, pc)
}

func checkHashesEqual(t *testing.T, pc *procCluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cli := pc.Client()
	// A write through consensus, then a linearizable read on every member,
	// puts all members at the same revision before hashing.
	put, err := cli.Put(ctx, "hash-barrier", "x")
	if err != nil {
		t.Fatal(err)
	}
	rev := put.Header.Revision
	for _, p := range pc.Procs {
		if _, err := pc.Client(p).Get(ctx, "hash-barrier"); err != nil {
			t.Fatal(err)
		}
	}
	hashes := pc.HashKVs(rev)
	var first uint32
	i := 0
	for name, h := range hashes {
		if i == 0 {
			first = h
		} else if h != first {
			t.Fatalf("HashKV at revision %d differs between members: %v (%s)", rev, hashes, name)
		}
		i++
	}
	t.Logf("HashKV at revision %d equal on all members: %x", rev, first)
}

func TestLaggingMemberCatchesUpBySnapshot(t *testing.T) {
	pc := startProcCluster(t, 3, "--snapshot-count", "200", "--snapshot-catchup-entries", "20")
	lead := pc.Leader()
	var follower *proc
	for _, p := range pc.Procs {
		if p != lead {
			follower = p
			break
		}
	}
	follower.Kill()
	cli := pc.Client(lead)
	for i := 0; i < 1000; i++ {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("snap/%04d", i), strings.Repeat("v", 100)); err != nil {
			t.Fatal(err)
		}
	}
	follower.Start()
	pc.WaitReady(follower)
	fcli := pc.Client(follower)
	resp, err := fcli.Get(context.Background(), "snap/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 1000 {
		t.Fatalf("follower has %d of 1000 keys", resp.Count)
	}
	if !strings.Contains(follower.Output(), "installed snapshot from leader") {
		t.Fatalf("follower caught up without a snapshot; the test did not exercise snapshot catch-up")
	}
	checkHashesEqual(t, pc)
}

// lastSegment returns the newest WAL segment of a data dir.
func lastSegment(t *testing.T, dataDir string) string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dataDir, "member", "wal", "*.wal"))
	if err != nil || len(segs) == 0 {
		t.Fatalf("no wal segments in %s: %v", dataDir, err)
	}
	sort.Strings(segs)
	return segs[len(segs)-1]
}

// dataEnd returns the offset just past the last non-zero byte.
func dataEnd(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != 0 {
			return i + 1
		}
	}
	return 0
}

func TestTornWALTailIsRepaired(t *testing.T) {
	pc := startProcCluster(t, 1)
	p := pc.Procs[0]
	cli := pc.Client()
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("torn/%02d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	p.Kill()
	seg := lastSegment(t, p.DataDir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	end := dataEnd(b)
	// A torn write: the first bytes of a record header claiming 200 bytes
	// of payload that never made it to disk.
	f, err := os.OpenFile(seg, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xc8, 0, 0, 0, 0xde, 0xad}, int64(end+8)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	p.Start()
	pc.WaitReady(p)
	resp, err := pc.Client().Get(context.Background(), "torn/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	if resp.Count != 50 {
		t.Fatalf("after torn-tail repair %d of 50 keys remain", resp.Count)
	}
	if _, err := pc.Client().Put(context.Background(), "after-repair", "x"); err != nil {
		t.Fatalf("write after repair: %v", err)
	}
}

func TestMidLogCorruptionIsReported(t *testing.T) {
	pc := startProcCluster(t, 1)
	p := pc.Procs[0]
	cli := pc.Client()
	for i := 0; i < 50; i++ {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("bad/%02d", i), strings.Repeat("x", 64)); err != nil {
			t.Fatal(err)
		}
	}
	p.Kill()
	seg := lastSegment(t, p.DataDir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	end := dataEnd(b)
	// Flip a byte in the middle of the records: valid records follow it.
	b[end/2] ^= 0xff
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	p.Start()
	err, exited := p.WaitExit(20 * time.Second)
	if !exited {
		t.Fatal("cairn kept running on a WAL corrupt in the middle")
	}
	if err == nil {
		t.Fatal("cairn exited 0 on a corrupt WAL")
	}
	out := p.Output()
	if !strings.Contains(out, filepath.Base(seg)) || !strings.Contains(out, "offset") {
		t.Fatalf("the error does not name the file and offset:\n%s", out)
	}
	t.Logf("reported: %s", strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:]))
}

func TestSIGTERMExitsZero(t *testing.T) {
	pc := startProcCluster(t, 1)
	if _, err := pc.Client().Put(context.Background(), "k", "v"); err != nil {
		t.Fatal(err)
	}
	if err := pc.Procs[0].Term(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, pc.Procs[0].Output())
	}
	pc.Procs[0].Start()
	pc.WaitReady(pc.Procs[0])
	resp, err := pc.Client().Get(context.Background(), "k")
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("value lost across graceful restart: %v %v", resp, err)
	}
}
