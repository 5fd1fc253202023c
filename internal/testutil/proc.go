package testutil

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
)

// BuildCairn builds the cairn binary (with the given build tags) into dir
// and returns its path. Call it from TestMain.
func BuildCairn(dir string, tags ...string) (string, error) {
	bin := filepath.Join(dir, "cairn")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, "github.com/cairn-db/cairn/cmd/cairn")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return bin, cmd.Run()
}

// Proc is one cairn member process.
type Proc struct {
	t       testing.TB
	bin     string
	Name    string
	DataDir string
	Client  string // client URL
	Peer    string // peer URL
	Args    []string
	Env     []string // extra environment, e.g. CAIRN_FAILPOINTS=...

	mu     sync.Mutex // protects cmd, stderr
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	waitc  chan error
}

// ProcCluster is a cluster of member processes on 127.0.0.1.
type ProcCluster struct {
	t     testing.TB
	bin   string
	Procs []*Proc
}

// StartProcCluster starts n member processes of bin with the given extra
// flags and waits until each serves linearizable reads.
func StartProcCluster(t testing.TB, bin string, n int, extra ...string) *ProcCluster {
	t.Helper()
	return StartProcClusterEnv(t, bin, n, nil, extra...)
}

// StartProcClusterEnv is StartProcCluster with extra environment variables
// for every member.
func StartProcClusterEnv(t testing.TB, bin string, n int, env []string, extra ...string) *ProcCluster {
	t.Helper()
	pc := &ProcCluster{t: t, bin: bin}
	var initial []string
	for i := 0; i < n; i++ {
		p := &Proc{
			t:       t,
			bin:     bin,
			Name:    fmt.Sprintf("p%d", i),
			DataDir: filepath.Join(t.TempDir(), fmt.Sprintf("p%d", i)),
			Client:  fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
			Peer:    fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
			Env:     env,
		}
		initial = append(initial, p.Name+"="+p.Peer)
		pc.Procs = append(pc.Procs, p)
	}
	for _, p := range pc.Procs {
		p.Args = append([]string{"serve",
			"--name", p.Name, "--data-dir", p.DataDir,
			"--listen-client-urls", p.Client, "--advertise-client-urls", p.Client,
			"--listen-peer-urls", p.Peer, "--initial-advertise-peer-urls", p.Peer,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", "e2e",
			"--heartbeat-interval", "50", "--election-timeout", "500",
		}, extra...)
		p.Start()
	}
	t.Cleanup(pc.KillAll)
	pc.WaitReady(pc.Procs...)
	return pc
}

func (p *Proc) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stderr = &bytes.Buffer{}
	p.cmd = exec.Command(p.bin, p.Args...)
	p.cmd.Env = append(os.Environ(), p.Env...)
	p.cmd.Stdout = p.stderr
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
	p.waitc = make(chan error, 1)
	cmd, waitc := p.cmd, p.waitc
	go func() { waitc <- cmd.Wait() }()
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
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

// Term sends SIGTERM and returns the exit error.
func (p *Proc) Term() error {
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
		return fmt.Errorf("%s did not exit within 20s of SIGTERM", p.Name)
	}
}

func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// Dump ends the process with SIGQUIT, so that the Go runtime prints every
// goroutine's stack, and returns its output: what a stuck member was doing.
func (p *Proc) Dump() string {
	p.mu.Lock()
	cmd, waitc := p.cmd, p.waitc
	p.cmd = nil
	p.mu.Unlock()
	if cmd != nil {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-waitc:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-waitc
		}
	}
	return p.Output()
}

func (pc *ProcCluster) KillAll() {
	for _, p := range pc.Procs {
		p.Kill()
	}
	if pc.t.Failed() {
		dir, err := os.MkdirTemp("", "cairn-failed-")
		for _, p := range pc.Procs {
			out := p.Output()
			if err == nil {
				path := filepath.Join(dir, p.Name+".log")
				if werr := os.WriteFile(path, []byte(out), 0o644); werr == nil {
					pc.t.Logf("%s: full output in %s", p.Name, path)
				}
			}
			if len(out) > 4000 {
				out = out[len(out)-4000:]
			}
			pc.t.Logf("--- %s output (tail) ---\n%s", p.Name, out)
		}
	}
}

