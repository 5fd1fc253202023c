package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// putOptions are the flags and arguments of `put` (also a txn `put` line).
type putOptions struct {
	key, value  string
	lease       string
	leaseID     int64
	prevKV      bool
	ignoreValue bool
	ignoreLease bool
}

func (o *putOptions) register(fs *flag.FlagSet) {
	fs.StringVar(&o.lease, "lease", "", "attach the key to lease `ID` (hexadecimal)")
	fs.BoolVar(&o.prevKV, "prev-kv", false, "return the previous key-value pair")
	fs.BoolVar(&o.ignoreValue, "ignore-value", false, "keep the current value (VALUE must be omitted)")
	fs.BoolVar(&o.ignoreLease, "ignore-lease", false, "keep the current lease (--lease must be omitted)")
}

// setArgs validates the flags and takes KEY [VALUE]. When VALUE is omitted
// and stdin is not nil, the value is all of stdin, byte for byte.
func (o *putOptions) setArgs(args []string, stdin io.Reader) error {
	switch {
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

Output: table prints OK (and the previous pair with --prev-kv); -o value
prints the previous value with --prev-kv and nothing otherwise.`,
		register: func(fs *flag.FlagSet) any {
			o := &putOptions{}
			o.register(fs)
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*putOptions)
			if err := o.setArgs(args, inv.stdin); err != nil {
				return err
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
