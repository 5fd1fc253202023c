// Package daemon is the composition root of `cairn serve`: it turns a
// validated Config into running components and stops them in order.
//
// Start order: bind the client and peer listeners (so a busy port fails
// first, with a clear sentence), lock and open the data dir, start the peer
// transport, the raft node (which replays the WAL), the server (which
// restores the snapshot and applies the log), then serve gRPC and HTTP.
// Stop order (Run returns): stop accepting clients and let in-flight calls
// finish (bounded), stop the server's loops, stop raft (which closes and
// thereby syncs the WAL), stop the transport, release the data-dir lock.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/cairn-db/cairn/internal/api/grpcapi"
	"github.com/cairn-db/cairn/internal/failpoint"
	"github.com/cairn-db/cairn/internal/raftnode"
	"github.com/cairn-db/cairn/internal/server"
	"github.com/cairn-db/cairn/internal/storage/vfs"
	"github.com/cairn-db/cairn/internal/transport"
)

// Daemon is one running member.
type Daemon struct {
	cfg  Config
	log  *slog.Logger
	fs   vfs.FS
	reg  *prometheus.Registry
	lock interface{ Close() error }

	clientLns   []*splitListener
	peerLns     []net.Listener
	grpc        *grpc.Server
	joinMembers []server.Member // the running cluster's members, when joining it
	selfOnce    sync.Once
	selfCli     *clientv3.Client // this member's own client (see self)
	httpSrvs    []*http.Server
	tr          *transport.Transport
	node        *raftnode.Node
	srv         *server.Server
	wg          sync.WaitGroup
	stopc       chan struct{}
	peers       map[uint64]bool // only the applier, through updatePeers
	faults      *faults         // nil unless built with -tags failpoints

	// ClientAddrs are the bound client listener addresses (for tests using port 0).
	ClientAddrs []string
	// PeerAddrs are the bound peer listener addresses.
	PeerAddrs []string
}

// identity is stored in the data dir at bootstrap; on restart it wins over
// the bootstrap flags, as etcd's data dir does.
type identity struct {
	Version   int    `json:"version"`
	Name      string `json:"name"`
	MemberID  uint64 `json:"memberID"`
	ClusterID uint64 `json:"clusterID"`
	Token     string `json:"token"`
}

