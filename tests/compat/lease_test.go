package compat

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-db/cairn/internal/daemon"
	"github.com/cairn-db/cairn/internal/testutil"
)

// Lease IDs chosen by the script. Only "grant auto id" asks the server for one.
const (
	leaseA       = 1001 // TTL 60: holds keys, then is revoked with them
	leaseB       = 1002 // TTL 60: takes a key over from A
	leaseMin     = 1003 // TTL 1, below the minimum: raised to it
	leaseNeg     = 1004 // TTL -5
	leaseTooBig  = 1005 // TTL above the maximum: refused
	leaseMaxTTL  = 1006 // TTL exactly the maximum
	leaseMissing = 4242 // never granted
)

// maxLeaseTTL is etcd's lease.MaxLeaseTTL, in seconds.
const maxLeaseTTL = 9_000_000_000

// leaseSide is one server under test and what the script learned from it.
type leaseSide struct {
	kv     pb.KVClient
	lease  pb.LeaseClient
	autoID int64 // the ID the server chose in "grant auto id"
}

func newLeaseSide(t *testing.T, ep string) *leaseSide {
	conn := dialConn(t, ep)
	return &leaseSide{kv: pb.NewKVClient(conn), lease: pb.NewLeaseClient(conn)}
}

// leaseStep runs one step against one server and renders what it saw,
// normalized for comparison.
type leaseStep struct {
	name string
	run  func(ctx context.Context, s *leaseSide) string
}

func kvStep(name string, req proto.Message) leaseStep {
	return leaseStep{name, func(ctx context.Context, s *leaseSide) string {
		return normalize(do(ctx, s.kv, req))
	}}
}

func grantStep(name string, id, ttl int64) leaseStep {
	return leaseStep{name, func(ctx context.Context, s *leaseSide) string {
		return normalize(s.lease.LeaseGrant(ctx, &pb.LeaseGrantRequest{ID: id, TTL: ttl}))
	}}
}

func revokeStep(name string, id int64) leaseStep {
	return leaseStep{name, func(ctx context.Context, s *leaseSide) string {
		return normalize(s.lease.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: id}))
	}}
}

func timeToLiveStep(name string, id int64, keys bool) leaseStep {
	return leaseStep{name, func(ctx context.Context, s *leaseSide) string {
		return normalizeTimeToLive(s.lease.LeaseTimeToLive(ctx, &pb.LeaseTimeToLiveRequest{ID: id, Keys: keys}))
	}}
}

func leasesStep(name string) leaseStep {
	return leaseStep{name, func(ctx context.Context, s *leaseSide) string {
		resp, err := s.lease.LeaseLeases(ctx, &pb.LeaseLeasesRequest{})
		if err == nil {
			sort.Slice(resp.Leases, func(i, j int) bool { return resp.Leases[i].ID < resp.Leases[j].ID })
		}
		return normalize(resp, err)
	}}
}

// keepAliveStep sends one request per id on one LeaseKeepAlive stream,
// reading each answer before the next request, then half-closes the stream
// and reads how it ends.
func keepAliveStep(name string, ids ...int64) leaseStep {
	return leaseStep{name, func(ctx context.Context, s *leaseSide) string {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := s.lease.LeaseKeepAlive(ctx)
		if err != nil {
			return "open: " + normalize(nil, err)
		}
		var out []string
		for _, id := range ids {
			// A failed Send reports only io.EOF; the stream's status comes
			// from Recv, which is rendered below.
			_ = stream.Send(&pb.LeaseKeepAliveRequest{ID: id})
			resp, err := stream.Recv()
			out = append(out, fmt.Sprintf("keepalive %d: %s", id, normalize(resp, err)))
		}
		if err := stream.CloseSend(); err != nil {
			out = append(out, "close send: "+normalize(nil, err))
		}
		resp, err := stream.Recv()
		switch {
		case errors.Is(err, io.EOF):
			out = append(out, "after close send: EOF")
		case err != nil:
			out = append(out, "after close send: "+normalize(nil, err))
		default:
			out = append(out, "after close send: unexpected "+normalize(resp, nil))
		}
		return strings.Join(out, "\n")
	}}
}

