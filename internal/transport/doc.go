// Package transport moves raft messages between Cairn members over HTTP on the
// peer URLs (e.g. http://10.0.0.2:2380).
//
// # What it owns
//
// Per peer: a bounded message queue, a sender goroutine that owns one
// long-lived streaming POST to the peer, and a snapshot goroutine. On the
// receiving side: the HTTP handler that decodes frames and steps them into raft
// through the consumer-owned Raft interface. It does not own the listener or
// the http.Server (internal/daemon does), nor any raft state.
//
// # Entry points
//
//	t, err := transport.New(transport.Config{ID: id, ClusterID: cid, Raft: node, Logger: log, Registerer: reg})
//	peerServer.Handler = t.Handler()          // or mount under a mux
//	t.AddPeer(2, []string{"http://10.0.0.2:2380"})
//	t.Send(rd.Messages)                        // from the Ready loop; never blocks
//	t.UpdatePeer / t.RemovePeer                // on conf changes
//	t.Stop()                                   // before stopping raft
//
// Send only enqueues: a full queue or an unknown peer drops the message (raft
// retransmits) and bumps cairn_transport_messages_dropped_total. The sender
// goroutine drains everything queued (up to 1 MiB of frames) into one batch and
// writes it into the request body of the peer's stream. A failed write or
// connection drops the batch, calls Raft.ReportUnreachable(peer), waits 50 ms
// (100 ms when failing repeatedly) and reconnects, rotating through the peer's
// URLs. MsgSnap messages bypass the queue: a separate goroutine sends each one
// as its own POST, streaming Data straight from the message, then calls
// Raft.ReportSnapshot(peer, failed). A MsgSnap that cannot even be queued is
// reported failed from Send itself. The Raft methods may be called
// concurrently from these goroutines and from HTTP handlers.
//
// # Wire format
//
// Every request carries X-Cairn-Member-From, X-Cairn-Member-To and
// X-Cairn-Cluster-ID (lowercase hex). The receiver answers 400 when they are
// missing, 412 (body naming both cluster IDs) when the cluster differs, 409 when
// the request is for another member; in each case nothing reaches raft and the
// sender logs the answer at Error, at most every 5 s per peer.
//
//	POST /raft/stream    body: frames until the sender closes it; 204 at the end.
//	                     frame = uint32 big-endian length || protobuf raftpb.Message.
//	                     Length > MaxFrameSize (512 MiB) fails the stream (400).
//	                     Frames whose To is not the receiver are dropped.
//	POST /raft/snapshot  body: one frame holding the MsgSnap with Snapshot.Data
//	                     empty || uint64 big-endian len(Data) || Data.
//	                     204 once Raft.Process accepted it, else an error status.
//	GET  /raft/probe     200 "ok" with the member and cluster ID headers.
//
// A Raft.Process error on the stream is logged at Debug and the stream goes
// on. The stream handler clears the connection's read deadline, so the peer
// http.Server may use ReadTimeout/ReadHeaderTimeout for other endpoints.
//
// Decoding takes a fast path for the common message shapes (one allocation per
// message instead of one per field) and falls back to proto.Unmarshal for
// anything else; FuzzFastDecode checks that both agree.
//
// # Why a stream rather than one POST per batch
//
// BenchmarkBatch64 and BenchmarkThroughput compare both (the per-batch mode
// survives only as a test knob). On 2 heavily shared cores over loopback a
// 64-message batch took 65-100 µs from Send to the last Raft.Process on the
// stream against 180-300 µs with a POST per batch; with 2048 messages in
// flight both sustained roughly 0.6-1.2 M messages/s (batches grow while a
// POST is outstanding). The stream wins on latency, which is what heartbeats
// and commit latency feel, and never loses clearly on rate, so it is the mode.
// BenchmarkCodec64 isolates the CPU cost of encoding and decoding one batch.
//
// # Shutdown
//
// Stop closes the queues, cancels every in-flight request, sets the read
// deadline of connections being served so handlers return, waits for every
// goroutine and handler call, and closes idle connections. After Stop returns
// Raft is never called again. RemovePeer cancels that peer's goroutines
// without waiting for them.
//
// # Metrics (when Config.Registerer is set)
//
//	cairn_transport_messages_sent_total{to}
//	cairn_transport_messages_dropped_total{to,reason}  queue_full|send_failed|unknown_peer|stopped|wrong_member
//	cairn_transport_send_failures_total{to}
//	cairn_transport_messages_received_total{from}
//	cairn_transport_snapshots_sent_total{to,result}    ok|failed
//
// # Imports and tests
//
// Imports go.etcd.io/raft/v3/raftpb (types only), protobuf, prometheus and the
// standard library; nothing from Cairn. Tests run real Transports on
// httptest loopback listeners with a recording fake Raft:
//
//	go test -race ./internal/transport/
//	go test -run XXX -bench . ./internal/transport/
//	go test -run XXX -fuzz FuzzFrameDecoder -fuzztime 20s ./internal/transport/
//
// Randomized tests print their seed; rerun with -transport.seed=N or
// TRANSPORT_SEED=N.
package transport
