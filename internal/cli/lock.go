package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/cairn-db/cairn/cairnclient"
)

// The lock verb: etcdctl's `lock`, a clientv3/concurrency Mutex held by a
// session whose lease cairn keeps alive. The helpers for sessions are shared
// with elect.go.

// errSessionExpired is returned by lock and elect when the session's lease
// ended (expired, was revoked, or was not renewed within its TTL) while they
// held the lock or the leadership. Exit code 1.
var errSessionExpired = errors.New("session expired")

// defaultSessionTTL is the default --ttl of lock and elect, in seconds.
const defaultSessionTTL = 60

// The environment of a command run under `cairn lock`: etcdctl's two
// variables and the fencing token.
const (
	lockKeyEnv      = "ETCD_LOCK_KEY"       // the lock's key, NAME/<lease ID in hex>
	lockRevEnv      = "ETCD_LOCK_REV"       // the revision at which the lock was acquired
	fencingTokenEnv = "CAIRN_FENCING_TOKEN" // the key's create revision (cairnclient.MutexToken)
)

// exitCodeError ends a verb with exit code code and no message of its own:
// lock passes on the exit status of its command.
type exitCodeError struct{ code int }

func (e *exitCodeError) Error() string { return "exit status " + strconv.Itoa(e.code) }

// lockOptions are the flags and arguments of `lock`.
type lockOptions struct {
	ttl  int
	name string
	argv []string // the command run while holding the lock; none: hold until interrupted
}

func (o *lockOptions) register(fs *flag.FlagSet) {
	registerTTL(fs, &o.ttl, "lock")
}

// registerTTL registers --ttl, the session lease's TTL of lock and elect.
func registerTTL(fs *flag.FlagSet, ttl *int, what string) {
	fs.IntVar(ttl, "ttl", defaultSessionTTL, "TTL of the session's lease, in `SECONDS`: the "+what+" is given up this long after cairn dies or loses the cluster")
}

// checkTTL validates --ttl.
func checkTTL(ttl int) error {
	if ttl <= 0 {
		return usagef("--ttl must be a positive number of seconds, got %d", ttl)
	}
	return nil
}

// setArgs validates the flags and takes NAME [COMMAND [ARGS...]].
func (o *lockOptions) setArgs(args []string) error {
	switch {
	case len(args) == 0:
		return usagef("lock needs NAME (and optionally a COMMAND to run while holding it)")
	case args[0] == "":
		return usagef("NAME must not be empty")
	}
	if err := checkTTL(o.ttl); err != nil {
		return err
	}
	o.name, o.argv = args[0], args[1:]
	return nil
}

// lockEnv returns environ with ETCD_LOCK_KEY, ETCD_LOCK_REV and
// CAIRN_FENCING_TOKEN set, replacing inherited values (a command under a
// nested `cairn lock` sees the inner lock).
func lockEnv(environ []string, key string, rev, token int64) []string {
	env := make([]string, 0, len(environ)+3)
	for _, kv := range environ {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case lockKeyEnv, lockRevEnv, fencingTokenEnv:
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		lockKeyEnv+"="+key,
		lockRevEnv+"="+strconv.FormatInt(rev, 10),
		fencingTokenEnv+"="+strconv.FormatInt(token, 10))
}

