package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The lease verbs: grant, revoke, keepalive, ttl and list. Their table output
// is etcdctl's text, word for word, so that scripts written for etcdctl keep
// working; IDs are 16 hexadecimal digits, as etcdctl prints them.

// errLeaseGone is returned by `lease keepalive` when the lease expired or was
// revoked while it ran (or did not exist). Exit code 1.
var errLeaseGone = errors.New("expired or revoked")

// leaseSubVerbs names the lease sub-verbs for the error of a bare `cairn lease`.
const leaseSubVerbs = "grant, revoke, keepalive, ttl or list"

// leaseSubVerb maps a sub-verb as typed (etcdctl's names included) to the
// verb name.
func leaseSubVerb(sub string) (string, bool) {
	switch sub {
	case "grant", "revoke", "list", "ttl", "keepalive":
		return "lease " + sub, true
	case "timetolive": // etcdctl's name
		return "lease ttl", true
	case "keep-alive": // etcdctl's name
		return "lease keepalive", true
	}
	return "", false
}

// parseTTL parses a lease TTL: a positive number of seconds.
func parseTTL(s string) (int64, error) {
	ttl, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ttl <= 0 || strings.HasPrefix(s, "+") {
		return 0, fmt.Errorf("TTL must be a positive integer number of seconds, got %q", s)
	}
	return ttl, nil
}

// parseLeaseArg parses a lease ID as etcdctl prints it (hexadecimal, 0x
// optional). Unlike put --lease it refuses 0, which means "no lease", and
// signs.
func parseLeaseArg(s string) (clientv3.LeaseID, error) {
	id, err := parseLeaseID(s)
	switch {
	case err != nil || strings.ContainsAny(s, "+-"):
		return 0, fmt.Errorf("%q is not a hexadecimal lease ID (e.g. 694d5765fc71500b, as 'cairn lease grant' prints it)", s)
	case id == 0:
		return 0, fmt.Errorf("lease ID 0 means no lease")
	}
	return clientv3.LeaseID(id), nil
}

// leaseIDArgs takes the single ID argument of verb.
func leaseIDArgs(verb string, args []string) (clientv3.LeaseID, error) {
	if len(args) != 1 {
		return 0, usagef("%s takes exactly one argument: ID", verb)
	}
	id, err := parseLeaseArg(args[0])
	if err != nil {
		return 0, usagef("%v", err)
	}
	return id, nil
}

// leaseHex formats a lease ID as etcdctl does.
func leaseHex(id clientv3.LeaseID) string { return fmt.Sprintf("%016x", int64(id)) }

func leaseGrantVerb() *verb {
	return &verb{
		name:    "lease grant",
		args:    "TTL",
		summary: "create a lease that expires after TTL seconds",
		help: `Creates a lease with a time-to-live of TTL seconds (the server may raise a
very short TTL to its minimum). Attach keys with 'cairn put KEY VALUE --lease
ID'; they are deleted when the lease expires or is revoked. Keep the lease
alive with 'cairn lease keepalive ID'.

Output: table prints etcdctl's "lease 694d5765fc71500b granted with TTL(60s)";
-o json prints {"header":{...},"id":...,"ttl":60} (id in decimal); -o value
prints the hexadecimal ID, for scripts:

  cairn put KEY VALUE --lease "$(cairn lease grant 60 -o value)"`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			if len(args) != 1 {
				return usagef("lease grant takes exactly one argument: TTL (seconds)")
			}
			ttl, err := parseTTL(args[0])
			if err != nil {
				return usagef("%v", err)
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Grant(rctx, ttl)
				if err != nil {
					return err
				}
				return inv.printer().leaseGrant(resp)
			})
		},
	}
}

func leaseRevokeVerb() *verb {
	return &verb{
		name:    "lease revoke",
		args:    "ID",
		summary: "revoke a lease and delete its keys",
		help: `Revokes the lease ID (hexadecimal, as 'cairn lease grant' prints it) and
deletes every key attached to it. A lease that does not exist (expired or
already revoked) is an error: "etcdserver: requested lease not found", exit 1.

Output: table prints etcdctl's "lease 694d5765fc71500b revoked"; -o json
prints {"header":{...},"id":...}; -o value prints the hexadecimal ID.`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			id, err := leaseIDArgs("lease revoke", args)
			if err != nil {
				return err
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Revoke(rctx, id)
				if err != nil {
					return err
				}
				return inv.printer().leaseRevoke(id, resp)
			})
		},
	}
}

type leaseKeepAliveOptions struct {
	once bool
}

