package transport

import (
	"bytes"
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
)

// benchRaft counts processed messages and lets the benchmark wait for a count.
type benchRaft struct {
	mu     sync.Mutex // protects the fields below
	n      int
	target int // wake the waiter only when n reaches it
	cond   *sync.Cond
}

func newBenchRaft() *benchRaft {
	r := &benchRaft{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *benchRaft) Process(_ context.Context, _ *raftpb.Message) error {
	r.mu.Lock()
	r.n++
	wake := r.n == r.target
	r.mu.Unlock()
	if wake {
		r.cond.Broadcast()
	}
	return nil
}
func (r *benchRaft) ReportUnreachable(uint64)    {}
func (r *benchRaft) ReportSnapshot(uint64, bool) {}

func (r *benchRaft) waitAtLeast(n int) {
	r.mu.Lock()
	for r.n < n {
		r.target = n
		r.cond.Wait()
	}
	r.mu.Unlock()
}

// benchPair connects transport 1 to transport 2 over loopback.
func benchPair(b *testing.B, perBatchPOST bool) (*Transport, *benchRaft) {
	rb := newBenchRaft()
	tb, err := New(Config{ID: 2, ClusterID: 1, Raft: rb})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(tb.Handler())
	ta, err := New(Config{ID: 1, ClusterID: 1, Raft: newBenchRaft()})
	if err != nil {
		b.Fatal(err)
	}
	ta.perBatchPOST = perBatchPOST
	ta.AddPeer(2, []string{srv.URL})
	b.Cleanup(func() {
		ta.Stop()
		tb.Stop()
		srv.CloseClientConnections()
		srv.Close()
	})
	// Warm up the connection.
	ta.Send([]*raftpb.Message{msg(raftpb.MsgHeartbeat, 1, 2, 0)})
	rb.waitAtLeast(1)
	return ta, rb
}

func smallBatch(n int) []*raftpb.Message {
	out := make([]*raftpb.Message, n)
	for i := range out {
		m := msg(raftpb.MsgApp, 1, 2, uint64(i))
		m.Commit = &[]uint64{uint64(i)}[0]
		out[i] = m
	}
	return out
}

// BenchmarkBatch64 measures one batch of 64 small messages from Send until the
// receiver's raft has processed all of them (ns/op is the batch latency).
func BenchmarkBatch64(b *testing.B) {
	for _, mode := range []struct {
		name string
		post bool
	}{{"stream", false}, {"post-per-batch", true}} {
		b.Run(mode.name, func(b *testing.B) {
			ta, rb := benchPair(b, mode.post)
			batch := smallBatch(64)
			want := 1
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				ta.Send(batch)
				want += len(batch)
				rb.waitAtLeast(want)
			}
		})
	}
}

// BenchmarkThroughput measures messages/s with up to 2048 messages in flight.
func BenchmarkThroughput(b *testing.B) {
	for _, mode := range []struct {
		name string
		post bool
	}{{"stream", false}, {"post-per-batch", true}} {
		b.Run(mode.name, func(b *testing.B) {
			ta, rb := benchPair(b, mode.post)
			batch := smallBatch(64)
			sent := 1
			start := time.Now()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rb.waitAtLeast(sent - 2048)
				ta.Send(batch)
				sent += len(batch)
			}
			rb.waitAtLeast(sent)
			b.ReportMetric(float64(b.N*len(batch))/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkCodec64 is the CPU cost of framing 64 small messages and decoding
// them back (both ends of one batch, without the network).
func BenchmarkCodec64(b *testing.B) {
	batch := smallBatch(64)
	var buf []byte
	br := bytes.NewReader(nil)
	fr := newFrameReader(br)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = buf[:0]
		for _, m := range batch {
			var err error
			if buf, err = appendFrame(buf, m); err != nil {
				b.Fatal(err)
			}
		}
		br.Reset(buf)
		fr.r.Reset(br)
		for range batch {
			p, err := fr.next()
			if err != nil {
				b.Fatal(err)
			}
			if _, err := decodeMessage(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkEncode64(b *testing.B) {
	batch := smallBatch(64)
	var buf []byte
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = buf[:0]
		for _, m := range batch {
			buf, _ = appendFrame(buf, m)
		}
	}
}
