package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

const maxSegs = 8 // writer rates per group

// ErrWatch is returned when a watch stream cannot be set up.
var ErrWatch = errors.New("watchbench: watch setup")

// tracker is what the receivers share with the writer: the ack time of
// every write, indexed by its revision, and where each segment (one writer
// rate) starts. Every write of the run has a revision in (base, base+len(acks)].
type tracker struct {
	epoch   time.Time
	base    int64
	acks    []atomic.Int64 // ns since epoch at which the Put of revision base+1+i was acknowledged; 0: not (yet)
	sends   []atomic.Int64 // ns since epoch at which the Put with sequence number i was sent
	segBase [maxSegs]atomic.Int64
}

func newTracker(base int64, writes int) *tracker {
	t := &tracker{epoch: time.Now(), base: base, acks: make([]atomic.Int64, writes), sends: make([]atomic.Int64, writes)}
	for i := range t.segBase {
		t.segBase[i].Store(math.MaxInt64)
	}
	return t
}

func (t *tracker) now() int64 { return int64(time.Since(t.epoch)) }

// segOf is the segment a revision was written in, -1 if none.
func (t *tracker) segOf(rev int64) int {
	for k := maxSegs - 1; k >= 0; k-- {
		if rev > t.segBase[k].Load() {
			return k
		}
	}
	return -1
}

// segStats is one stream's view of one segment.
type segStats struct {
	h     hist  // receipt − Put ack
	hSend hist  // receipt − Put sent
	dups  int64 // events for a (watcher, revision) already received
	early int64 // events received before the writer saw the Put's ack (latency counted as 0)
}

type pendingEvent struct {
	idx int64
	seg int
	at  int64
}

// wstream is one watch stream carrying n watchers. Its responses come to
// receive, from one goroutine at a time: the stream's own with -client
// grpc, its connection's with -client h2.
type wstream struct {
	t     *tracker
	ids   map[int64]int // watch ID -> watcher index on this stream (receiving goroutine only)
	byID  []int32       // the same for IDs in [0, len(byID)), -1 for none: the servers number a stream's watchers from 0
	n     int
	words int // bitset words per watcher

	distinct atomic.Int64  // first receipts of (watcher, revision) with a known revision
	created  chan struct{} // closed when every watcher has its "created" response

	mu         sync.Mutex // protects the fields below
	seen       []uint64   // n*words bits: watcher w got revision base+1+i
	pending    []pendingEvent
	resolvedAt int64 // tracker time of the last resolveLocked in receive
	segs       [maxSegs]segStats
	unexpected int64 // events outside the tracked revisions, unknown watch IDs, cancels
	err        error
	ended      bool
	done       chan struct{}
}

func newWstream(t *tracker, n int) *wstream {
	return &wstream{t: t, ids: make(map[int64]int, n), n: n, words: (len(t.acks) + 63) / 64,
		created: make(chan struct{}), done: make(chan struct{})}
}

// createRequests are the requests that create n watchers on [key, end)
// from the current revision.
func createRequests(n int, key, end []byte) []*pb.WatchRequest {
	reqs := make([]*pb.WatchRequest, n)
	for i := range reqs {
		reqs[i] = &pb.WatchRequest{RequestUnion: &pb.WatchRequest_CreateRequest{
			CreateRequest: &pb.WatchCreateRequest{Key: key, RangeEnd: end}}}
	}
	return reqs
}

