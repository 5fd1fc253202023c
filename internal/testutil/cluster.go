// Package testutil holds test-only helpers: an in-process cluster of Cairn
// members on 127.0.0.1 and helpers to reach them with clientv3.
package testutil

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// Member is one in-process member.
type Member struct {
	Name      string
	Cfg       daemon.Config
	FS        vfs.FS
	D         *daemon.Daemon
	ClientURL string
	PeerURL   string
}

// Cluster is a set of in-process members on 127.0.0.1.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// ClusterOptions tunes a test cluster.
type ClusterOptions struct {
	// SnapshotCount overrides --snapshot-count.
	SnapshotCount uint64
	// CatchUpEntries overrides the entries kept behind a snapshot.
	CatchUpEntries uint64
	// OnDisk puts data dirs in t.TempDir() on the OS file system instead of
	// in-memory file systems.
	OnDisk bool
	// Mutate edits each member's config before start.
	Mutate func(*daemon.Config)
	// Seed prepares each member's data dir (its FS and config are set)
	// before the first start, e.g. with daemon.Restore.
	Seed func(m *Member)
}

// FreePort returns a port that was free on 127.0.0.1 a moment ago. It is
// drawn from 20000-32767, below Linux's ephemeral range, so that a member
// restarted on the same port does not find it taken by some client's
// outgoing connection (the kernel hands those out from the ephemeral range).
// A port is never returned twice in one process, so that two members of one
// cluster cannot get the same one before either binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for i := 0; i < 1000; i++ {
		port := 20000 + rand.IntN(12768)
		if portsGiven[port] {
			continue // given before in this process: maybe not bound yet
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			ln.Close()
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no free port in 20000-32767")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{} // ports FreePort returned in this process
)

func mustURL(t testing.TB, s string) url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}

// NewCluster starts n members and waits until they elect a leader.
func NewCluster(t testing.TB, n int, opts ClusterOptions) *Cluster {
	t.Helper()
	c := &Cluster{t: t}
	initial := map[string][]url.URL{}
	for i := 0; i < n; i++ {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", FreePort(t)),
		}
		initial[m.Name] = []url.URL{mustURL(t, m.PeerURL)}
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		cfg := daemon.DefaultConfig()
		cfg.Name = m.Name
		cfg.ListenClientURLs = []url.URL{mustURL(t, m.ClientURL)}
		cfg.AdvertiseClientURLs = cfg.ListenClientURLs
		cfg.ListenPeerURLs = []url.URL{mustURL(t, m.PeerURL)}
		cfg.InitialAdvertisePeerURLs = cfg.ListenPeerURLs
		cfg.InitialCluster = initial
		cfg.InitialClusterToken = "test-" + t.Name()
		// Fast, but not so fast that a loaded 2-core CI machine (race
		// detector, parallel packages) holds spurious elections.
		cfg.HeartbeatInterval = 20 * time.Millisecond
		cfg.ElectionTimeout = 300 * time.Millisecond
		if opts.SnapshotCount > 0 {
			cfg.SnapshotCount = opts.SnapshotCount
		}
		if opts.CatchUpEntries > 0 {
			cfg.SnapshotCatchUpEntries = opts.CatchUpEntries
		}
		if opts.OnDisk {
			m.FS = vfs.OS()
			cfg.DataDir = filepath.Join(t.TempDir(), m.Name)
		} else {
			m.FS = vfs.NewMem()
			cfg.DataDir = "/data/" + m.Name
		}
		if opts.Mutate != nil {
			opts.Mutate(&cfg)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("config of %s: %v", m.Name, err)
		}
		m.Cfg = cfg
		if opts.Seed != nil {
			opts.Seed(m)
		}
	}
	t.Cleanup(c.Stop)
	for i := range c.Members {
		c.Start(i)
	}
	c.WaitLeader()
	return c
}

// Logger returns a logger for members: silent unless CAIRN_TEST_LOG is set.
func Logger(name string) *slog.Logger {
	if os.Getenv("CAIRN_TEST_LOG") == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", name)
}

// Start starts (or restarts) member i on its data dir.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	m := c.Members[i]
	var err error
	for attempt := 0; attempt < 50; attempt++ {
		m.D, err = daemon.Start(m.Cfg, Logger(m.Name), m.FS)
		if err == nil || !strings.Contains(err.Error(), "already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond) // the port of a just-stopped member is still closing
	}
	if err != nil {
		c.t.Fatalf("start %s: %v", m.Name, err)
	}
}

