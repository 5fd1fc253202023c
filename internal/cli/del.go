package cli

import (
	"context"
	"flag"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// delOptions are the flags and arguments of `del` (also a txn `del` line).
type delOptions struct {
	key, end string
	prefix   bool
	fromKey  bool
	prevKV   bool
}

func (o *delOptions) register(fs *flag.FlagSet) {
	fs.BoolVar(&o.prefix, "prefix", false, "delete every key starting with KEY")
	fs.BoolVar(&o.fromKey, "from-key", false, "delete every key >= KEY")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return the deleted key-value pairs")
}

func (o *delOptions) setArgs(args []string) error {
	key, end, err := rangeArgs("del", args, o.prefix, o.fromKey)
	if err != nil {
		return err
	}
	o.key, o.end = key, end
	return nil
}

func (o *delOptions) op() clientv3.Op {
	opts := rangeOpts(o.end, o.prefix, o.fromKey)
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	return clientv3.OpDelete(o.key, opts...)
}

func delVerb() *verb {
	return &verb{
		name:    "del",
		args:    "KEY [RANGE_END]",
		summary: "delete a key or a range of keys",
		help: `Deletes KEY, or the keys in [KEY, RANGE_END), or with --prefix every key that
starts with KEY, or with --from-key every key >= KEY.

Output: the number of keys deleted, then with --prev-kv the deleted pairs.`,
		register: func(fs *flag.FlagSet) any {
			o := &delOptions{}
			o.register(fs)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*delOptions)
			if err := o.setArgs(args); err != nil {
				return err
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Do(rctx, o.op())
				if err != nil {
					return err
				}
				return inv.printer().del(resp.Del(), o)
			})
		},
	}
}