// Start starts a member. The returned Daemon runs until Stop or a fatal
// error (reported on Done/Err).
func Start(cfg Config, logger *slog.Logger, fs vfs.FS) (*Daemon, error) {
	d := &Daemon{cfg: cfg, log: logger, fs: fs, reg: prometheus.NewRegistry(), stopc: make(chan struct{})}
	if err := d.start(); err != nil {
		close(d.stopc)
		d.closeAll()
		d.wg.Wait()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) start() error {
	cfg, fs := d.cfg, d.fs
	if failpoint.Enabled {
		f, efs, err := newFaults(cfg.Failpoints, fs)
		if err != nil {
			return err
		}
		d.faults, d.fs, fs = f, efs, efs
		d.log.Warn("this binary injects faults (built with -tags failpoints)", "failpoints", f.set.String())
	}
	d.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// 1. Listeners first: an occupied port is the most common start failure.
	for _, u := range cfg.ListenClientURLs {
		ln, err := listen(u, "--listen-client-urls")
		if err != nil {
			return err
		}
		sl := newSplitListener(ln)
		d.clientLns = append(d.clientLns, sl)
		d.ClientAddrs = append(d.ClientAddrs, ln.Addr().String())
	}
	for _, u := range cfg.ListenPeerURLs {
		ln, err := listen(u, "--listen-peer-urls")
		if err != nil {
			return err
		}
		d.peerLns = append(d.peerLns, ln)
		d.PeerAddrs = append(d.PeerAddrs, ln.Addr().String())
	}

	// 2. Data dir.
	memberDir := filepath.Join(cfg.DataDir, "member")
	if err := vfs.MkdirAllSync(fs, memberDir, 0o700); err != nil {
		return fmt.Errorf("cannot create data dir %s (--data-dir): %w", cfg.DataDir, err)
	}
	lock, err := fs.Lock(filepath.Join(cfg.DataDir, "cairn.lock"))
	if err != nil {
		return fmt.Errorf("data dir %s (--data-dir) is in use by another cairn process or not writable: %w", cfg.DataDir, err)
	}
	d.lock = lock
	id, peers, isNew, err := d.loadIdentity(memberDir)
	if err != nil {
		return err
	}
	d.log = d.log.With("member", fmt.Sprintf("%x", id.MemberID))

	// 3. Transport, raft node, server.
	rr := &lazyRaft{}
	d.tr, err = transport.New(transport.Config{ID: id.MemberID, ClusterID: id.ClusterID, Raft: rr, Logger: d.log.With("component", "transport"), Registerer: d.reg,
		OnStreamLost: rr.PeerLost})
	if err != nil {
		return err
	}
	tickMs := cfg.HeartbeatInterval
	ticker := time.NewTicker(tickMs)
	d.wg.Add(1)
	go func() { // the ticker lives as long as the daemon
		defer d.wg.Done()
		<-d.stopc
		ticker.Stop()
	}()
	electionTicks := int(cfg.ElectionTimeout / cfg.HeartbeatInterval)
	metadata, _ := json.Marshal(id)
	node, restored, err := raftnode.Start(raftnode.Config{
		ID:              id.MemberID,
		Peers:           peers,
		Join:            d.joinMembers != nil,
		Metadata:        metadata,
		FS:              fs,
		WALDir:          filepath.Join(memberDir, "wal"),
		SnapDir:         filepath.Join(memberDir, "snap"),
		ElectionTicks:   electionTicks,
		HeartbeatTicks:  1,
		Ticks:           ticker.C,
		CatchUpEntries:  cfg.SnapshotCatchUpEntries,
		Transport:       d.raftTransport(),
		Logger:          d.log.With("component", "raft"),
		Metrics:         raftnode.NewMetrics(d.reg),
		MutantSkipFsync: d.mutant(func(f *faults) bool { return f.skipFsync() }),
	})
	if err != nil {
		return fmt.Errorf("cannot start raft from data dir %s: %w", cfg.DataDir, err)
	}
	d.node = node
	rr.set(node)
	if !isNew {
		var stored identity
		if json.Unmarshal(restored.Metadata, &stored) == nil && stored.MemberID != id.MemberID {
			return fmt.Errorf("data dir %s is inconsistent: its WAL belongs to member %x but its identity file says %x", cfg.DataDir, stored.MemberID, id.MemberID)
		}
	}
	clientURLs := make([]string, len(cfg.AdvertiseClientURLs))
	for i, u := range cfg.AdvertiseClientURLs {
		clientURLs[i] = u.String()
	}
	d.srv, err = server.New(server.Config{
		MemberID:          id.MemberID,
		ClusterID:         id.ClusterID,
		Name:              id.Name,
		ClientURLs:        clientURLs,
		Node:              node,
		Restored:          restored.Snapshot,
		SnapshotCount:     cfg.SnapshotCount,
		RequestTimeout:    5*time.Second + 2*cfg.ElectionTimeout,
		HeartbeatInterval: cfg.HeartbeatInterval,
		ElectionTimeout:   cfg.ElectionTimeout,
		MaxRequestBytes:   cfg.MaxRequestBytes,
		OnMembersChanged: func(ms []server.Member) {
			d.updatePeers(id.MemberID, ms)
		},
		Logger:           d.log.With("component", "server"),
		Registerer:       d.reg,
		MutantStaleReads: d.mutant(func(f *faults) bool { return f.staleReads() }),
		MutantCorrupt:    d.mutant(func(f *faults) bool { return f.corrupt() }),
		HashPeer: func() server.HashPeer {
			if cfg.CorruptCheckInterval <= 0 {
				return nil
			}
			return hashPeer
		}(),
		CorruptCheckInterval: cfg.CorruptCheckInterval,
		QuotaBytes:           cfg.QuotaBackendBytes,
		MutantDropWatchEvent: func() func() int {
			if d.faults == nil {
				return nil
			}
			return d.faults.dropWatchEvery
		}(),
	})
	if err != nil {
		return fmt.Errorf("cannot restore state from data dir %s: %w", cfg.DataDir, err)
	}

	if d.joinMembers != nil {
		// Our log is empty: reach the running members now, so that the
		// leader's first messages can be answered.
		d.updatePeers(id.MemberID, d.joinMembers)
	}

	// 4. Serve peers, then clients.
	for _, ln := range d.peerLns {
		hs := &http.Server{Handler: d.peerHandler(), ReadHeaderTimeout: 10 * time.Second}
		d.httpSrvs = append(d.httpSrvs, hs)
		d.wg.Add(1)
		go func() { defer d.wg.Done(); _ = hs.Serve(ln) }()
	}
	d.grpc = grpcapi.NewServer(grpcapi.Config{Server: d.srv, MaxTxnOps: cfg.MaxTxnOps, ElectionTimeout: cfg.ElectionTimeout, Self: d.self,
		Raft: raftInfo{n: node, fs: fs, dirs: []string{filepath.Join(memberDir, "wal"), filepath.Join(memberDir, "snap")}}},
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes+512*1024),
		grpc.MaxSendMsgSize(math.MaxInt32),
		grpc.MaxConcurrentStreams(math.MaxUint32),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}),
	)
	mux := d.httpMux()
	for _, sl := range d.clientLns {
		d.wg.Add(2)
		go func() { defer d.wg.Done(); _ = d.grpc.Serve(sl.grpc) }()
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		d.httpSrvs = append(d.httpSrvs, hs)
		go func() { defer d.wg.Done(); _ = hs.Serve(sl.http) }()
	}
	for _, u := range cfg.ListenMetricsURLs {
		ln, err := listen(u, "--listen-metrics-urls")
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		d.httpSrvs = append(d.httpSrvs, hs)
		d.wg.Add(1)
		go func() { defer d.wg.Done(); _ = hs.Serve(ln) }()
	}

	// 5. Background duties.
	ctx, cancel := context.WithCancel(context.Background())
	d.wg.Add(2)
	go func() {
		defer d.wg.Done()
		<-d.stopc
		cancel()
	}()
	go func() {
		defer d.wg.Done()
		if err := d.srv.Publish(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("could not publish member attributes", "err", err)
		}
	}()
	d.wg.Add(1)
	go func() { defer d.wg.Done(); newIdleGC().run(ctx) }()
	if err := d.startCompactor(ctx); err != nil {
		return err
	}
	d.log.Info("cairn member started", "name", id.Name, "cluster", fmt.Sprintf("%x", id.ClusterID),
		"client-urls", d.ClientAddrs, "peer-urls", d.PeerAddrs, "data-dir", cfg.DataDir, "new", isNew)
	return nil
}