func leaseKeepAliveVerb() *verb {
	return &verb{
		name:    "lease keepalive",
		args:    "ID",
		summary: "keep a lease alive until interrupted",
		help: `Renews the lease ID (hexadecimal) about every third of its TTL and prints
each renewal, until interrupted (exit 0). When the lease expires or is revoked
(or does not exist), it prints etcdctl's "lease 694d5765fc71500b expired or
revoked." and exits 1 with the reason on stderr. A lost leader does not end
it: renewals are retried until the lease would have expired. With --once it
renews the lease once and exits; a lease that does not exist is then an
error ("etcdserver: requested lease not found"). Alias: 'cairn lease
keep-alive'.

--command-timeout bounds each renewal of --once (and the first one
otherwise), not the whole run.

Output: table prints etcdctl's "lease 694d5765fc71500b keepalived with
TTL(60)" per renewal; -o json prints {"header":{...},"id":...,"ttl":60} per
renewal; -o value prints the TTL per renewal.`,
		register: func(fs *flag.FlagSet) any {
			o := &leaseKeepAliveOptions{}
			fs.BoolVar(&o.once, "once", false, "renew the lease once and exit")
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*leaseKeepAliveOptions)
			id, err := leaseIDArgs("lease keepalive", args)
			if err != nil {
				return err
			}
			cli, err := inv.connect(ctx)
			if err != nil {
				return err
			}
			defer cli.Close()
			// One renewal first, also without --once: clientv3's KeepAlive
			// retries every error silently and would report a server
			// without the Lease service as an expired lease.
			rctx, cancel := inv.requestContext(ctx)
			resp, err := cli.KeepAliveOnce(rctx, id)
			cancel()
			switch {
			case errors.Is(err, rpctypes.ErrLeaseNotFound) && !o.once:
				return inv.printer().leaseGone(id)
			case err != nil:
				return err
			case o.once:
				return inv.printer().leaseKeepAlive(resp)
			}
			ch, err := cli.KeepAlive(ctx, id)
			if err != nil {
				return err
			}
			return inv.keepAliveLoop(ctx, id, ch)
		},
	}
}

// keepAliveLoop prints the renewals read from ch until ctx ends (nil: an
// interrupt is how keepalive ends) or ch closes while ctx is live: the lease
// expired or was revoked (errLeaseGone).
func (inv *invocation) keepAliveLoop(ctx context.Context, id clientv3.LeaseID, ch <-chan *clientv3.LeaseKeepAliveResponse) error {
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
				return p.leaseGone(id)
			}
			if err := p.leaseKeepAlive(resp); err != nil {
				return err
			}
		}
	}
}

type leaseTTLOptions struct {
	keys bool
}

func leaseTTLVerb() *verb {
	return &verb{
		name:    "lease ttl",
		args:    "ID",
		summary: "show a lease's granted and remaining TTL",
		help: `Shows the TTL the lease ID (hexadecimal) was granted with and the seconds
remaining, and with --keys the keys attached to it (sorted). A lease that
does not exist (expired or revoked) is not an error: etcdctl's "lease
694d5765fc71500b already expired" is printed and the exit code is 0.
Alias: 'cairn lease timetolive'.

Output: table prints etcdctl's "lease 694d5765fc71500b granted with
TTL(60s), remaining(59s)", with ", attached keys([a b])" after it with
--keys (keys with spaces or control characters Go-quoted); -o json prints
{"header":{...},"id":...,"ttl":59,"granted_ttl":60,"keys":["a","b"]} (ttl
-1 for a lease that does not exist, keys only with --keys); -o value prints
the remaining seconds (-1 when it does not exist) and then, with --keys, one
key per line, raw.`,
		register: func(fs *flag.FlagSet) any {
			o := &leaseTTLOptions{}
			fs.BoolVar(&o.keys, "keys", false, "also list the keys attached to the lease")
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*leaseTTLOptions)
			id, err := leaseIDArgs("lease ttl", args)
			if err != nil {
				return err
			}
			var lopts []clientv3.LeaseOption
			if o.keys {
				lopts = append(lopts, clientv3.WithAttachedKeys())
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.TimeToLive(rctx, id, lopts...)
				if err != nil {
					return err
				}
				return inv.printer().leaseTTL(id, resp, o.keys)
			})
		},
	}
}

func leaseListVerb() *verb {
	return &verb{
		name:    "lease list",
		args:    "",
		summary: "list the live leases",
		help: `Lists the IDs of the leases that exist, sorted.

Output: table prints etcdctl's "found 2 leases" and then one hexadecimal ID
per line; -o json prints {"header":{...},"leases":[{"id":...}]} (ids in
decimal); -o value prints only the hexadecimal IDs, one per line.`,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			if len(args) > 0 {
				return usagef("lease list takes no arguments")
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Leases(rctx)
				if err != nil {
					return err
				}
				return inv.printer().leaseList(resp)
			})
		},
	}
}

// JSON shapes of the lease verbs: etcd's field names in snake_case (as for
// the other verbs), IDs in decimal, keys as strings.
type (
	jsonLeaseGrant struct {
		Header *jsonHeader `json:"header,omitempty"`
		ID     int64       `json:"id"`
		TTL    int64       `json:"ttl"`
	}
	jsonLeaseRevoke struct {
		Header *jsonHeader `json:"header,omitempty"`
		ID     int64       `json:"id"`
	}
	jsonLeaseKeepAlive struct {
		Header *jsonHeader `json:"header,omitempty"`
		ID     int64       `json:"id"`
		TTL    int64       `json:"ttl"`
	}
	jsonLeaseTTL struct {
		Header     *jsonHeader `json:"header,omitempty"`
		ID         int64       `json:"id"`
		TTL        int64       `json:"ttl"`
		GrantedTTL int64       `json:"granted_ttl"`
		Keys       *[]string   `json:"keys,omitempty"` // absent without --keys
	}
	jsonLeaseStatus struct {
		ID int64 `json:"id"`
	}
	jsonLeaseList struct {
		Header *jsonHeader       `json:"header,omitempty"`
		Leases []jsonLeaseStatus `json:"leases"`
	}
)