// Stop stops member i (a graceful stop).
func (c *Cluster) StopMember(i int) {
	if d := c.Members[i].D; d != nil {
		d.Stop()
		c.Members[i].D = nil
	}
}

// Crash simulates a power loss of member i: everything it did not fsync is
// dropped first (its open files fail from then on), then the member is
// stopped, so a graceful close cannot sync anything late. In-memory file
// systems only.
func (c *Cluster) Crash(i int) {
	c.t.Helper()
	mfs, ok := c.Members[i].FS.(*vfs.MemFS)
	if !ok {
		c.t.Fatalf("Crash needs an in-memory file system")
	}
	mfs.Crash()
	c.StopMember(i)
}

// Stop stops every member.
func (c *Cluster) Stop() {
	for i := range c.Members {
		c.StopMember(i)
	}
}

// Endpoints returns the client URLs of the running members (all if none given).
func (c *Cluster) Endpoints(idx ...int) []string {
	var eps []string
	if len(idx) == 0 {
		for i := range c.Members {
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		eps = append(eps, c.Members[i].ClientURL)
	}
	return eps
}

// Client returns a clientv3 client for the given members (all if none).
func (c *Cluster) Client(idx ...int) *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(idx...), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cli.Close() })
	return cli
}

// Leader returns the index of the member that is leader, or -1.
func (c *Cluster) Leader() int {
	for i, m := range c.Members {
		if m.D == nil {
			continue
		}
		st := m.D.Server().Status()
		if st.Leader != 0 && st.Leader == m.D.Server().MemberID() {
			return i
		}
	}
	return -1
}

// WaitLeader waits until every running member knows the same leader and
// returns the leader's index.
func (c *Cluster) WaitLeader() int {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var lead uint64
		agree := true
		for _, m := range c.Members {
			if m.D == nil {
				continue
			}
			l := m.D.Server().Leader()
			if l == 0 || (lead != 0 && l != lead) {
				agree = false
				break
			}
			lead = l
		}
		if agree && lead != 0 {
			for i, m := range c.Members {
				if m.D != nil && m.D.Server().MemberID() == lead {
					return i
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("no leader agreed within 20s")
	return -1
}

// Ctx returns a context with a timeout, canceled at test end.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// AddMember adds a member to the running cluster (MemberAdd through the
// others, a learner when learner is set), then starts it on a new data dir
// with --initial-cluster-state existing. It returns the new member's index.
func (c *Cluster) AddMember(learner bool) int {
	c.t.Helper()
	base := c.Members[0].Cfg
	m := &Member{
		Name:      fmt.Sprintf("m%d", len(c.Members)),
		ClientURL: fmt.Sprintf("http://127.0.0.1:%d", FreePort(c.t)),
		PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", FreePort(c.t)),
	}
	var live []int
	for i, o := range c.Members {
		if o.D != nil {
			live = append(live, i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var err error
	if learner {
		_, err = c.Client(live...).MemberAddAsLearner(ctx, []string{m.PeerURL})
	} else {
		_, err = c.Client(live...).MemberAdd(ctx, []string{m.PeerURL})
	}
	if err != nil {
		c.t.Fatalf("member add %s: %v", m.Name, err)
	}
	cfg := base
	cfg.Name = m.Name
	cfg.ListenClientURLs = []url.URL{mustURL(c.t, m.ClientURL)}
	cfg.AdvertiseClientURLs = cfg.ListenClientURLs
	cfg.ListenPeerURLs = []url.URL{mustURL(c.t, m.PeerURL)}
	cfg.InitialAdvertisePeerURLs = cfg.ListenPeerURLs
	cfg.InitialCluster = map[string][]url.URL{m.Name: cfg.ListenPeerURLs}
	for _, i := range live {
		cfg.InitialCluster[c.Members[i].Name] = []url.URL{mustURL(c.t, c.Members[i].PeerURL)}
	}
	cfg.InitialClusterState = "existing"
	if _, ok := c.Members[0].FS.(*vfs.MemFS); ok {
		m.FS = vfs.NewMem()
		cfg.DataDir = "/data/" + m.Name
	} else {
		m.FS = vfs.OS()
		cfg.DataDir = filepath.Join(c.t.TempDir(), m.Name)
	}
	m.Cfg = cfg
	c.Members = append(c.Members, m)
	c.Start(len(c.Members) - 1)
	return len(c.Members) - 1
}