func (d *Daemon) raftTransport() raftnode.Transport {
	if d.faults != nil {
		return faultyTransport{f: d.faults, inner: d.tr}
	}
	return d.tr
}

func (d *Daemon) mutant(on func(*faults) bool) func() bool {
	if d.faults == nil {
		return nil
	}
	return func() bool { return on(d.faults) }
}

// Err returns a channel that yields a fatal error (from raft or apply).
func (d *Daemon) Err() <-chan error {
	errc := make(chan error, 1)
	go func() {
		select {
		case err := <-d.node.Errors():
			errc <- err
		case err := <-d.srv.Errors():
			errc <- err
		case <-d.stopc:
		}
	}()
	return errc
}

// Stop shuts the member down gracefully: in-flight client calls get up to
// a few seconds to finish, then raft stops and the WAL is closed.
func (d *Daemon) Stop() {
	select {
	case <-d.stopc:
		return
	default:
	}
	close(d.stopc)
	d.log.Info("stopping cairn member")
	if d.srv != nil {
		// Watch streams never end by themselves: end them, so the graceful
		// stop below waits only for unary calls in flight.
		d.srv.Watches().Stop()
	}
	// Our own client's streams (Lock, Election) would hold up the graceful
	// stop as well.
	d.closeSelf()
	if d.grpc != nil {
		done := make(chan struct{})
		go func() { d.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			d.grpc.Stop()
		}
	}
	d.closeAll()
	d.wg.Wait()
	d.log.Info("cairn member stopped")
}

