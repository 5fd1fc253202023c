package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// maxTxnText bounds what `txn` reads from stdin.
const maxTxnText = 16 << 20

func (c txnCompare) cmp() clientv3.Cmp {
	switch c.target {
	case "value":
		return clientv3.Compare(clientv3.Value(c.key), c.op, c.value)
	case "version":
		return clientv3.Compare(clientv3.Version(c.key), c.op, c.num)
	case "create":
		return clientv3.Compare(clientv3.CreateRevision(c.key), c.op, c.num)
	case "mod":
		return clientv3.Compare(clientv3.ModRevision(c.key), c.op, c.num)
	default: // lease
		return clientv3.Compare(clientv3.LeaseValue(c.key), c.op, c.num)
	}
}

func (o txnOp) op() clientv3.Op {
	switch o.verb {
	case "put":
		return o.put.op()
	case "del":
		return o.del.op()
	default:
		return o.get.op()
	}
}

func opsOf(ops []txnOp) []clientv3.Op {
	out := make([]clientv3.Op, len(ops))
	for i, o := range ops {
		out[i] = o.op()
	}
	return out
}

func (t *txnRequest) cmps() []clientv3.Cmp {
	out := make([]clientv3.Cmp, len(t.compares))
	for i, c := range t.compares {
		out[i] = c.cmp()
	}
	return out
}

const txnHelp = `Reads a transaction from stdin and runs it atomically: if every compare holds
the 'then' ops run, otherwise the 'else' ops run.

  # comments start with #
  if
    value("config/mode") = "blue"
    mod("config/x") > 5
    version("a") != 0
  then
    put config/mode green
    del config/old --prefix
    get config/ --prefix
  else
    get config/mode

Sections: 'if', 'then' and 'else', each alone on its line, in that order; each
is optional but there must be an 'if' or a 'then'.
Compares: TARGET(KEY) OP VALUE. TARGET: value (VALUE is a string), version,
create, mod (decimal integers: the key's version, create and modify
revisions; 0 means the key does not exist) or lease (hexadecimal ID, 0 for
none). OP: = != < >.
Ops: put KEY VALUE, del KEY [RANGE_END], get KEY [RANGE_END] with the flags
of the verbs (put --lease --prev-kv --ignore-value --ignore-lease; del
--prefix --from-key --prev-kv; get --prefix --from-key --limit --rev
--keys-only --count-only --sort-by --order).
Words: bare words end at a space; "double quotes" take Go escapes (\n \t \"
\\ \xHH \uHHHH); 'single quotes' are literal. Quoted words are never flags.
Syntax errors name the line and column and exit with code 2.

Output: table prints SUCCESS or FAILURE, then for each op that ran a line
"-- OP LINE" and its result as the verb would print it; -o value prints
SUCCESS/FAILURE then the values; -o json prints one object with succeeded
and responses (response_range, response_put, response_delete_range).`

func txnVerb() *verb {
	return &verb{
		name:     "txn",
		args:     "< TXN_TEXT",
		summary:  "run a transaction (if/then/else) read from stdin",
		help:     txnHelp,
		register: func(fs *flag.FlagSet) any { return nil },
		run: func(ctx context.Context, inv *invocation, _ any, args []string) error {
			if len(args) > 0 {
				return usagef("txn takes no arguments; it reads the transaction from stdin")
			}
			text, err := io.ReadAll(io.LimitReader(inv.stdin, maxTxnText+1))
			if err != nil {
				return fmt.Errorf("reading the txn from stdin: %w", err)
			}
			if len(text) > maxTxnText {
				return usagef("txn text longer than %d bytes", maxTxnText)
			}
			t, err := parseTxn(string(text))
			if err != nil {
				var se *txnSyntaxError
				if errors.As(err, &se) {
					return usagef("%v", se)
				}
				return err
			}
			return inv.withClient(ctx, func(rctx context.Context, cli *clientv3.Client) error {
				resp, err := cli.Txn(rctx).If(t.cmps()...).Then(opsOf(t.success)...).Else(opsOf(t.failure)...).Commit()
				if err != nil {
					return err
				}
				return inv.printer().txn(resp, t)
			})
		},
	}
}

// txn prints a txn response; t supplies the ops that ran, for their options.
func (p printer) txn(r *clientv3.TxnResponse, t *txnRequest) error {
	ops := t.success
	if !r.Succeeded {
		ops = t.failure
	}
	if p.format == outputJSON {
		j := jsonTxn{Header: toJSONHeader(r.Header), Succeeded: r.Succeeded, Responses: []jsonResponseOp{}}
		for i, ro := range r.Responses {
			var op txnOp
			if i < len(ops) {
				op = ops[i]
			}
			j.Responses = append(j.Responses, toJSONResponseOp(ro, op))
		}
		return p.json(j)
	}
	verdict := "SUCCESS"
	if !r.Succeeded {
		verdict = "FAILURE"
	}
	if err := p.lines(verdict); err != nil {
		return err
	}
	for i, ro := range r.Responses {
		if i >= len(ops) {
			break
		}
		op := ops[i]
		if p.format == outputTable {
			if err := p.lines("-- " + op.src); err != nil {
				return err
			}
		}
		var err error
		switch op.verb {
		case "put":
			if rp := ro.GetResponsePut(); rp != nil {
				err = p.put((*clientv3.PutResponse)(rp), op.put)
			}
		case "del":
			if rd := ro.GetResponseDeleteRange(); rd != nil {
				err = p.del((*clientv3.DeleteResponse)(rd), op.del)
			}
		case "get":
			if rr := ro.GetResponseRange(); rr != nil {
				err = p.get((*clientv3.GetResponse)(rr), op.get)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func toJSONResponseOp(ro *pb.ResponseOp, op txnOp) jsonResponseOp {
	var j jsonResponseOp
	switch {
	case ro.GetResponseRange() != nil:
		keysOnly := op.get != nil && op.get.keysOnly
		j.Range = toJSONRange(ro.GetResponseRange(), keysOnly, false)
	case ro.GetResponsePut() != nil:
		j.Put = toJSONPut(ro.GetResponsePut(), false)
	case ro.GetResponseDeleteRange() != nil:
		j.Delete = toJSONDelete(ro.GetResponseDeleteRange(), false)
	}
	return j
}

// formatInt is strconv.FormatInt for int64 fields.
func formatInt(n int64) string { return strconv.FormatInt(n, 10) }