// normalizeTimeToLive sorts the keys (etcd lists them in map order) and
// replaces the remaining TTL of an existing lease, which depends on timing,
// by whether it lies within [GrantedTTL-2, GrantedTTL]. A missing lease
// (GrantedTTL 0, TTL -1) is rendered as is.
func normalizeTimeToLive(resp *pb.LeaseTimeToLiveResponse, err error) string {
	if err != nil {
		return normalize(nil, err)
	}
	sort.Slice(resp.Keys, func(i, j int) bool { return bytes.Compare(resp.Keys[i], resp.Keys[j]) < 0 })
	if resp.GrantedTTL <= 0 {
		return normalize(resp, nil)
	}
	remaining := resp.TTL
	resp.TTL = 0
	note := "remaining TTL within [granted-2, granted]"
	if remaining < resp.GrantedTTL-2 || remaining > resp.GrantedTTL {
		note = fmt.Sprintf("remaining TTL %d outside [granted-2, granted]", remaining)
	}
	return normalize(resp, nil) + "\n" + note
}

func putLease(k, v string, lease int64) *pb.PutRequest {
	return &pb.PutRequest{Key: b(k), Value: b(v), Lease: lease}
}

// leaseScript is deterministic: every lease lives 60 s except the two raised
// to the minimum TTL, which are revoked right after they are checked.
func leaseScript() []leaseStep {
	prefix := &pb.RangeRequest{Key: b("l/"), RangeEnd: b("l0")}
	return []leaseStep{
		grantStep("grant A ttl 60", leaseA, 60),
		grantStep("grant A again", leaseA, 60),
		grantStep("grant B ttl 60", leaseB, 60),
		grantStep("grant ttl above max", leaseTooBig, maxLeaseTTL+1),
		grantStep("grant ttl = max", leaseMaxTTL, maxLeaseTTL),
		grantStep("grant ttl 1 (raised to minimum)", leaseMin, 1),
		timeToLiveStep("timetolive min-ttl lease", leaseMin, true),
		revokeStep("revoke min-ttl lease", leaseMin),
		grantStep("grant negative ttl", leaseNeg, -5),
		timeToLiveStep("timetolive negative-ttl lease", leaseNeg, false),
		revokeStep("revoke negative-ttl lease", leaseNeg),
		{"grant auto id", func(ctx context.Context, s *leaseSide) string {
			resp, err := s.lease.LeaseGrant(ctx, &pb.LeaseGrantRequest{TTL: 60})
			if err != nil {
				return normalize(nil, err)
			}
			s.autoID = resp.ID
			return fmt.Sprintf("ID != 0: %v, TTL: %d, error: %q", resp.ID != 0, resp.TTL, resp.Error)
		}},
		{"revoke auto id lease", func(ctx context.Context, s *leaseSide) string {
			return normalize(s.lease.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: s.autoID}))
		}},

		kvStep("put l/1 lease A", &pb.PutRequest{Key: b("l/1"), Value: b("v1"), Lease: leaseA, PrevKv: true}),
		kvStep("put l/2 lease A", putLease("l/2", "v2", leaseA)),
		kvStep("put l/3 lease A", putLease("l/3", "v3", leaseA)),
		kvStep("put l/b lease B", putLease("l/b", "vb", leaseB)),
		kvStep("put missing lease", putLease("l/m", "x", leaseMissing)),
		kvStep("put missing lease on leased key", putLease("l/1", "x", leaseMissing)),
		kvStep("get leased keys", prefix),
		kvStep("put ignore lease keeps A", &pb.PutRequest{Key: b("l/1"), Value: b("v1b"), IgnoreLease: true, PrevKv: true}),
		kvStep("put ignore lease with lease", &pb.PutRequest{Key: b("l/1"), Value: b("x"), Lease: leaseA, IgnoreLease: true}),
		kvStep("get l/1 after ignore lease", &pb.RangeRequest{Key: b("l/1")}),
		kvStep("txn lease = A", &pb.TxnRequest{
			Compare: []*pb.Compare{cmpLease("l/1", pb.Compare_EQUAL, leaseA)},
			Success: []*pb.RequestOp{{Request: &pb.RequestOp_RequestPut{RequestPut: putLease("l/4", "v4", leaseA)}}, get("l/4", "")},
			Failure: []*pb.RequestOp{get("l/1", "")},
		}),
		kvStep("txn lease = B false", &pb.TxnRequest{
			Compare: []*pb.Compare{cmpLease("l/1", pb.Compare_EQUAL, leaseB)},
			Success: []*pb.RequestOp{put("l/x", "x")},
			Failure: []*pb.RequestOp{get("l/1", "")},
		}),
		kvStep("txn lease of missing key = 0", &pb.TxnRequest{
			Compare: []*pb.Compare{cmpLease("l/none", pb.Compare_EQUAL, 0)},
			Success: []*pb.RequestOp{get("l/none", "")},
		}),
		kvStep("txn lease > 0 over range", &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: b("l/"), RangeEnd: b("l0"), Target: pb.Compare_LEASE, Result: pb.Compare_GREATER, TargetUnion: &pb.Compare_Lease{Lease: 0}}},
			Success: []*pb.RequestOp{get("l/", "l0")},
		}),
		kvStep("txn lease < A over range", &pb.TxnRequest{
			Compare: []*pb.Compare{{Key: b("l/"), RangeEnd: b("l0"), Target: pb.Compare_LEASE, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_Lease{Lease: leaseA}}},
			Success: []*pb.RequestOp{put("l/x", "x")},
		}),
		kvStep("put l/2 moves to B", &pb.PutRequest{Key: b("l/2"), Value: b("v2b"), Lease: leaseB, PrevKv: true}),
		kvStep("put l/3 without lease detaches", &pb.PutRequest{Key: b("l/3"), Value: b("v3b"), PrevKv: true}),
		kvStep("get leased keys again", prefix),

		timeToLiveStep("timetolive A", leaseA, false),
		timeToLiveStep("timetolive A keys", leaseA, true),
		timeToLiveStep("timetolive B keys", leaseB, true),
		timeToLiveStep("timetolive max-ttl lease", leaseMaxTTL, true),
		timeToLiveStep("timetolive missing", leaseMissing, false),
		timeToLiveStep("timetolive missing keys", leaseMissing, true),
		leasesStep("leases"),

		keepAliveStep("keepalive A then missing", leaseA, leaseMissing),
		timeToLiveStep("timetolive A after keepalive", leaseA, true),

		{"revoke A deletes its keys in one revision", func(ctx context.Context, s *leaseSide) string {
			before, err := s.kv.Range(ctx, prefix)
			if err != nil {
				return "range before: " + normalize(nil, err)
			}
			rv, rvErr := s.lease.LeaseRevoke(ctx, &pb.LeaseRevokeRequest{ID: leaseA})
			after, err := s.kv.Range(ctx, prefix)
			if err != nil {
				return fmt.Sprintf("revoke: %s\nrange after: %s", normalize(rv, rvErr), normalize(nil, err))
			}
			return fmt.Sprintf("revoke: %s\nrange after: %s\nrevision delta: %d",
				normalize(rv, rvErr), normalize(after, nil), after.Header.Revision-before.Header.Revision)
		}},
		timeToLiveStep("timetolive A after revoke", leaseA, true),
		revokeStep("revoke A again", leaseA),
		revokeStep("revoke missing", leaseMissing),
		kvStep("put revoked lease", putLease("l/1", "x", leaseA)),
		keepAliveStep("keepalive revoked A", leaseA),
		leasesStep("leases after revoke"),

		revokeStep("revoke B", leaseB),
		revokeStep("revoke max-ttl lease", leaseMaxTTL),
		leasesStep("leases at end"),
		kvStep("get all at end", &pb.RangeRequest{Key: b("\x00"), RangeEnd: b("\x00")}),
	}
}

