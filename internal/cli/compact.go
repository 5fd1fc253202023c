package cli

import (
	"context"
	"flag"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

type compactOptions struct {
	physical bool
}

func compactVerb() *verb {
	return &verb{
		name:    "compact",
		args:    "REV",
		summary: "discard the key-value history before a revision",
		help: `Compacts the key-value history: revisions before REV can no longer be read
or watched. With --physical, waits until the compaction is applied on the
answering member.

Output: table prints "compacted revision REV"; -o value prints REV.`,
		register: func(fs *flag.FlagSet) any {
			o := &compactOptions{}
			fs.BoolVar(&o.physical, "physical", false, "wait until the compaction is physically applied")
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*compactOptions)
			if len(args) != 1 {
				return usagef("compact takes exactly one argument: REV")
			}
			rev, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || rev <= 0 {
				return usagef("REV must be a positive integer, got %q", args[0])
			}
			var copts []clientv3.CompactOption
			if o.physical {
				copts = append(copts, clientv3.WithCompactPhysical())
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Compact(rctx, rev, copts...)
				if err != nil {
					return err
				}
				return inv.printer().compact(resp, rev)
			})
		},
	}
}

type jsonCompact struct {
	Header            *jsonHeader `json:"header,omitempty"`
	CompactedRevision int64       `json:"compacted_revision"`
}

func (p printer) compact(r *clientv3.CompactResponse, rev int64) error {
	switch p.format {
	case outputJSON:
		return p.json(jsonCompact{Header: toJSONHeader(r.Header), CompactedRevision: rev})
	case outputValue:
		return p.lines(formatInt(rev))
	default:
		return p.lines("compacted revision " + formatInt(rev))
	}
}