// commandExitCode is the exit code cairn passes on for a command that ended
// with ps: its exit status, or 128+N when signal N killed it (as shells
// report it).
func commandExitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func lockVerb() *verb {
	return &verb{
		name:    "lock",
		args:    "NAME [-- COMMAND [ARGS...]]",
		summary: "hold a distributed lock until interrupted, or while a command runs",
		help: `Acquires the lock NAME, as etcdctl lock does: a clientv3/concurrency Mutex
whose key NAME/<lease ID> lives under a session lease that cairn keeps alive.
Waits while another client holds it. If cairn dies or loses the cluster, the
lock is given up once the lease expires, --ttl seconds later.

Without COMMAND it prints the lock's key as etcdctl does (the key, then its
empty value, on lines of their own), holds the lock until interrupted
(SIGINT or SIGTERM), releases it and exits 0.

With COMMAND it runs COMMAND while holding the lock, releases the lock and
exits with COMMAND's exit status (128+N when signal N killed it). Put "--"
before COMMAND when it has flags. COMMAND inherits cairn's stdin, stdout,
stderr and environment, plus:

  ETCD_LOCK_KEY        the lock's key (as etcdctl sets it)
  ETCD_LOCK_REV        the revision at which the lock was acquired (as etcdctl)
  CAIRN_FENCING_TOKEN  the fencing token: the key's create revision; pass it
                       to guarded writes (cairnclient.WithFence)

An interrupt sends SIGTERM to COMMAND; the lock is released once it exits.

If the session's lease ends while the lock is held (it expired or was
revoked), cairn prints "cairn: lock NAME lost: session expired" on stderr,
sends SIGTERM to COMMAND and exits 1.

Output (without COMMAND): table prints etcdctl's text; -o json prints the
key's get response ({"header":{...},"kvs":[{"key":...,"create_revision":...}],
"count":1}); -o value prints the key.`,
		register: func(fs *flag.FlagSet) any {
			o := &lockOptions{}
			o.register(fs)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*lockOptions)
			if err := o.setArgs(args); err != nil {
				return err
			}
			return inv.lock(ctx, o)
		},
	}
}

// lock acquires the lock and holds it until interrupted or runs the command.
func (inv *invocation) lock(ctx context.Context, o *lockOptions) error {
	var cmd *exec.Cmd
	if len(o.argv) > 0 {
		// Looked up before taking the lock, so that a typo fails at once.
		if cmd = exec.Command(o.argv[0], o.argv[1:]...); cmd.Err != nil {
			return cmd.Err
		}
	}
	s, err := inv.newSession(ctx, o.ttl)
	if err != nil {
		return err
	}
	defer inv.endSession(ctx, s)
	cli := s.Client()

	lost := fmt.Errorf("lock %s lost: %w", o.name, errSessionExpired)
	m := concurrency.NewMutex(s, o.name)
	if err := waitHolding(ctx, s, lost, m.Lock); err != nil {
		return err
	}
	if cmd != nil {
		return inv.runLocked(ctx, cli, s, m, cmd, lost)
	}

	return inv.hold(ctx, cli, s, m.Key(), lost, inv.printer().lockHeld, m.Unlock)
}

// hold prints what lock or elect holds (key's get response, through print),
// then holds it until interrupted, when release gives it back, or until the
// session ends (lost).
func (inv *invocation) hold(ctx context.Context, cli *clientv3.Client, s *concurrency.Session, key string, lost error,
	print func(*clientv3.GetResponse) error, release func(context.Context) error) error {
	rctx, cancel := inv.requestContext(ctx)
	resp, err := cli.Get(rctx, key)
	cancel()
	switch {
	case err != nil:
		return err
	case len(resp.Kvs) == 0:
		return lost
	}
	if err := print(resp); err != nil {
		return err
	}
	select {
	case <-ctx.Done(): // interrupted: how a lock or a leadership is given back
		rctx, cancel := inv.releaseContext(ctx)
		defer cancel()
		return release(rctx)
	case <-s.Done():
		return lost
	}
}

// runLocked runs cmd while m is held and releases m. It returns an
// *exitCodeError carrying cmd's exit status when that is not 0.
func (inv *invocation) runLocked(ctx context.Context, cli *clientv3.Client, s *concurrency.Session, m *concurrency.Mutex, cmd *exec.Cmd, lost error) error {
	rctx, cancel := inv.requestContext(ctx)
	token, err := cairnclient.MutexToken(rctx, cli, m)
	cancel()
	switch {
	case s.Ctx().Err() != nil:
		return lost
	case err != nil:
		return err
	case ctx.Err() != nil:
		return ctx.Err() // interrupted before the command started
	}
	cmd.Env = lockEnv(os.Environ(), m.Key(), m.Header().Revision, token)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inv.stdin, inv.stdout, inv.stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	waitc := make(chan error, 1)
	go func() { waitc <- cmd.Wait() }()
	select {
	case err = <-waitc:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM) // pass the interrupt on
		err = <-waitc
	case <-s.Done():
		// Say so now: the command may take a while to stop.
		fmt.Fprintf(inv.stderr, "cairn: %v\n", lost)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-waitc
		return &exitCodeError{code: exitError}
	}
	uerr := inv.unlock(ctx, m)
	if cmd.ProcessState == nil { // waiting for it failed
		return err
	}
	code := commandExitCode(cmd.ProcessState)
	switch {
	case code != 0:
		if uerr != nil {
			fmt.Fprintf(inv.stderr, "cairn: releasing lock %s: %v\n", m.Key(), requestErrorText(uerr))
		}
		return &exitCodeError{code: code}
	case err != nil:
		return err // the command succeeded but copying its output failed
	}
	return uerr
}

