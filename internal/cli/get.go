package cli

import (
	"context"
	"flag"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// getOptions are the flags and arguments of `get` (also a txn `get` line).
type getOptions struct {
	key, end     string
	prefix       bool
	fromKey      bool
	limit        int64
	rev          int64
	keysOnly     bool
	countOnly    bool
	sortBy       string
	order        string
	serializable bool
}

func (o *getOptions) register(fs *flag.FlagSet, inTxn bool) {
	fs.BoolVar(&o.prefix, "prefix", false, "get every key starting with KEY")
	fs.BoolVar(&o.fromKey, "from-key", false, "get every key >= KEY")
	fs.Int64Var(&o.limit, "limit", 0, "return at most `N` keys (0: no limit)")
	fs.Int64Var(&o.rev, "rev", 0, "read at revision `N` (0: latest)")
	fs.BoolVar(&o.keysOnly, "keys-only", false, "return keys without values")
	fs.BoolVar(&o.countOnly, "count-only", false, "return only the number of keys")
	fs.StringVar(&o.sortBy, "sort-by", "", "sort by `FIELD`: key, version, create, modify or value")
	fs.StringVar(&o.order, "order", "", "sort `ORDER`: ascend or descend (default ascend with --sort-by)")
	if !inTxn {
		fs.BoolVar(&o.serializable, "serializable", false, "read from the answering member without consensus (may be stale)")
	}
}

// setArgs validates the flags and takes KEY [RANGE_END].
func (o *getOptions) setArgs(args []string) error {
	key, end, err := rangeArgs("get", args, o.prefix, o.fromKey)
	if err != nil {
		return err
	}
	o.key, o.end = key, end
	if o.keysOnly && o.countOnly {
		return usagef("--keys-only and --count-only cannot be used together")
	}
	if o.limit < 0 {
		return usagef("--limit must not be negative")
	}
	if o.rev < 0 {
		return usagef("--rev must not be negative")
	}
	if _, _, err := o.sort(); err != nil {
		return err
	}
	return nil
}

func (o *getOptions) sort() (clientv3.SortTarget, clientv3.SortOrder, error) {
	target := clientv3.SortByKey
	switch strings.ToLower(o.sortBy) {
	case "", "key":
	case "version":
		target = clientv3.SortByVersion
	case "create":
		target = clientv3.SortByCreateRevision
	case "modify", "mod":
		target = clientv3.SortByModRevision
	case "value":
		target = clientv3.SortByValue
	default:
		return 0, 0, usagef("unknown --sort-by %q (want key, version, create, modify or value)", o.sortBy)
	}
	order := clientv3.SortNone
	switch strings.ToLower(o.order) {
	case "":
		if o.sortBy != "" {
			order = clientv3.SortAscend
		}
	case "ascend":
		order = clientv3.SortAscend
	case "descend":
		order = clientv3.SortDescend
	default:
		return 0, 0, usagef("unknown --order %q (want ascend or descend)", o.order)
	}
	return target, order, nil
}

func (o *getOptions) op() clientv3.Op {
	opts := rangeOpts(o.end, o.prefix, o.fromKey)
	if o.limit > 0 {
		opts = append(opts, clientv3.WithLimit(o.limit))
	}
	if o.rev > 0 {
		opts = append(opts, clientv3.WithRev(o.rev))
	}
	if o.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	if o.countOnly {
		opts = append(opts, clientv3.WithCountOnly())
	}
	if target, order, _ := o.sort(); order != clientv3.SortNone {
		opts = append(opts, clientv3.WithSort(target, order))
	}
	if o.serializable {
		opts = append(opts, clientv3.WithSerializable())
	}
	return clientv3.OpGet(o.key, opts...)
}

// rangeArgs takes KEY [RANGE_END] for get and del.
func rangeArgs(verb string, args []string, prefix, fromKey bool) (key, end string, err error) {
	switch {
	case len(args) == 0:
		return "", "", usagef("%s needs KEY", verb)
	case len(args) > 2:
		return "", "", usagef("%s takes KEY [RANGE_END], got %d arguments", verb, len(args))
	case prefix && fromKey:
		return "", "", usagef("--prefix and --from-key cannot be used together")
	case len(args) == 2 && (prefix || fromKey):
		return "", "", usagef("RANGE_END cannot be combined with --prefix or --from-key")
	}
	if len(args) == 2 {
		end = args[1]
	}
	return args[0], end, nil
}

func rangeOpts(end string, prefix, fromKey bool) []clientv3.OpOption {
	switch {
	case prefix:
		return []clientv3.OpOption{clientv3.WithPrefix()}
	case fromKey:
		return []clientv3.OpOption{clientv3.WithFromKey()}
	case end != "":
		return []clientv3.OpOption{clientv3.WithRange(end)}
	}
	return nil
}

func getVerb() *verb {
	return &verb{
		name:    "get",
		args:    "KEY [RANGE_END]",
		summary: "read a key or a range of keys",
		help: `Reads KEY, or the keys in [KEY, RANGE_END), or with --prefix every key that
starts with KEY (an empty KEY "" with --prefix means all keys), or with
--from-key every key >= KEY. Reads are linearizable unless --serializable.

Output: table prints KEY and VALUE columns (values that are empty, have
control characters or surrounding spaces are shown Go-quoted); -o value prints
one value per line (keys with --keys-only); --count-only prints the count.`,
		register: func(fs *flag.FlagSet) any {
			o := &getOptions{}
			o.register(fs, false)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*getOptions)
			if err := o.setArgs(args); err != nil {
				return err
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Do(rctx, o.op())
				if err != nil {
					return err
				}
				return inv.printer().get(resp.Get(), o)
			})
		},
	}
}