// openStream opens a watch stream on conn, a *grpc.ClientConn or an
// *h2conn, creates n watchers on [key, end) from the current revision,
// pipelining the create requests, and waits for every "created" response.
func openStream(ctx context.Context, conn any, t *tracker, n int, key, end []byte) (*wstream, error) {
	s := newWstream(t, n)
	reqs := createRequests(n, key, end)
	switch c := conn.(type) {
	case *h2conn:
		if err := c.open(s, reqs); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWatch, err)
		}
	case *grpc.ClientConn:
		cli, err := pb.NewWatchClient(c).Watch(ctx, grpc.ForceCodecV2(newRawCodec()))
		if err != nil {
			return nil, fmt.Errorf("%w: open: %w", ErrWatch, err)
		}
		for _, req := range reqs {
			if err := cli.Send(req); err != nil {
				return nil, fmt.Errorf("%w: create: %w", ErrWatch, err)
			}
		}
		go s.recvLoop(cli)
	default:
		return nil, fmt.Errorf("%w: unknown connection type %T", ErrWatch, conn)
	}
	select {
	case <-s.created:
		return s, nil
	case <-s.done:
		s.mu.Lock()
		defer s.mu.Unlock()
		return nil, fmt.Errorf("%w: created: %w", ErrWatch, s.err)
	}
}

// recvLoop receives the responses of a grpc-go stream.
func (s *wstream) recvLoop(cli pb.Watch_WatchClient) {
	var raw rawMsg
	var resp lightResponse
	for {
		err := cli.RecvMsg(&raw)
		if err == nil {
			err = s.receive(raw.b, &resp)
		}
		if err != nil {
			if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "context canceled") {
				err = nil
			}
			s.end(err)
			return
		}
	}
}

// end marks the stream ended, with err unless nil.
func (s *wstream) end(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	s.ended = true
	if err == nil && len(s.ids) < s.n {
		err = errors.New("ended before every watcher was created")
	}
	if err != nil && s.err == nil {
		s.err = err
	}
	close(s.done)
}

// receive handles one WatchResponse, b (which it does not keep), using
// resp as scratch space. An error ends the stream.
func (s *wstream) receive(b []byte, resp *lightResponse) error {
	if err := decodeLight(b, resp); err != nil {
		return err
	}
	if len(s.ids) < s.n {
		return s.receiveCreated(resp)
	}
	now := s.t.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.watcher(resp.watchID)
	if !ok || resp.canceled || resp.compactRevision != 0 {
		s.unexpected++
		if resp.canceled && s.err == nil {
			s.err = fmt.Errorf("watch %d canceled: %s", resp.watchID, resp.cancelReason)
		}
		return nil
	}
	for _, ev := range resp.events {
		if !ev.hasKV {
			s.unexpected++
			continue
		}
		rev := ev.modRev
		i := rev - s.t.base - 1
		k := s.t.segOf(rev)
		if i < 0 || i >= int64(len(s.t.acks)) || k < 0 {
			s.unexpected++
			continue
		}
		word, bit := w*s.words+int(i/64), uint64(1)<<(i%64)
		if s.seen[word]&bit != 0 {
			s.segs[k].dups++
			continue
		}
		s.seen[word] |= bit
		s.distinct.Add(1)
		if seq, ok := parseSeq(ev.value); ok && seq < int64(len(s.t.sends)) {
			if sent := s.t.sends[seq].Load(); sent != 0 {
				s.segs[k].hSend.add(now - sent)
			}
		}
		ack := s.t.acks[i].Load()
		if ack == 0 {
			s.pending = append(s.pending, pendingEvent{idx: i, seg: k, at: now})
			continue
		}
		s.record(k, now-ack)
	}
	// Pending events keep their receipt time, so resolving them later
	// changes no figure; doing it at most once a millisecond keeps the
	// scan of the pending list off every message.
	if len(s.pending) > 0 && now-s.resolvedAt >= int64(time.Millisecond) {
		s.resolveLocked()
		s.resolvedAt = now
	}
	return nil
}

// watcher returns the index on this stream of the watcher with watch ID id.
func (s *wstream) watcher(id int64) (int, bool) {
	if id >= 0 && id < int64(len(s.byID)) {
		w := s.byID[id]
		return int(w), w >= 0
	}
	w, ok := s.ids[id]
	return w, ok
}

