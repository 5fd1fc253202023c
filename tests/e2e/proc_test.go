// Package e2e runs the built cairn binary as real processes: kill -9,
// restarts, on-disk corruption, and etcdctl against it.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-db/cairn/internal/testutil"
)

var cairnBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cairn-e2e-bin")
	if err != nil {
		panic(err)
	}
	cairnBin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", cairnBin, "github.com/cairn-db/cairn/cmd/cairn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one cairn member process.
type proc struct {
	t       *testing.T
	name    string
	dataDir string
	client  string
	peer    string
	args    []string

	mu     sync.Mutex // protects cmd, stderr
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	waitc  chan error
}

type procCluster struct {
	t     *testing.T
	procs []*proc
}

// startProcCluster starts n member processes with the given extra flags.
func startProcCluster(t *testing.T, n int, extra ...string) *procCluster {
	t.Helper()
	pc := &procCluster{t: t}
	var initial []string
	for i := 0; i < n; i++ {
		p := &proc{
			t:       t,
			name:    fmt.Sprintf("p%d", i),
			dataDir: filepath.Join(t.TempDir(), fmt.Sprintf("p%d", i)),
			client:  fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
			peer:    fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t)),
		}
		initial = append(initial, p.name+"="+p.peer)
		pc.procs = append(pc.procs, p)
	}
	for _, p := range pc.procs {
		p.args = append([]string{"serve",
			"--name", p.name, "--data-dir", p.dataDir,
			"--listen-client-urls", p.client, "--advertise-client-urls", p.client,
			"--listen-peer-urls", p.peer, "--initial-advertise-peer-urls", p.peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "e2e",
			"--heartbeat-interval", "50", "--election-timeout", "500",
		}, extra...)
		p.start()
	}
	t.Cleanup(pc.killAll)
	pc.waitReady(pc.procs...)
	return pc
}

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stderr = &bytes.Buffer{}
	p.cmd = exec.Command(cairnBin, p.args...)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.waitc = make(chan error, 1)
	cmd, waitc := p.cmd, p.waitc
	go func() { waitc <- cmd.Wait() }()
}

// kill sends SIGKILL and waits for the process to exit.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, waitc := p.cmd, p.waitc
	p.cmd = nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-waitc
}

// term sends SIGTERM and returns the exit error.
func (p *proc) term() error {
	p.mu.Lock()
	cmd, waitc := p.cmd, p.waitc
	p.cmd = nil
	p.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-waitc:
		return err
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		return fmt.Errorf("%s did not exit within 20s of SIGTERM", p.name)
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

func (pc *procCluster) killAll() {
	for _, p := range pc.procs {
		p.kill()
	}
	if pc.t.Failed() {
		for _, p := range pc.procs {
			out := p.output()
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			pc.t.Logf("--- %s output (tail) ---\n%s", p.name, out)
		}
	}
}

func (pc *procCluster) endpoints(ps ...*proc) []string {
	if len(ps) == 0 {
		ps = pc.procs
	}
	var eps []string
	for _, p := range ps {
		eps = append(eps, p.client)
	}
	return eps
}

func (pc *procCluster) client(ps ...*proc) *clientv3.Client {
	pc.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: pc.endpoints(ps...), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(func() { cli.Close() })
	return cli
}

// waitReady waits until each given member answers a linearizable get.
func (pc *procCluster) waitReady(ps ...*proc) {
	pc.t.Helper()
	for _, p := range ps {
		cli := pc.client(p)
		deadline := time.Now().Add(30 * time.Second)
		var err error
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = cli.Get(ctx, "ready-probe")
			cancel()
			if err == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err != nil {
			pc.t.Fatalf("%s not ready within 30s: %v\n%s", p.name, err, p.output())
		}
	}
}

// leader returns the member process that is leader.
func (pc *procCluster) leader() *proc {
	pc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range pc.procs {
			p.mu.Lock()
			running := p.cmd != nil
			p.mu.Unlock()
			if !running {
				continue
			}
			cli := pc.client(p)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, p.client)
			cancel()
			if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	pc.t.Fatal("no leader within 30s")
	return nil
}

// hashKVs returns each running member's HashKV at rev.
func (pc *procCluster) hashKVs(rev int64) map[string]uint32 {
	pc.t.Helper()
	out := map[string]uint32{}
	for _, p := range pc.procs {
		cli := pc.client(p)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.HashKV(ctx, p.client, rev)
		cancel()
		if err != nil {
			pc.t.Fatalf("hashkv %s: %v", p.name, err)
		}
		out[p.name] = resp.Hash
	}
	return out
}
