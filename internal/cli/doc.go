// Package cli is the `cairn` command line: Run dispatches the verb. `cairn
// serve` runs a node (serve.go, which calls internal/daemon); every other
// verb is a client built on go.etcd.io/etcd/client/v3, so etcdctl users feel
// at home.
//
// # Entry point
//
//	func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int
//
// args are the arguments after the program name. Exit codes: 0 success (a
// txn whose compares failed also exits 0), 1 a request failed or no member
// answered, 2 a usage error (bad flags or arguments, or a txn syntax error);
// `lock NAME -- COMMAND` exits with COMMAND's status.
//
// # Verbs (one file each)
//
//	get KEY [RANGE_END]   get.go      --prefix --from-key --limit --rev --keys-only --count-only --sort-by --order --serializable
//	put KEY [VALUE]       put.go      --lease (hex) --prev-kv --ignore-value --ignore-lease; VALUE from stdin when omitted;
//	                                  --sequential: KEY is a prefix, prints the key created (cairnclient.CreateSequential)
//	del KEY [RANGE_END]   del.go      --prefix --from-key --prev-kv; prints the number deleted
//	txn < TEXT            txn.go      the if/then/else language of txnparse.go (documented there and in `cairn txn --help`)
//	watch KEY [RANGE_END] watch.go    --prefix --rev --prev-kv --count --progress-notify; one line (or JSON object) per event
//	compact REV           compact.go  --physical
//	lock NAME [-- CMD]    lock.go     --ttl (60s); etcdctl's lock (a concurrency.Mutex): prints the key and holds it until
//	                                  interrupted, or runs CMD with ETCD_LOCK_KEY, ETCD_LOCK_REV and CAIRN_FENCING_TOKEN
//	                                  and exits with its status; a lost session ends it with exit 1 (SIGTERM to CMD)
//	elect NAME PROPOSAL   elect.go    --ttl (60s); etcdctl's elect (a concurrency.Election): prints the key and proposal
//	                                  once elected, leads until interrupted, then resigns; --listen/-l NAME prints each leader
//	lease grant TTL       lease.go    etcdctl's texts ("lease 694d5765fc71500b granted with TTL(60s)"); -o value prints the hex ID
//	lease revoke ID       lease.go    IDs in hexadecimal, as etcdctl prints them
//	lease keepalive ID    lease.go    --once; until interrupted (exit 0) or the lease expires or is revoked (exit 1) (alias: lease keep-alive)
//	lease ttl ID          lease.go    --keys; a missing lease prints "already expired", exit 0 (alias: lease timetolive)
//	lease list            lease.go    "found N leases" and the IDs, sorted
//	status                status.go   Maintenance.Status of each endpoint (alias: endpoint status)
//	health                health.go   a linearizable read on each endpoint (alias: endpoint health)
//	member list           member.go   --serializable
//	snapshot save FILE    snapshot.go Maintenance.Snapshot from the first of --endpoints into FILE.part (progress on a terminal),
//	                                  verified (server.ReadBackup), fsynced, renamed to FILE; "Snapshot saved at FILE"
//	snapshot status FILE  snapshot.go verifies FILE and prints its revision, keys, leases, members, size, creation, maker
//	snapshot restore FILE snapshot.go --data-dir --name --initial-cluster --initial-cluster-token --initial-advertise-peer-urls,
//	                                  parsed and checked by serve's parser (daemon.ParseConfig) with serve's defaults;
//	                                  daemon.Restore on the OS file system; refuses a data dir that holds a member
//	export [PREFIX]       export.go   --rev --with-leases (on); JSON lines on stdout, sorted by key, all at one revision, read
//	                                  1000 keys per request: {"key","value"}, "key_b64"/"value_b64" for bytes that are not
//	                                  UTF-8, "lease_ttl" (the lease's granted TTL); "exported N keys at revision R" on stderr
//	import FILE           import.go   --batch (128) --rate (50 txns/s) --skip-existing --from-line; FILE or - for stdin; each
//	                                  line checked before its txn (at most --batch puts, ~1 MiB) is sent; one new lease per
//	                                  distinct lease_ttl; a stop says "imported through line N; rerun with --from-line N+1"
//	help [VERB]           flags.go
//
// # Flags
//
// Each verb has its own flag.FlagSet that also carries the global flags
// (--endpoints, default 127.0.0.1:2379 or $CAIRN_ENDPOINTS; --dial-timeout
// 2s; --command-timeout 5s; -o/--output table|json|value), so global flags
// go before or after the verb. Flags may follow positional arguments
// (`cairn get foo --prefix`): reorderArgs moves them in front before parsing.
// "--" ends the flags, for values that start with '-'.
//
// # Output formats (output.go and each verb's printer)
//
//   - table (default): for humans. Aligned columns with a header (get prints
//     KEY VALUE; status, health and member list one row per endpoint or
//     member); put prints OK; del and --count-only print a number. Keys and
//     values that are empty, not valid UTF-8, have control characters or
//     surrounding spaces are shown Go-quoted. lock and elect print etcdctl's
//     text instead, raw: the key, then the value, each on a line.
//   - json: one JSON object per result, one per line (status and health: one
//     per endpoint), with etcd's snake_case field names (header.revision,
//     kvs[].create_revision, prev_kv, deleted, succeeded, responses[] with
//     response_range/response_put/response_delete_range, ...). Keys and
//     values are JSON strings, not base64; invalid UTF-8 becomes U+FFFD.
//     IDs are decimal numbers, as in etcd. lock and elect print the get
//     response of the lock or leader key; put --sequential prints
//     {"key":...,"revision":...}. snapshot save and status print the
//     file (path, size, sha256) and the backup's header (server.BackupInfo).
//   - value: for scripts. get prints only the values, raw, one per line (the
//     keys with --keys-only, the count with --count-only); put prints the
//     previous value with --prev-kv (the key with --sequential); lock
//     prints the key, elect the proposal; del and compact print a number; txn
//     prints SUCCESS or FAILURE and then the values of its ops; status,
//     health and member list print each row's fields separated by tabs.
//
// # Connecting
//
// connect.go dials with clientv3 (non-blocking gRPC) and then waits at most
// --dial-timeout for the connection to become ready. When it does not, the
// verb fails with exit code 1 and one line naming each endpoint and why:
//
//	cairn: no member answered at 127.0.0.1:2379 (connection refused); check --endpoints or CAIRN_ENDPOINTS
//
// A refused connection is reported at once (a TCP probe explains gRPC's
// transient failure); a silent port is reported after --dial-timeout. Each
// request then runs under --command-timeout.
//
// # Testing
//
//	go test ./internal/cli
//
// runs the txn parser table and error tests (errors name line and column),
// FuzzParseTxn's seed corpus, flag reordering and usage-error tests, golden
// output strings for every printer and format, and the no-member tests (a
// closed port fails fast, a silent one after the dial timeout). The
// integration tests (*_integration_test.go) run the verbs against an
// in-process Cairn cluster, or the cluster CAIRN_TEST_ENDPOINTS names, e.g.
// an etcd or cairn listening on 127.0.0.1:2379; the lease, lock and elect
// tests also run against a real etcd (skipped when its binaries are missing)
// and compare with etcdctl:
//
//	CAIRN_TEST_ENDPOINTS=127.0.0.1:2379 go test ./internal/cli -run Integration
//
// The snapshot integration test always starts its own clusters: it saves
// from one and restores into the on-disk data dirs of another. The snapshot
// unit tests save from in-memory readers into vfs.MemFS and vfs.ErrorFS.
package cli