// receiveCreated handles a response while the watchers are being created.
func (s *wstream) receiveCreated(resp *lightResponse) error {
	if resp.canceled || !resp.created {
		return fmt.Errorf("%w: unexpected response (created=%v canceled=%v reason=%q)", ErrWatch, resp.created, resp.canceled, resp.cancelReason)
	}
	if _, dup := s.ids[resp.watchID]; dup {
		return fmt.Errorf("%w: watch ID %d created twice", ErrWatch, resp.watchID)
	}
	s.ids[resp.watchID] = len(s.ids)
	if len(s.ids) == s.n {
		maxID := int64(-1)
		for id := range s.ids {
			maxID = max(maxID, id)
		}
		if maxID < int64(4*s.n) {
			s.byID = make([]int32, maxID+1)
			for i := range s.byID {
				s.byID[i] = -1
			}
			for id, w := range s.ids {
				if id >= 0 {
					s.byID[id] = int32(w)
				}
			}
		}
		s.mu.Lock()
		s.seen = make([]uint64, s.n*s.words)
		s.mu.Unlock()
		close(s.created)
	}
	return nil
}

func (s *wstream) record(k int, d int64) {
	if d < 0 {
		s.segs[k].early++
		d = 0
	}
	s.segs[k].h.add(d)
}

// resolveLocked records the pending events whose write has been acked since.
func (s *wstream) resolveLocked() {
	keep := s.pending[:0]
	for _, p := range s.pending {
		if ack := s.t.acks[p.idx].Load(); ack != 0 {
			s.record(p.seg, p.at-ack)
		} else {
			keep = append(keep, p)
		}
	}
	s.pending = keep
}

// segResult is the receivers' summary of one segment.
type segResult struct {
	h          hist
	hSend      hist
	expected   int64
	received   int64 // distinct (watcher, acked write) pairs received
	lost       int64
	dups       int64
	early      int64
	unacked    int64 // events for writes whose Put never returned successfully
	unexpected int64
	streamErrs int
	firstErr   string
}

// summarize collects segment k over all streams; acked are the write
// indexes (revision-base-1) of the segment's acknowledged Puts.
func summarize(streams []*wstream, k int, acked []int64) segResult {
	var r segResult
	for _, s := range streams {
		s.mu.Lock()
		s.resolveLocked()
		for _, p := range s.pending {
			if p.seg == k {
				r.unacked++
			}
		}
		st := &s.segs[k]
		r.h.merge(&st.h)
		r.hSend.merge(&st.hSend)
		r.dups += st.dups
		r.early += st.early
		r.unexpected += s.unexpected
		for w := range s.n {
			row := s.seen[w*s.words : (w+1)*s.words]
			for _, i := range acked {
				r.expected++
				if row[i/64]&(uint64(1)<<(i%64)) != 0 {
					r.received++
				} else {
					r.lost++
				}
			}
		}
		if s.err != nil {
			r.streamErrs++
			if r.firstErr == "" {
				r.firstErr = s.err.Error()
			}
		}
		s.mu.Unlock()
	}
	return r
}

// dial opens one plain-text gRPC connection and waits until it is ready.
func dial(ctx context.Context, endpoint string, timeout time.Duration) (*grpc.ClientConn, error) {
	addr := hostPort(endpoint)
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err != nil {
		return nil, fmt.Errorf("watchbench: dial %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn.Connect()
	for {
		st := conn.GetState()
		if st == connectivity.Ready {
			return conn, nil
		}
		if !conn.WaitForStateChange(ctx, st) {
			_ = conn.Close()
			return nil, fmt.Errorf("watchbench: dial %s: not ready in %v (state %v)", addr, timeout, st)
		}
	}
}

// hostPort is the host:port of a member's client URL.
func hostPort(endpoint string) string {
	return strings.TrimPrefix(strings.TrimPrefix(endpoint, "http://"), "https://")
}

// parseSeq reads the sequence number from a value written by write
// ("seq=00000042 ...").
func parseSeq(v []byte) (int64, bool) {
	const p = "seq="
	if len(v) < len(p) || string(v[:len(p)]) != p {
		return 0, false
	}
	var n int64
	i := len(p)
	for ; i < len(v) && v[i] >= '0' && v[i] <= '9'; i++ {
		n = n*10 + int64(v[i]-'0')
	}
	return n, i > len(p)
}