// self returns a client of this member's own API over an in-memory
// connection, made on first use (the Lock and Election services).
func (d *Daemon) self() *clientv3.Client {
	d.selfOnce.Do(func() {
		sl := d.clientLns[0]
		cli, err := clientv3.New(clientv3.Config{
			Endpoints: []string{"cairn-self:0"}, // the dialer ignores it
			DialOptions: []grpc.DialOption{grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
				return sl.dialGRPC(ctx)
			})},
			Logger: zap.NewNop(),
		})
		if err != nil {
			// clientv3.New fails only on a bad configuration, which this is not.
			panic(fmt.Sprintf("daemon: own client: %v", err))
		}
		d.selfCli = cli
	})
	return d.selfCli
}

// closeSelf closes the member's own client; none is made after it.
func (d *Daemon) closeSelf() {
	d.selfOnce.Do(func() {})
	if d.selfCli != nil {
		_ = d.selfCli.Close()
	}
}

func (d *Daemon) closeAll() {
	d.closeSelf()
	for _, sl := range d.clientLns {
		sl.Close()
	}
	for _, ln := range d.peerLns {
		ln.Close()
	}
	// Peer streams and idle client connections are not work in flight:
	// close them rather than wait for them.
	for _, hs := range d.httpSrvs {
		_ = hs.Close()
	}
	if d.grpc != nil {
		d.grpc.Stop()
	}
	if d.node != nil {
		d.node.Stop()
	}
	if d.srv != nil {
		d.srv.Stop()
	}
	if d.tr != nil {
		d.tr.Stop()
	}
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
}

// updatePeers keeps the transport's peer set equal to the member table.
// Only the applier calls it, one call at a time.
func (d *Daemon) updatePeers(self uint64, ms []server.Member) {
	now := make(map[uint64]bool, len(ms))
	for _, m := range ms {
		if m.ID == self {
			continue
		}
		now[m.ID] = true
		d.tr.AddPeer(m.ID, m.PeerURLs)
	}
	for id := range d.peers {
		if !now[id] {
			d.tr.RemovePeer(id)
		}
	}
	d.peers = now
}

// loadIdentity reads the member's identity from the data dir, or derives it
// from the bootstrap flags and stores it when the data dir is new.
func (d *Daemon) loadIdentity(memberDir string) (id identity, peers []raft.Peer, isNew bool, err error) {
	cfg := d.cfg
	path := filepath.Join(memberDir, "identity.json")
	if b, err := readFile(d.fs, path); err == nil {
		if err := json.Unmarshal(b, &id); err != nil {
			return id, nil, false, fmt.Errorf("data dir %s: corrupt identity file %s: %v", cfg.DataDir, path, err)
		}
		if id.Name != cfg.Name {
			return id, nil, false, fmt.Errorf("data dir %s belongs to member %q (id %x) of cluster %x, not to --name %q", cfg.DataDir, id.Name, id.MemberID, id.ClusterID, cfg.Name)
		}
		d.log.Info("using existing data dir; bootstrap flags (--initial-cluster*) are ignored", "data-dir", cfg.DataDir)
		return id, nil, false, nil
	}
	if cfg.InitialClusterState == "existing" {
		id, members, err := d.joinIdentity()
		if err != nil {
			return id, nil, false, err
		}
		d.joinMembers = members
		b, _ := json.MarshalIndent(id, "", "  ")
		if err := writeFileSync(d.fs, path, b); err != nil {
			return id, nil, false, fmt.Errorf("cannot write to data dir %s (--data-dir): %w", cfg.DataDir, err)
		}
		return id, nil, true, nil
	}
	members, id := initialMembers(cfg.InitialCluster, cfg.InitialClusterToken, cfg.Name)
	for _, m := range members {
		ctx, _ := json.Marshal(m)
		peers = append(peers, raft.Peer{ID: m.ID, Context: ctx})
	}
	b, _ := json.MarshalIndent(id, "", "  ")
	if err := writeFileSync(d.fs, path, b); err != nil {
		return id, nil, false, fmt.Errorf("cannot write to data dir %s (--data-dir): %w", cfg.DataDir, err)
	}
	return id, peers, true, nil
}

