package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc/connectivity"
)

// errNoMember is returned when no endpoint answered within --dial-timeout.
var errNoMember = errors.New("no member answered")

// noMemberError names each endpoint and why it did not answer.
type noMemberError struct {
	endpoints []string
	reasons   []string
}

func (e *noMemberError) Error() string {
	parts := make([]string, len(e.endpoints))
	for i, ep := range e.endpoints {
		parts[i] = fmt.Sprintf("%s (%s)", ep, e.reasons[i])
	}
	return fmt.Sprintf("%v at %s; check --endpoints or %s", errNoMember, strings.Join(parts, ", "), endpointsEnv)
}

func (e *noMemberError) Unwrap() error { return errNoMember }

// connect dials the members named by --endpoints (see dial).
func (inv *invocation) connect(ctx context.Context) (*clientv3.Client, error) {
	eps, err := inv.g.endpointList()
	if err != nil {
		return nil, err
	}
	return inv.dial(ctx, eps)
}

// dial connects to endpoints and waits, at most --dial-timeout, until one of
// them accepts a gRPC connection. When none does it returns a *noMemberError
// (errors.Is errNoMember) naming the endpoints and the reason; a closed port
// fails at once instead of waiting for the timeout.
func (inv *invocation) dial(ctx context.Context, endpoints []string) (*clientv3.Client, error) {
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: inv.g.dialTimeout,
		Logger:      zap.NewNop(),
		Context:     ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", strings.Join(endpoints, ","), err)
	}
	if err := waitReady(ctx, cli, endpoints, inv.g.dialTimeout); err != nil {
		cli.Close()
		return nil, err
	}
	return cli, nil
}

func waitReady(ctx context.Context, cli *clientv3.Client, endpoints []string, timeout time.Duration) error {
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn := cli.ActiveConnection()
	conn.Connect()
	for {
		st := conn.GetState()
		switch st {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			conn.Connect()
		case connectivity.TransientFailure:
			// Find out why; if every endpoint refuses outright, say so now.
			if reasons, allDown := probe(dctx, endpoints); allDown {
				return &noMemberError{endpoints: endpoints, reasons: reasons}
			}
		}
		if !conn.WaitForStateChange(dctx, st) {
			if err := ctx.Err(); err != nil {
				return err
			}
			pctx, pcancel := context.WithTimeout(ctx, timeout)
			reasons, _ := probe(pctx, endpoints)
			pcancel()
			for i, r := range reasons {
				if r == "" {
					reasons[i] = fmt.Sprintf("no gRPC answer within %v", timeout)
				}
			}
			return &noMemberError{endpoints: endpoints, reasons: reasons}
		}
	}
}

// probe opens a TCP connection to each endpoint. reasons[i] is empty when
// endpoint i accepted; allDown reports that none did.
func probe(ctx context.Context, endpoints []string) (reasons []string, allDown bool) {
	reasons = make([]string, len(endpoints))
	var wg sync.WaitGroup
	for i, ep := range endpoints {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d net.Dialer
			c, err := d.DialContext(ctx, "tcp", hostPort(ep))
			if err != nil {
				reasons[i] = dialReason(err)
				return
			}
			c.Close()
		}()
	}
	wg.Wait()
	allDown = true
	for _, r := range reasons {
		if r == "" {
			allDown = false
		}
	}
	return reasons, allDown
}

// hostPort strips a URL scheme from an endpoint.
func hostPort(ep string) string {
	if i := strings.Index(ep, "://"); i >= 0 {
		ep = ep[i+3:]
	}
	return strings.TrimSuffix(ep, "/")
}

// dialReason turns a dial error into a few words.
func dialReason(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.As(err, &dnsErr):
		return "unknown host " + dnsErr.Name
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "unreachable"
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Err != nil {
		return opErr.Err.Error()
	}
	return err.Error()
}

// requestContext bounds one request by --command-timeout.
func (inv *invocation) requestContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, inv.g.commandTimeout)
}

// withClient connects to --endpoints (see connect), runs fn with the client
// and a context bounded by --command-timeout (see requestContext), and closes
// the client. It serves the verbs that make bounded requests; watch and lease
// keepalive run until interrupted and connect themselves.
func (inv *invocation) withClient(ctx context.Context, fn func(rctx context.Context, cli *clientv3.Client) error) error {
	cli, err := inv.connect(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	rctx, cancel := inv.requestContext(ctx)
	defer cancel()
	return fn(rctx, cli)
}

// connectDetached is connect for the verbs that hold something until
// interrupted (lock, elect) and must give it back after ctx ends: an
// interrupt during the dial aborts it, but the client returned outlives ctx,
// so that its session lease is still kept alive while the verb releases the
// lock or resigns (clientv3 stops every keepalive when its context ends).
// The caller closes the client.
func (inv *invocation) connectDetached(ctx context.Context) (*clientv3.Client, error) {
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, cancel)
	cli, err := inv.connect(dctx)
	if !stop() { // interrupted during the dial
		cancel()
		if err == nil {
			cli.Close()
		}
		return nil, ctx.Err()
	}
	// dctx is never canceled from here on: it holds nothing (its parent
	// never ends), and Close ends the client's own context.
	return cli, err
}

// releaseContext bounds by --command-timeout a request that gives back what
// a verb holds (unlock, resign, revoke); it runs after an interrupt too.
func (inv *invocation) releaseContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), inv.g.commandTimeout)
}
