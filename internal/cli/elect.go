package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// The elect verb: etcdctl's `elect`, a clientv3/concurrency Election. The
// session helpers are in lock.go.

// errObserverLost is returned by `elect --listen` when observing the
// election stopped without an interrupt (its watch ended). Exit code 1.
var errObserverLost = errors.New("observer lost")

// electOptions are the flags and arguments of `elect`.
type electOptions struct {
	ttl            int
	listen         bool
	name, proposal string
}

func (o *electOptions) register(fs *flag.FlagSet) {
	registerTTL(fs, &o.ttl, "leadership")
	fs.BoolVar(&o.listen, "listen", false, "print each leader (key and proposal) until interrupted, without campaigning")
	fs.BoolVar(&o.listen, "l", false, "short for --listen")
}

// setArgs validates the flags and takes NAME [PROPOSAL].
func (o *electOptions) setArgs(args []string) error {
	switch {
	case len(args) == 0 || len(args) > 2:
		return usagef("elect takes NAME and a PROPOSAL, or --listen and NAME; got %d arguments", len(args))
	case args[0] == "":
		return usagef("NAME must not be empty")
	case len(args) == 1 && !o.listen:
		return usagef("elect NAME needs a PROPOSAL to campaign with, or --listen to print the leaders")
	case len(args) == 2 && o.listen:
		return usagef("--listen takes no PROPOSAL")
	}
	if err := checkTTL(o.ttl); err != nil {
		return err
	}
	o.name = args[0]
	if len(args) == 2 {
		o.proposal = args[1]
	}
	return nil
}

func electVerb() *verb {
	return &verb{
		name:    "elect",
		args:    "NAME PROPOSAL | --listen NAME",
		summary: "campaign to lead an election until interrupted, or print its leaders",
		help: `Campaigns in the election NAME with PROPOSAL, as etcdctl elect does: a
clientv3/concurrency Election whose key NAME/<lease ID> lives under a session
lease that cairn keeps alive. Waits while another client leads. Once elected
it prints what etcdctl prints (the leader key, then PROPOSAL, on lines of
their own), leads until interrupted (SIGINT or SIGTERM), resigns and exits 0.
If cairn dies or loses the cluster, the leadership is given up once the
lease expires, --ttl seconds later.

If the session's lease ends while leading (it expired or was revoked),
cairn prints "cairn: elect NAME lost: session expired" and exits 1.

With --listen (-l) it does not campaign: it prints the current leader and
each change of leader or proposal until interrupted (exit 0).

Output: table prints etcdctl's text (the leader key and its proposal, each
on a line, per leader); -o json prints the leader key's get response
({"header":{...},"kvs":[{"key":...,"value":...}],...}) per leader; -o value
prints the proposal per leader.`,
		register: func(fs *flag.FlagSet) any {
			o := &electOptions{}
			o.register(fs)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*electOptions)
			if err := o.setArgs(args); err != nil {
				return err
			}
			s, err := inv.newSession(ctx, o.ttl)
			if err != nil {
				return err
			}
			defer inv.endSession(ctx, s)
			e := concurrency.NewElection(s, o.name)
			if o.listen {
				return inv.observe(ctx, e, o)
			}
			return inv.campaign(ctx, s.Client(), s, e, o)
		},
	}
}

// campaign waits to be elected, prints the leader key and leads until
// interrupted (then resigns) or the session ends.
func (inv *invocation) campaign(ctx context.Context, cli *clientv3.Client, s *concurrency.Session, e *concurrency.Election, o *electOptions) error {
	lost := fmt.Errorf("elect %s lost: %w", o.name, errSessionExpired)
	err := waitHolding(ctx, s, lost, func(wctx context.Context) error { return e.Campaign(wctx, o.proposal) })
	if err != nil {
		return err
	}
	return inv.hold(ctx, cli, s, e.Key(), lost, inv.printer().leader, e.Resign)
}

// observe prints the leaders of the election until interrupted (nil) or the
// observation stops (errObserverLost).
func (inv *invocation) observe(ctx context.Context, e *concurrency.Election, o *electOptions) error {
	octx, cancel := context.WithCancel(ctx)
	ch := e.Observe(octx)
	defer func() {
		cancel()
		for range ch { // Observe's goroutine closes ch when it returns
		}
	}()
	p := inv.printer()
	for {
		select {
		case <-ctx.Done():
			return nil
		case resp, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("elect %s: %w", o.name, errObserverLost)
			}
			if err := p.leader(resp); err != nil {
				return err
			}
		}
	}
}

// leader prints a leader of the election: etcdctl's text (its key and
// proposal, each on a line), the get response in -o json, the proposal in
// -o value.
func (p printer) leader(r *clientv3.GetResponse) error {
	return p.etcdctlKVs(r, func(kv *mvccpb.KeyValue) []byte { return kv.Value })
}