func (pc *ProcCluster) Endpoints(ps ...*Proc) []string {
	if len(ps) == 0 {
		ps = pc.Procs
	}
	var eps []string
	for _, p := range ps {
		eps = append(eps, p.Client)
	}
	return eps
}

func (pc *ProcCluster) Client(ps ...*Proc) *clientv3.Client {
	pc.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: pc.Endpoints(ps...), DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		pc.t.Fatal(err)
	}
	pc.t.Cleanup(func() { cli.Close() })
	return cli
}

// WaitReady waits until each given member answers a linearizable get.
func (pc *ProcCluster) WaitReady(ps ...*Proc) {
	pc.t.Helper()
	for _, p := range ps {
		cli := pc.Client(p)
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
			out := p.Dump()
			for _, o := range pc.Procs {
				o.Dump() // what the others were doing too, in their output files
			}
			if len(out) > 8000 {
				out = out[:8000] + "\n[... the whole dump is in the full output file]"
			}
			pc.t.Fatalf("%s not ready within 30s: %v\n%s", p.Name, err, out)
		}
	}
}

// Leader returns the member process that is leader.
func (pc *ProcCluster) Leader() *Proc {
	pc.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range pc.Procs {
			p.mu.Lock()
			running := p.cmd != nil
			p.mu.Unlock()
			if !running {
				continue
			}
			cli := pc.Client(p)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := cli.Status(ctx, p.Client)
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

// HashKVs returns each running member's HashKV at rev.
func (pc *ProcCluster) HashKVs(rev int64) map[string]uint32 {
	pc.t.Helper()
	out := map[string]uint32{}
	for _, p := range pc.Procs {
		cli := pc.Client(p)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := cli.HashKV(ctx, p.Client, rev)
		cancel()
		if err != nil {
			pc.t.Fatalf("hashkv %s: %v", p.Name, err)
		}
		out[p.Name] = resp.Hash
	}
	return out
}

// Pause stops the process with SIGSTOP; Resume continues it.
func (p *Proc) Pause()  { p.signal(syscall.SIGSTOP) }
func (p *Proc) Resume() { p.signal(syscall.SIGCONT) }

func (p *Proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Running reports whether the process was started and not killed.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// WaitExit waits up to d for the process to exit by itself and returns its
// exit error; exited is false on timeout.
func (p *Proc) WaitExit(d time.Duration) (err error, exited bool) {
	p.mu.Lock()
	waitc := p.waitc
	p.mu.Unlock()
	select {
	case err := <-waitc:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		return err, true
	case <-time.After(d):
		return nil, false
	}
}

// NewProc returns (without starting it) a member process joining pc's
// running cluster: --initial-cluster lists the running members and the new
// one, --initial-cluster-state existing. The member must have been added
// first (member add with its Peer URL). extra flags follow.
func (pc *ProcCluster) NewProc(name string, extra ...string) *Proc {
	pc.t.Helper()
	p := &Proc{
		t:       pc.t,
		bin:     pc.bin,
		Name:    name,
		DataDir: filepath.Join(pc.t.TempDir(), name),
		Client:  fmt.Sprintf("http://127.0.0.1:%d", FreePort(pc.t)),
		Peer:    fmt.Sprintf("http://127.0.0.1:%d", FreePort(pc.t)),
	}
	initial := []string{p.Name + "=" + p.Peer}
	for _, o := range pc.Procs {
		initial = append(initial, o.Name+"="+o.Peer)
	}
	p.Args = append([]string{"serve",
		"--name", p.Name, "--data-dir", p.DataDir,
		"--listen-client-urls", p.Client, "--advertise-client-urls", p.Client,
		"--listen-peer-urls", p.Peer, "--initial-advertise-peer-urls", p.Peer,
		"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "existing",
		"--initial-cluster-token", "e2e",
		"--heartbeat-interval", "50", "--election-timeout", "500",
	}, extra...)
	return p
}
