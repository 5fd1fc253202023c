// Package cairnclient adds Cairn's extensions to an etcd clientv3.Client:
// sequential keys, fencing tokens and guarded writes. Everything else is
// plain clientv3.
//
//	key, _, err := cairnclient.CreateSequential(ctx, cli, "queue/job-", "payload", 0)
//
//	s, _ := concurrency.NewSession(cli)
//	m := concurrency.NewMutex(s, "locks/db")
//	m.Lock(ctx)
//	token, _ := cairnclient.MutexToken(ctx, cli, m)
//	// Rejected with FailedPrecondition once another client holds the lock,
//	// however late this request reaches the server:
//	_, err = cli.Put(cairnclient.WithFence(ctx, "locks/db", token), "db/config", "v2")
package cairnclient

import (
	"context"
	"fmt"
	"strconv"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3lock/v3lockpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/cairn-db/cairn/api/cairnpb"
)

// The gRPC metadata keys of a guarded write and of the Lock service's
// fencing token (the server's own names, repeated here so that clients do
// not import server code).
const (
	fenceLockKey    = "cairn-fence-lock"
	fenceTokenKey   = "cairn-fence-token"
	fencingTokenKey = "cairn-fencing-token"
)

// CreateSequential creates prefix followed by a 20-digit number greater than
// that of every key created before (the write's revision) and returns the
// key and the revision. With a lease other than 0 the key is ephemeral.
func CreateSequential(ctx context.Context, cli *clientv3.Client, prefix, value string, lease clientv3.LeaseID) (string, int64, error) {
	resp, err := cairnpb.NewCoordinationClient(cli.ActiveConnection()).CreateSequential(ctx,
		&cairnpb.CreateSequentialRequest{Prefix: []byte(prefix), Value: []byte(value), Lease: int64(lease)})
	if err != nil {
		return "", 0, rpctypes.Error(err) // etcd's errors, as clientv3 returns them
	}
	return string(resp.Key), resp.Revision, nil
}

// WithFence returns a context whose Put, Delete and Txn calls are applied
// only while token is the fencing token of lock's holder.
func WithFence(ctx context.Context, lock string, token int64) context.Context {
	return metadata.AppendToOutgoingContext(ctx, fenceLockKey, lock, fenceTokenKey, strconv.FormatInt(token, 10))
}

// MutexToken returns the fencing token of a held clientv3 Mutex: the create
// revision of its key.
func MutexToken(ctx context.Context, cli *clientv3.Client, m *concurrency.Mutex) (int64, error) {
	resp, err := cli.Get(ctx, m.Key())
	if err != nil {
		return 0, err
	}
	if len(resp.Kvs) != 1 {
		return 0, fmt.Errorf("cairnclient: the mutex key %q is gone: the lock is lost", m.Key())
	}
	return resp.Kvs[0].CreateRevision, nil
}

// Lock takes lock name through the Lock service under lease (kept alive by
// the caller) and returns the lock's key and fencing token.
func Lock(ctx context.Context, cli *clientv3.Client, name string, lease clientv3.LeaseID) (string, int64, error) {
	var md metadata.MD
	resp, err := v3lockpb.NewLockClient(cli.ActiveConnection()).Lock(ctx,
		&v3lockpb.LockRequest{Name: []byte(name), Lease: int64(lease)}, grpc.Header(&md))
	if err != nil {
		return "", 0, rpctypes.Error(err)
	}
	vals := md.Get(fencingTokenKey)
	if len(vals) != 1 {
		return "", 0, fmt.Errorf("cairnclient: the server sent no fencing token (is it Cairn?)")
	}
	token, err := strconv.ParseInt(vals[0], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("cairnclient: bad fencing token %q", vals[0])
	}
	return string(resp.Key), token, nil
}