// TestLeaseMatchesEtcd sends the same Lease script to etcd and to a 1-member
// and a 3-member Cairn cluster and requires identical answers.
func TestLeaseMatchesEtcd(t *testing.T) {
	for _, size := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", size), func(t *testing.T) {
			etcdEP := testutil.StartEtcd(t)
			c := testutil.NewCluster(t, size, testutil.ClusterOptions{Mutate: func(cfg *daemon.Config) {
				// etcd's defaults, which StartEtcd keeps. The minimum lease
				// TTL derives from them: 3/2 of the election timeout, rounded
				// up to whole seconds (2 s).
				cfg.HeartbeatInterval = 100 * time.Millisecond
				cfg.ElectionTimeout = 1000 * time.Millisecond
			}})
			// Talk to a follower in the 3-member case: writes are forwarded.
			idx := 0
			if size == 3 {
				idx = (c.WaitLeader() + 1) % 3
			}
			compareLeaseScript(t, etcdEP, c.Members[idx].ClientURL)
		})
	}
}

// compareLeaseScript runs leaseScript step by step on etcd at etcdEP and on
// Cairn at cairnEP and reports every step whose answers differ.
func compareLeaseScript(t *testing.T, etcdEP, cairnEP string) {
	etcd, cairn := newLeaseSide(t, etcdEP), newLeaseSide(t, cairnEP)
	ctx := testutil.Ctx(t)
	script := leaseScript()
	var diffs []string
	for _, st := range script {
		want := st.run(ctx, etcd)
		got := st.run(ctx, cairn)
		if want != got {
			diffs = append(diffs, fmt.Sprintf("step %q:\n  etcd:  %s\n  cairn: %s", st.name, oneLine(want), oneLine(got)))
		}
	}
	if len(diffs) > 0 {
		t.Fatalf("%d of %d steps differ from etcd:\n%s", len(diffs), len(script), strings.Join(diffs, "\n"))
	}
}
