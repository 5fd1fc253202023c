package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/cairn-db/cairn/cairnclient"
)

// putOptions are the flags and arguments of `put` (also a txn `put` line).
type putOptions struct {
	key, value  string
	lease       string
	leaseID     int64
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
	sequential  bool // put --sequential only (not a txn put line)
}

func (o *putOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.lease, "lease", "", "attach the key to lease `ID` (hexadecimal)")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return the previous key-value pair")
	fs.BoolVar(&o.ignoreValue, "ignore-value", false, "keep the current value (VALUE must be omitted)")
	fs.BoolVar(&o.ignoreLease, "ignore-lease", false, "keep the current lease (--lease must be omitted)")
}

// registerSequential registers --sequential, which only `cairn put` has.
func (o *putOptions) registerSequential(fs *flag.FlagSet) {
	fs.BoolVar(&o.sequential, "sequential", false, "create KEY followed by a 20-digit number greater than that of every key created before, and print the key")
}

// setArgs validates the flags and takes KEY [VALUE]. When VALUE is omitted
// and stdin is not nil, the value is all of stdin, byte for byte.
func (o *putOptions) setArgs(args []string, stdin io.Reader) error {
	switch {
	case o.sequential && o.prevKV:
		return usagef("--sequential cannot be used with --prev-kv (the key is new)")
	case o.sequential && o.ignoreValue:
		return usagef("--sequential cannot be used with --ignore-value (the key is new)")
	case o.sequential && o.ignoreLease:
		return usagef("--sequential cannot be used with --ignore-lease (the key is new)")
	case len(args) == 0:
		return usagef("put needs KEY and VALUE")
	case len(args) > 2:
		return usagef("put takes KEY VALUE, got %d arguments (quote values with spaces)", len(args))
	case o.ignoreValue && len(args) == 2:
		return usagef("--ignore-value cannot be used with a VALUE")
	case o.ignoreLease && o.lease != "":
		return usagef("--ignore-lease cannot be used with --lease")
	}
	o.key = args[0]
	switch {
	case len(args) == 2:
		o.value = args[1]
	case o.ignoreValue:
	case stdin == nil:
		return usagef("put needs KEY and VALUE")
	default:
		b, err := io.ReadAll(stdin)
		if err != nil {
			return fmt.Errorf("reading the value from stdin: %w", err)
		}
		o.value = string(b)
	}
	if o.lease != "" {
		id, err := parseLeaseID(o.lease)
		if err != nil {
			return usagef("bad --lease: %v", err)
		}
		o.leaseID = id
	}
	return nil
}

func (o *putOptions) op() clientv3.Op {
	var opts []clientv3.OpOption
	if o.leaseID != 0 {
		opts = append(opts, clientv3.WithLease(clientv3.LeaseID(o.leaseID)))
	}
	if o.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if o.ignoreValue {
		opts = append(opts, clientv3.WithIgnoreValue())
	}
	if o.ignoreLease {
		opts = append(opts, clientv3.WithIgnoreLease())
	}
	return clientv3.OpPut(o.key, o.value, opts...)
}

// parseLeaseID parses a hexadecimal lease ID, with or without 0x.
func parseLeaseID(s string) (int64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	id, err := strconv.ParseInt(t, 16, 64)
	if err != nil || t == "" {
		return 0, fmt.Errorf("%q is not a hexadecimal lease ID", s)
	}
	return id, nil
}

func putVerb() *verb {
	return &verb{
		name:    "put",
		args:    "KEY [VALUE]",
		summary: "write a key",
		help: `Writes VALUE at KEY. Without VALUE the value is read from stdin, byte for
byte (use printf, not echo, to avoid a trailing newline). Put "--" before a
value that starts with '-'.

With --sequential KEY is a prefix: Cairn creates the key KEY followed by a
20-digit number, the revision that creates it, so that the keys created
under a prefix sort in the order they were created (a queue, a ticket
line). --lease makes the key ephemeral; --prev-kv, --ignore-value and
--ignore-lease do not apply. It needs a Cairn server (etcd has no
sequential keys).

Output: table prints OK (and the previous pair with --prev-kv); -o value
prints the previous value with --prev-kv and nothing otherwise. With
--sequential: table and -o value print the created key; -o json prints
{"key":"queue/job-00000000000000000042","revision":42}.`,
		register: func(fs *flag.FlagSet) any {
			o := &putOptions{}
			o.register(fs)
			o.registerSequential(fs)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*putOptions)
			if err := o.setArgs(args, inv.stdin); err != nil {
				return err
			}
			if o.sequential {
				return inv.putSequential(ctx, o)
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Do(rctx, o.op())
				if err != nil {
					return err
				}
				return inv.printer().put(resp.Put(), o)
			})
		},
	}
}

// putSequential creates the sequential key of `put --sequential`.
func (inv *invocation) putSequential(ctx context.Context, o *putOptions) error {
	return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
		key, rev, err := cairnclient.CreateSequential(rctx, cli, o.key, o.value, clientv3.LeaseID(o.leaseID))
		if status.Code(err) == codes.Unimplemented {
			return fmt.Errorf("--sequential needs a Cairn server: %s", requestErrorText(err))
		}
		if err != nil {
			return err
		}
		return inv.printer().putSequential(key, rev)
	})
}