// unlock releases m, bounded by --command-timeout, also after an interrupt.
func (inv *invocation) unlock(ctx context.Context, m *concurrency.Mutex) error {
	rctx, cancel := inv.releaseContext(ctx)
	defer cancel()
	return m.Unlock(rctx)
}

// newSession connects (detached from ctx, see connectDetached), grants a
// lease of ttl seconds (bounded by --command-timeout) and returns a session
// that keeps it alive. endSession ends it and closes its client.
func (inv *invocation) newSession(ctx context.Context, ttl int) (*concurrency.Session, error) {
	cli, err := inv.connectDetached(ctx)
	if err != nil {
		return nil, err
	}
	rctx, cancel := inv.requestContext(ctx)
	resp, err := cli.Grant(rctx, int64(ttl))
	cancel()
	if err != nil {
		cli.Close()
		return nil, err
	}
	s, err := concurrency.NewSession(cli, concurrency.WithLease(resp.ID), concurrency.WithTTL(ttl))
	if err != nil {
		rctx, cancel := inv.releaseContext(ctx)
		_, _ = cli.Revoke(rctx, resp.ID)
		cancel()
		cli.Close()
		return nil, err
	}
	return s, nil
}

// endSession stops renewing s's lease and revokes it, deleting any key still
// held under it. A lease that cannot be revoked (gone, or no member answers
// within --command-timeout) ends by itself after its TTL. Then it closes the
// session's client.
func (inv *invocation) endSession(ctx context.Context, s *concurrency.Session) {
	s.Orphan()
	rctx, cancel := inv.releaseContext(ctx)
	_, _ = s.Client().Revoke(rctx, s.Lease())
	cancel()
	s.Client().Close()
}

// waitHolding runs wait (Mutex.Lock, Election.Campaign) under a context that
// ends when ctx does (an interrupt: ctx.Err()) or when s's lease ends
// (lost).
func waitHolding(ctx context.Context, s *concurrency.Session, lost error, wait func(context.Context) error) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.Ctx(), cancel)
	defer stop()
	err := wait(wctx)
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case s.Ctx().Err() != nil, errors.Is(err, concurrency.ErrSessionExpired):
		return lost
	}
	return err
}

// lockHeld prints the lock's key once held: etcdctl's text (the key and its
// empty value, each on a line), its get response in -o json, the key in -o
// value.
func (p printer) lockHeld(r *clientv3.GetResponse) error {
	return p.etcdctlKVs(r, func(kv *mvccpb.KeyValue) []byte { return kv.Key })
}

// etcdctlKVs prints r as etcdctl's simple printer does (the key and the
// value of each pair, raw, each on a line), its get response in -o json, or
// value(kv) of each pair in -o value.
func (p printer) etcdctlKVs(r *clientv3.GetResponse, value func(*mvccpb.KeyValue) []byte) error {
	switch p.format {
	case outputJSON:
		return p.json(toJSONRange((*pb.RangeResponse)(r), false, true))
	case outputValue:
		for _, kv := range r.Kvs {
			if err := p.lines(string(value(kv))); err != nil {
				return err
			}
		}
		return nil
	}
	for _, kv := range r.Kvs {
		if err := p.lines(string(kv.Key), string(kv.Value)); err != nil {
			return err
		}
	}
	return nil
}
