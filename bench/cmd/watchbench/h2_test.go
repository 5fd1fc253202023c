package main

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"google.golang.org/grpc"
)

// fakeWatch answers every create request with "created", then sends each
// watcher events for revisions base+1 … base+revs whose values are large
// enough that messages span DATA frames and both windows are returned; then it ends the stream with an error.
type fakeWatch struct {
	pb.UnimplementedWatchServer
	n, revs int
	base    int64
}

func (f *fakeWatch) Watch(stream pb.Watch_WatchServer) error {
	for id := range f.n {
		if _, err := stream.Recv(); err != nil {
			return err
		}
		if err := stream.Send(&pb.WatchResponse{WatchId: int64(id), Created: true}); err != nil {
			return err
		}
	}
	value := make([]byte, 40<<10)
	for r := range f.revs {
		copy(value, fmt.Sprintf("seq=%08d ", r))
		for id := range f.n {
			ev := &mvccpb.Event{Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: f.base + 1 + int64(r), Value: value}}
			if err := stream.Send(&pb.WatchResponse{WatchId: int64(id), Events: []*mvccpb.Event{ev}}); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("fake watch: done")
}

// The h2 client talks to grpc-go's server: it creates the watchers, reads
// every event of messages larger than a frame and than half the window,
// and reports the trailers' status when the server ends the stream.
func TestH2ClientAgainstGRPCServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	fw := &fakeWatch{n: 3, revs: 160, base: 100} // 19 MB: more than the connection window
	pb.RegisterWatchServer(srv, fw)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := dialH2(ctx, "http://"+lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tr := newTracker(fw.base, fw.revs)
	for i := range tr.acks {
		tr.acks[i].Store(1)
	}
	tr.segBase[0].Store(fw.base)
	s, err := openStream(ctx, c, tr, fw.n, []byte("k"), nil)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-ctx.Done():
		t.Fatal("stream did not end")
	}
	if got, want := s.distinct.Load(), int64(fw.n*fw.revs); got != want {
		t.Fatalf("received %d distinct events, want %d", got, want)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unexpected != 0 || s.segs[0].dups != 0 {
		t.Fatalf("unexpected %d, duplicated %d", s.unexpected, s.segs[0].dups)
	}
	if s.err == nil || !strings.Contains(s.err.Error(), "fake watch: done") {
		t.Fatalf("stream error %v, want the server's status", s.err)
	}
}