// hashPeer asks member m for its HashKV at rev through its client URL.
func hashPeer(ctx context.Context, m server.Member, rev int64) (server.PeerHash, error) {
	u, err := url.Parse(m.ClientURLs[0])
	if err != nil {
		return server.PeerHash{}, err
	}
	conn, err := grpc.NewClient(u.Host, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return server.PeerHash{}, err
	}
	defer conn.Close()
	r, err := pb.NewMaintenanceClient(conn).HashKV(ctx, &pb.HashKVRequest{Revision: rev})
	if err != nil {
		return server.PeerHash{}, err
	}
	return server.PeerHash{Hash: r.Hash, CompactRev: r.CompactRevision}, nil
}

// initialMembers derives a new cluster's members from --initial-cluster and
// --initial-cluster-token, sorted by name, and the identity of member name.
func initialMembers(initial map[string][]url.URL, token, name string) ([]server.Member, identity) {
	names := make([]string, 0, len(initial))
	for n := range initial {
		names = append(names, n)
	}
	sort.Strings(names)
	var members []server.Member
	var ids []uint64
	id := identity{Version: 1, Name: name, Token: token}
	for _, n := range names {
		urls := urlStrings(initial[n])
		mid := server.MemberID(urls, token)
		ids = append(ids, mid)
		members = append(members, server.Member{ID: mid, Name: n, PeerURLs: urls})
		if n == name {
			id.MemberID = mid
		}
	}
	id.ClusterID = server.ClusterID(ids, token)
	return members, id
}

func urlStrings(us []url.URL) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.String()
	}
	sort.Strings(out)
	return out
}

func listen(u url.URL, flag string) (net.Listener, error) {
	ln, err := net.Listen("tcp", u.Host)
	if err != nil {
		if errors.Is(err, errAddrInUse) {
			return nil, fmt.Errorf("cannot listen on %s (%s): the address is already in use", u.Host, flag)
		}
		return nil, fmt.Errorf("cannot listen on %s (%s): %w", u.Host, flag, err)
	}
	return ln, nil
}

// lazyRaft lets the transport exist before the raft node it delivers to.
type lazyRaft struct {
	mu sync.RWMutex // protects n
	n  *raftnode.Node
}

func (l *lazyRaft) set(n *raftnode.Node) {
	l.mu.Lock()
	l.n = n
	l.mu.Unlock()
}

func (l *lazyRaft) get() *raftnode.Node {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.n
}

var errNotReady = errors.New("raft node not started yet")

func (l *lazyRaft) Process(ctx context.Context, m *raftpb.Message) error {
	if n := l.get(); n != nil {
		return n.Process(ctx, m)
	}
	return errNotReady
}

func (l *lazyRaft) ReportUnreachable(id uint64) {
	if n := l.get(); n != nil {
		n.ReportUnreachable(id)
	}
}

func (l *lazyRaft) PeerLost(id uint64) {
	if n := l.get(); n != nil {
		go n.PeerLost(id) // never block the transport's handler
	}
}

func (l *lazyRaft) ReportSnapshot(id uint64, failed bool) {
	if n := l.get(); n != nil {
		n.ReportSnapshot(id, failed)
	}
}

type raftInfo struct {
	n    *raftnode.Node
	fs   vfs.FS
	dirs []string
}

func (r raftInfo) CommittedIndex() uint64 { return r.n.CommittedIndex() }

// StateSize reports the bytes the member's WAL segments and snapshot files
// take on disk (etcd reports its database file's size here).
func (r raftInfo) StateSize() int64 {
	var total int64
	for _, dir := range r.dirs {
		names, err := r.fs.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, name := range names {
			if fi, err := r.fs.Stat(filepath.Join(dir, name)); err == nil && !fi.IsDir() {
				total += fi.Size()
			}
		}
	}
	return total
}

// Server returns the member's server (for tests and the HTTP API).
func (d *Daemon) Server() *server.Server { return d.srv }
