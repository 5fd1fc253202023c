// Package cluster starts a local 3-member (or n-member) Cairn or etcd cluster
// for the benchmarks: each member is a separate process on 127.0.0.1 with
// free ports and its own data directory on disk, started with the same etcd
// flags for both systems (--heartbeat-interval 100 --election-timeout 1000,
// everything else at its default, so both fsync their log before they
// acknowledge a write).
//
// Start returns once every member answers a linearizable read; Stop kills
// every member (SIGKILL) and removes the data directories. Members also get
// SIGKILL from the kernel if the process that started them dies
// (Pdeathsig), so a crashed driver leaves nothing running.
//
// CPU and PeakRSS read /proc/<pid>/stat (utime+stime) and
// /proc/<pid>/status (VmHWM) of the member processes.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// System names the server under test.
type System string

// The systems.
const (
	Cairn System = "cairn"
	Etcd  System = "etcd"
)

// Errors from Start.
var (
	ErrExited   = errors.New("cluster: member exited")
	ErrNotReady = errors.New("cluster: not ready in time")
)

// Spec says what to start.
type Spec struct {
	System  System
	Binary  string        // path to the cairn or etcd binary
	Dir     string        // parent of the members' data directories and logs
	Members int           // 3 when zero
	Ready   time.Duration // how long to wait for readiness; 30 s when zero
}

// Member is one running process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	LogPath   string
	cmd       *exec.Cmd
	done      chan struct{} // closed when the process has exited
	waitErr   error
}

// Cluster is a running cluster.
type Cluster struct {
	Spec    Spec
	Dir     string // this cluster's own directory under Spec.Dir
	Members []*Member

	mu      sync.Mutex // protects the field below
	stopped bool
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	out := make([]string, len(c.Members))
	for i, m := range c.Members {
		out[i] = m.ClientURL
	}
	return out
}

// freePorts reserves n distinct free ports on 127.0.0.1 (held open together,
// then released just before the members bind them).
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("cluster: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Start starts the cluster and waits until every member serves a
// linearizable read. On failure it kills whatever it started and the error
// carries the tail of the failing member's log.
func Start(ctx context.Context, spec Spec) (*Cluster, error) {
	if spec.Members == 0 {
		spec.Members = 3
	}
	if spec.Ready == 0 {
		spec.Ready = 30 * time.Second
	}
	if _, err := os.Stat(spec.Binary); err != nil {
		return nil, fmt.Errorf("cluster: %s binary: %w", spec.System, err)
	}
	dir, err := os.MkdirTemp(spec.Dir, string(spec.System)+"-")
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ports, err := freePorts(2 * spec.Members)
	if err != nil {
		return nil, err
	}
	c := &Cluster{Spec: spec, Dir: dir}
	var initial []string
	for i := range spec.Members {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			DataDir:   filepath.Join(dir, fmt.Sprintf("m%d.data", i)),
			LogPath:   filepath.Join(dir, fmt.Sprintf("m%d.log", i)),
			done:      make(chan struct{}),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	token := fmt.Sprintf("bench-%s-%d", spec.System, time.Now().UnixNano())
	for _, m := range c.Members {
		args := []string{
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", token, "--initial-cluster-state", "new",
			"--heartbeat-interval", "100", "--election-timeout", "1000",
		}
		if spec.System == Cairn {
			args = append([]string{"serve"}, args...)
		}
		if err := c.startMember(m, spec.Binary, args); err != nil {
			c.Stop()
			return nil, err
		}
	}
	if err := c.waitReady(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) startMember(m *Member, bin string, args []string) error {
	logf, err := os.Create(m.LogPath)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		close(m.done)
		return fmt.Errorf("cluster: start %s: %w", m.Name, err)
	}
	m.cmd = cmd
	go func() {
		m.waitErr = cmd.Wait()
		_ = logf.Close()
		close(m.done)
	}()
	return nil
}

// waitReady polls each member with a linearizable Get until all answer.
func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(c.Spec.Ready)
	for _, m := range c.Members {
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{m.ClientURL}, DialTimeout: time.Second, Logger: zap.NewNop(),
		})
		if err != nil {
			return fmt.Errorf("cluster: client for %s: %w", m.Name, err)
		}
		var lastErr error
		for {
			select {
			case <-m.done:
				_ = cli.Close()
				return fmt.Errorf("%w: %s %s (%v); log tail:\n%s", ErrExited, c.Spec.System, m.Name, m.waitErr, tail(m.LogPath))
			default:
			}
			if ctx.Err() != nil || time.Now().After(deadline) {
				_ = cli.Close()
				return fmt.Errorf("%w: %s %s: %v (ctx: %v); log tail:\n%s", ErrNotReady, c.Spec.System, m.Name, lastErr, ctx.Err(), tail(m.LogPath))
			}
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			_, lastErr = cli.Get(rctx, "bench-ready")
			cancel()
			if lastErr == nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = cli.Close()
	}
	return nil
}

// Stop kills every member, waits for them and removes the cluster directory.
// It is idempotent.
func (c *Cluster) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	c.stopped = true
	for _, m := range c.Members {
		if m.cmd != nil && m.cmd.Process != nil {
			_ = syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL) // the whole process group
			_ = m.cmd.Process.Kill()
		}
	}
	for _, m := range c.Members {
		<-m.done
	}
	_ = os.RemoveAll(c.Dir)
}

// Alive reports an error if a member has exited.
func (c *Cluster) Alive() error {
	for _, m := range c.Members {
		select {
		case <-m.done:
			return fmt.Errorf("%w: %s %s (%v); log tail:\n%s", ErrExited, c.Spec.System, m.Name, m.waitErr, tail(m.LogPath))
		default:
		}
	}
	return nil
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 100

// CPU is the sum of the members' user and system CPU time so far.
func (c *Cluster) CPU() (time.Duration, error) {
	var ticks int64
	for _, m := range c.Members {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.cmd.Process.Pid))
		if err != nil {
			return 0, fmt.Errorf("cluster: cpu of %s: %w", m.Name, err)
		}
		// Fields after the parenthesized command name; utime and stime are
		// fields 14 and 15 of the whole line, so 12 and 13 here (1-based).
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			return 0, fmt.Errorf("cluster: cpu of %s: short stat line", m.Name)
		}
		for _, s := range f[11:13] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("cluster: cpu of %s: %w", m.Name, err)
			}
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// PeakRSS returns each member's VmHWM in bytes.
func (c *Cluster) PeakRSS() ([]int64, error) {
	out := make([]int64, 0, len(c.Members))
	for _, m := range c.Members {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", m.cmd.Process.Pid))
		if err != nil {
			return nil, fmt.Errorf("cluster: rss of %s: %w", m.Name, err)
		}
		found := false
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				f := strings.Fields(rest) // "12345 kB"
				kb, err := strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					return nil, fmt.Errorf("cluster: rss of %s: %w", m.Name, err)
				}
				out = append(out, kb*1024)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("cluster: rss of %s: no VmHWM", m.Name)
		}
	}
	return out, nil
}

// tail returns the last lines of a log file.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