func (p printer) leaseGrant(r *clientv3.LeaseGrantResponse) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonLeaseGrant{Header: toJSONHeader(r.ResponseHeader), ID: int64(r.ID), TTL: r.TTL})
	case outputValue:
		return p.lines(leaseHex(r.ID))
	default:
		return p.lines(fmt.Sprintf("lease %s granted with TTL(%ds)", leaseHex(r.ID), r.TTL))
	}
}

func (p printer) leaseRevoke(id clientv3.LeaseID, r *clientv3.LeaseRevokeResponse) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonLeaseRevoke{Header: toJSONHeader(r.Header), ID: int64(id)})
	case outputValue:
		return p.lines(leaseHex(id))
	default:
		return p.lines(fmt.Sprintf("lease %s revoked", leaseHex(id)))
	}
}

func (p printer) leaseKeepAlive(r *clientv3.LeaseKeepAliveResponse) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonLeaseKeepAlive{Header: toJSONHeader(r.ResponseHeader), ID: int64(r.ID), TTL: r.TTL})
	case outputValue:
		return p.lines(formatInt(r.TTL))
	default:
		return p.lines(fmt.Sprintf("lease %s keepalived with TTL(%d)", leaseHex(r.ID), r.TTL))
	}
}

// leaseGone prints etcdctl's last keepalive line (table only) and returns
// the errLeaseGone that reportError prints on stderr.
func (p printer) leaseGone(id clientv3.LeaseID) error {
	if p.format == outputTable {
		if err := p.lines(fmt.Sprintf("lease %s expired or revoked.", leaseHex(id))); err != nil {
			return err
		}
	}
	return fmt.Errorf("lease %s: %w", leaseHex(id), errLeaseGone)
}

// leaseExpired reports whether a TimeToLive response describes a lease that
// does not exist, as etcdctl decides it.
func leaseExpired(r *clientv3.LeaseTimeToLiveResponse) bool {
	return r.GrantedTTL == 0 && r.TTL == -1
}

func (p printer) leaseTTL(id clientv3.LeaseID, r *clientv3.LeaseTimeToLiveResponse, keys bool) error {
	if r.ID != 0 {
		id = r.ID
	}
	ks := make([][]byte, len(r.Keys))
	copy(ks, r.Keys)
	slices.SortFunc(ks, bytes.Compare) // the server's order is a map's
	switch p.format {
	case outputJSON:
		j := jsonLeaseTTL{Header: toJSONHeader(r.ResponseHeader), ID: int64(id), TTL: r.TTL, GrantedTTL: r.GrantedTTL}
		if keys {
			s := make([]string, len(ks))
			for i, k := range ks {
				s[i] = string(k)
			}
			j.Keys = &s
		}
		return p.json(j)
	case outputValue:
		out := []string{formatInt(r.TTL)}
		if keys {
			for _, k := range ks {
				out = append(out, string(k))
			}
		}
		return p.lines(out...)
	default:
		if leaseExpired(r) {
			return p.lines(fmt.Sprintf("lease %s already expired", leaseHex(id)))
		}
		txt := fmt.Sprintf("lease %s granted with TTL(%ds), remaining(%ds)", leaseHex(id), r.GrantedTTL, r.TTL)
		if keys {
			s := make([]string, len(ks))
			for i, k := range ks {
				s[i] = displayWord(string(k))
			}
			txt += ", attached keys([" + strings.Join(s, " ") + "])"
		}
		return p.lines(txt)
	}
}

func (p printer) leaseList(r *clientv3.LeaseLeasesResponse) error {
	ids := make([]clientv3.LeaseID, len(r.Leases))
	for i, l := range r.Leases {
		ids[i] = l.ID
	}
	slices.Sort(ids)
	switch p.format {
	case outputJSON:
		j := jsonLeaseList{Header: toJSONHeader(r.ResponseHeader), Leases: make([]jsonLeaseStatus, len(ids))}
		for i, id := range ids {
			j.Leases[i] = jsonLeaseStatus{ID: int64(id)}
		}
		return p.json(j)
	case outputValue:
		for _, id := range ids {
			if err := p.lines(leaseHex(id)); err != nil {
				return err
			}
		}
		return nil
	default:
		if err := p.lines(fmt.Sprintf("found %d leases", len(ids))); err != nil {
			return err
		}
		for _, id := range ids {
			if err := p.lines(leaseHex(id)); err != nil {
				return err
			}
		}
		return nil
	}
}
