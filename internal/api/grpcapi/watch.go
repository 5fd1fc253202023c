package grpcapi

import (
	"context"
	"errors"
	"io"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/metadata"

	"github.com/cairn-db/cairn/internal/mvcc"
	"github.com/cairn-db/cairn/internal/watch"
)

// watchServer is etcd's Watch service: one watch.Stream per gRPC stream, a
// receive loop that turns requests into Create/Cancel/RequestProgress, and
// a send loop that drains the stream's responses.
type watchServer struct {
	pb.UnimplementedWatchServer
	kv              *kvServer
	reg             *watch.Registry
	electionTimeout time.Duration
	headers         headerCache
}

func (w *watchServer) Watch(stream pb.Watch_WatchServer) error {
	ctx := stream.Context()
	requireLeader := false
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get(rpctypes.MetadataRequireLeaderKey) {
			requireLeader = requireLeader || v == rpctypes.MetadataHasLeader
		}
	}
	if requireLeader && w.kv.s.Leader() == 0 {
		return rpctypes.ErrGRPCNoLeader
	}
	ws := w.reg.NewStream()
	defer ws.Close()

	errc := make(chan error, 1)
	go func() { errc <- w.recvLoop(stream, ws) }()

	// With WithRequireLeader, a member that lost its leader for three
	// election timeouts ends the stream, so the client moves elsewhere.
	var leaderCheck <-chan time.Time
	if requireLeader {
		t := time.NewTicker(w.electionTimeout)
		defer t.Stop()
		leaderCheck = t.C
	}
	noLeaderSince := time.Time{}
	var batch []watch.Response
	var msgs []any
	for {
		select {
		case <-ws.Ready():
			// Send everything queued, then look again: one write often
			// queues a response for each watcher of the stream.
			for {
				var ok bool
				if batch, ok = ws.Take(batch); !ok {
					// The member is stopping: Unavailable sends clientv3 to
					// another member, where it resumes from its last revision.
					return rpctypes.ErrGRPCStopped
				}
				if len(batch) == 0 {
					break
				}
				msgs = w.messages(batch, msgs[:0])
				for _, m := range msgs {
					if err := stream.SendMsg(m); err != nil {
						return err
					}
				}
				clear(msgs) // drop our pointers into the batch's arena: gRPC hands it back once written
				ws.Sent(batch)
			}
		case err := <-errc:
			if err == nil || errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		case <-leaderCheck:
			if w.kv.s.Leader() != 0 {
				noLeaderSince = time.Time{}
			} else if noLeaderSince.IsZero() {
				noLeaderSince = time.Now()
			} else if time.Since(noLeaderSince) >= 3*w.electionTimeout {
				return rpctypes.ErrGRPCNoLeader
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func (w *watchServer) recvLoop(stream pb.Watch_WatchServer, ws *watch.Stream) error {
	for {
		req, err := stream.Recv()
		if err != nil {
			return err
		}
		switch u := req.RequestUnion.(type) {
		case *pb.WatchRequest_CreateRequest:
			c := u.CreateRequest
			if c == nil {
				continue
			}
			cr := watch.CreateRequest{
				WatchID: c.WatchId, Key: c.Key, End: c.RangeEnd, StartRev: c.StartRevision,
				PrevKV: c.PrevKv, ProgressNotify: c.ProgressNotify, Fragment: c.Fragment,
			}
			for _, f := range c.Filters {
				switch f {
				case pb.WatchCreateRequest_NOPUT:
					cr.NoPut = true
				case pb.WatchCreateRequest_NODELETE:
					cr.NoDelete = true
				}
			}
			ws.Create(cr)
		case *pb.WatchRequest_CancelRequest:
			if u.CancelRequest != nil {
				ws.Cancel(u.CancelRequest.WatchId)
			}
		case *pb.WatchRequest_ProgressRequest:
			ws.RequestProgress()
		}
	}
}

// messages appends to out what the send loop hands to gRPC for each
// response of batch: events responses assembled from their pre-encoded
// parts (see watchcodec.go) in one arena for the whole batch, anything
// else converted to a WatchResponse.
func (w *watchServer) messages(batch []watch.Response, out []any) []any {
	term := w.kv.s.Term()
	header := func(rev int64) []byte {
		return w.headers.get(rev, term, func() *pb.ResponseHeader {
			return &pb.ResponseHeader{ClusterId: w.kv.s.ClusterID(), MemberId: w.kv.s.MemberID(), Revision: rev, RaftTerm: term}
		})
	}
	var events eventsMemo
	n, size := 0, 0
	for i := range batch {
		if r := &batch[i]; assemblable(r) {
			n++
			size += assembledSize(header(r.Revision), r, events.get(r))
		}
	}
	var a *arena
	if n > 0 {
		a = newArena(n, size)
	}
	for i := range batch {
		if r := &batch[i]; assemblable(r) {
			out = append(out, a.assemble(header(r.Revision), r, events.get(r)))
		} else {
			out = append(out, w.toPB(*r))
		}
	}
	return out
}

func (w *watchServer) toPB(r watch.Response) *pb.WatchResponse {
	resp := &pb.WatchResponse{
		Header:          w.kv.header(r.Revision),
		WatchId:         r.WatchID,
		Created:         r.Created,
		Canceled:        r.Canceled,
		CancelReason:    r.CancelReason,
		CompactRevision: r.CompactRevision,
		Fragment:        r.Fragment,
	}
	if len(r.Events) > 0 {
		resp.Events = make([]*mvccpb.Event, len(r.Events))
		for i := range r.Events {
			resp.Events[i] = eventToPB(&r.Events[i])
		}
	}
	return resp
}

func eventToPB(e *mvcc.Event) *mvccpb.Event {
	ev := &mvccpb.Event{Kv: kvToPB(e.KV), PrevKv: kvToPB(e.PrevKV)}
	if e.Type == mvcc.EventDelete {
		ev.Type = mvccpb.DELETE
	}
	return ev
}
