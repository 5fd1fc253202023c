package transport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// fakeRaft records everything the transport hands to raft.
type fakeRaft struct {
	hook func(m *raftpb.Message) error // optional, called by Process before recording

	mu          sync.Mutex // protects the fields below
	msgs        []*raftpb.Message
	unreachable map[uint64]int
	snapReports []snapReport
}

type snapReport struct {
	id     uint64
	failed bool
}

func newFakeRaft() *fakeRaft { return &fakeRaft{unreachable: make(map[uint64]int)} }

func (f *fakeRaft) Process(ctx context.Context, m *raftpb.Message) error {
	var err error
	if f.hook != nil {
		err = f.hook(m)
	}
	if ctx.Err() != nil {
		return ctx.Err() // as raft's Step: a canceled step does not happen
	}
	f.mu.Lock()
	f.msgs = append(f.msgs, m)
	f.mu.Unlock()
	return err
}

func (f *fakeRaft) ReportUnreachable(id uint64) {
	f.mu.Lock()
	f.unreachable[id]++
	f.mu.Unlock()
}

func (f *fakeRaft) ReportSnapshot(id uint64, failed bool) {
	f.mu.Lock()
	f.snapReports = append(f.snapReports, snapReport{id, failed})
	f.mu.Unlock()
}

func (f *fakeRaft) received() []*raftpb.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*raftpb.Message(nil), f.msgs...)
}

func (f *fakeRaft) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.msgs)
}

func (f *fakeRaft) unreachableCount(id uint64) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.unreachable[id]
}

func (f *fakeRaft) snapshots() []snapReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]snapReport(nil), f.snapReports...)
}

// fromPeer returns the received messages sent by id, in arrival order.
func (f *fakeRaft) fromPeer(id uint64) []*raftpb.Message {
	var out []*raftpb.Message
	for _, m := range f.received() {
		if m.GetFrom() == id {
			out = append(out, m)
		}
	}
	return out
}

// logSink is a slog.Handler keeping records for assertions.
type logSink struct {
	mu   sync.Mutex // protects the field below
	recs []string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler       { return s }
func (s *logSink) WithGroup(string) slog.Handler            { return s }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	s.mu.Lock()
	s.recs = append(s.recs, b.String())
	s.mu.Unlock()
	return nil
}

func (s *logSink) find(substr ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
next:
	for _, r := range s.recs {
		for _, x := range substr {
			if !strings.Contains(r, x) {
				continue next
			}
		}
		return r
	}
	return ""
}

// node is one member under test: a Transport served by an httptest server.
type node struct {
	id   uint64
	tr   *Transport
	raft *fakeRaft
	srv  *httptest.Server
	reg  *prometheus.Registry
	logs *logSink
	url  string
}

type nodeOpt func(*Config, *fakeRaft)

func withQueueSize(n int) nodeOpt     { return func(c *Config, _ *fakeRaft) { c.QueueSize = n } }
func withClusterID(id uint64) nodeOpt { return func(c *Config, _ *fakeRaft) { c.ClusterID = id } }
func withHook(h func(*raftpb.Message) error) nodeOpt {
	return func(_ *Config, f *fakeRaft) { f.hook = h }
}

// startNode starts a member on addr ("" for any free port). Cleanup stops it.
func startNode(t testing.TB, id uint64, addr string, opts ...nodeOpt) *node {
	t.Helper()
	n := &node{id: id, raft: newFakeRaft(), reg: prometheus.NewRegistry(), logs: &logSink{}}
	cfg := Config{ID: id, ClusterID: 0xc1, Raft: n.raft, Registerer: n.reg, Logger: slog.New(n.logs)}
	for _, o := range opts {
		o(&cfg, n.raft)
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.tr = tr
	n.srv = httptest.NewUnstartedServer(tr.Handler())
	if addr != "" {
		n.srv.Listener.Close()
		var l net.Listener
		// The old listener on addr may take a moment to be released.
		for i := 0; ; i++ {
			l, err = net.Listen("tcp", addr)
			if err == nil || i == 200 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Fatal(err)
		}
		n.srv.Listener = l
	}
	n.srv.Start()
	n.url = n.srv.URL
	t.Cleanup(n.stop)
	return n
}

// stop stops the transport, then the server. Safe to call twice.
func (n *node) stop() {
	n.tr.Stop()
	n.srv.CloseClientConnections()
	n.srv.Close()
}

func startCluster(t testing.TB, ids ...uint64) []*node {
	t.Helper()
	nodes := make([]*node, len(ids))
	for i, id := range ids {
		nodes[i] = startNode(t, id, "")
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				a.tr.AddPeer(b.id, []string{b.url})
			}
		}
	}
	return nodes
}

func msg(typ raftpb.MessageType, from, to, index uint64) *raftpb.Message {
	return &raftpb.Message{
		Type:  typ.Enum(),
		From:  proto.Uint64(from),
		To:    proto.Uint64(to),
		Term:  proto.Uint64(3),
		Index: proto.Uint64(index),
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline. The deadline only turns a hang into a failure; it never decides a
// pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// counterValue sums the counter family name over series whose labels include want.
func counterValue(t testing.TB, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, want) {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

var errOdd = errors.New("fake raft: odd index rejected")
