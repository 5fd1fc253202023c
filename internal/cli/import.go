package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Defaults and limits of `import`.
const (
	defaultImportBatch = 128 // puts per txn: etcd's and Cairn's default --max-txn-ops
	defaultImportRate  = 50  // txns per second
	// importTxnBytes bounds the keys and values of one txn, well under the
	// servers' default --max-request-bytes (1.5 MiB). A single larger put
	// goes alone in its txn.
	importTxnBytes = 1 << 20
	// importPutOverhead is what a put adds to a txn besides its key and
	// value (framing, lease ID), an estimate on the safe side.
	importPutOverhead = 32
)

// importRecord is one parsed line: a put.
type importRecord struct {
	line     int // 1-based line number in the file
	key      string
	value    string
	leaseTTL int64 // 0: no lease
}

func (r importRecord) size() int { return len(r.key) + len(r.value) + importPutOverhead }

// parseImportLine parses and validates one line of the export format (see
// export.go). It accepts exactly the fields export writes, each at most once.
func parseImportLine(line []byte) (importRecord, error) {
	var r importRecord
	if !utf8.Valid(line) {
		return r, errors.New(`not valid UTF-8 (bytes that are not UTF-8 go in "key_b64" or "value_b64", in base64)`)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	tok, err := dec.Token()
	if err != nil {
		return r, notJSON(err)
	}
	if tok != json.Delim('{') {
		return r, errors.New(`not a JSON object (want {"key":...,"value":...})`)
	}
	seen := map[string]bool{}
	var key, value *string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return r, notJSON(err)
		}
		name := tok.(string) // an object's keys are strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return r, notJSON(err)
		}
		if seen[name] {
			return r, fmt.Errorf("field %q appears twice", name)
		}
		seen[name] = true
		switch name {
		case "key", "key_b64", "value", "value_b64":
			s, err := importString(name, raw)
			if err != nil {
				return r, err
			}
			if name == "key" || name == "key_b64" {
				key = &s
			} else {
				value = &s
			}
		case "lease_ttl":
			ttl, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil || ttl <= 0 {
				return r, fmt.Errorf(`"lease_ttl" must be a positive integer number of seconds, got %s`, raw)
			}
			r.leaseTTL = ttl
		default:
			return r, fmt.Errorf(`unknown field %q (want "key" or "key_b64", "value" or "value_b64", and "lease_ttl")`, name)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return r, notJSON(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, errors.New("text after the JSON object")
	}
	switch {
	case seen["key"] && seen["key_b64"]:
		return r, errors.New(`both "key" and "key_b64"`)
	case seen["value"] && seen["value_b64"]:
		return r, errors.New(`both "value" and "value_b64"`)
	case key == nil:
		return r, errors.New(`no "key" (or "key_b64")`)
	case *key == "":
		return r, errors.New("empty key")
	case value == nil:
		return r, errors.New(`no "value" (or "value_b64")`)
	}
	r.key, r.value = *key, *value
	return r, nil
}

// notJSON describes a JSON syntax error of a line.
func notJSON(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("not JSON: the line ends inside the object")
	}
	return fmt.Errorf("not JSON: %v", err)
}

// importString decodes the JSON string raw of field name, from base64 for
// the _b64 fields.
func importString(name string, raw json.RawMessage) (string, error) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", fmt.Errorf("%q must be a string, got %s", name, raw)
	}
	if name == "key_b64" || name == "value_b64" {
		b, err := base64.StdEncoding.Strict().DecodeString(s)
		if err != nil {
			return "", fmt.Errorf("%q is not standard base64: %v", name, err)
		}
		s = string(b)
	}
	return s, nil
}

// importBatch is the puts of one txn, in line order.
type importBatch struct {
	recs  []importRecord
	bytes int
	keys  map[string]bool
}

// fits reports whether r can join the batch: at most limit puts, at most
// importTxnBytes (unless the batch is empty), and no key twice (a txn may
// not put a key twice; the later line must win, so it goes in the next txn).
func (b *importBatch) fits(r importRecord, limit int) bool {
	if len(b.recs) == 0 {
		return true
	}
	return len(b.recs) < limit && b.bytes+r.size() <= importTxnBytes && !b.keys[r.key]
}

func (b *importBatch) add(r importRecord) {
	if b.keys == nil {
		b.keys = map[string]bool{}
	}
	b.recs = append(b.recs, r)
	b.bytes += r.size()
	b.keys[r.key] = true
}

// importError is an import that stopped: err says why, through is the last
// line of the last batch applied (fromLine-1 if none).
type importError struct {
	err     error
	through int
}

func (e *importError) Error() string { return fmt.Sprintf("%v; %s", e.err, e.resume()) }

func (e *importError) Unwrap() error { return e.err }

func (e *importError) resume() string {
	return fmt.Sprintf("imported through line %d; rerun with --from-line %d", e.through, e.through+1)
}

// lineError is a line that does not parse.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }

func (e *lineError) Unwrap() error { return e.err }

// batchError is a batch that could not be applied.
type batchError struct {
	first, last int // its lines
	err         error
}

// Error names the lines and the server's message without gRPC's framing
// (requestErrorText).
func (e *batchError) Error() string {
	if e.first == e.last {
		return fmt.Sprintf("line %d: %s", e.first, requestErrorText(e.err))
	}
	return fmt.Sprintf("lines %d-%d: %s", e.first, e.last, requestErrorText(e.err))
}

func (e *batchError) Unwrap() error { return e.err }

// importer reads the lines, batches them and hands each batch to apply.
type importer struct {
	batch    int // puts per txn at most
	fromLine int // lines before it are skipped
	apply    func(ctx context.Context, b *importBatch) error
	prog     *keyProgress // nil: no progress line

	lines   int // lines read (skipped ones included)
	through int // the last line of the last batch applied
	done    int // records of the batches applied
}

// run imports r. Each line is parsed before its batch is sent, so a bad line
// stops the import with nothing of its batch applied. The error is an
// *importError that says which lines were imported.
func (im *importer) run(ctx context.Context, r io.Reader) error {
	im.through = im.fromLine - 1
	br := bufio.NewReaderSize(r, 64<<10)
	var b importBatch
	flush := func() error {
		if len(b.recs) == 0 {
			return nil
		}
		if err := im.apply(ctx, &b); err != nil {
			return &importError{err: &batchError{first: b.recs[0].line, last: b.recs[len(b.recs)-1].line, err: err}, through: im.through}
		}
		im.done += len(b.recs)
		im.through = b.recs[len(b.recs)-1].line
		im.prog.update(im.done)
		b = importBatch{}
		return nil
	}
	for {
		if err := ctx.Err(); err != nil { // interrupted
			return &importError{err: err, through: im.through}
		}
		line, rerr := br.ReadBytes('\n')
		if len(line) == 0 && rerr == io.EOF {
			break
		}
		if rerr != nil && rerr != io.EOF {
			return &importError{err: fmt.Errorf("reading line %d: %w", im.lines+1, rerr), through: im.through}
		}
		im.lines++
		if im.lines < im.fromLine || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := parseImportLine(line)
		if err != nil {
			return &importError{err: &lineError{line: im.lines, err: err}, through: im.through}
		}
		rec.line = im.lines
		if !b.fits(rec, im.batch) {
			if err := flush(); err != nil {
				return err
			}
		}
		b.add(rec)
		if len(b.recs) >= im.batch { // full: send it now, not when the next line comes
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := flush(); err != nil {
		return err
	}
	// Blank lines after the last put are imported too.
	im.through = max(im.through, im.lines)
	return nil
}

// importOptions are the flags of `import`.
type importOptions struct {
	batch        int
	rate         int
	skipExisting bool
	fromLine     int
}

func importVerb() *verb {
	return &verb{
		name:    "import",
		args:    "FILE",
		summary: "write the keys of a 'cairn export' file (- for stdin)",
		help: `Puts the keys of FILE (- for stdin), JSON lines as 'cairn export' writes
them: {"key":"...","value":"..."}, with "key_b64" or "value_b64" (standard
base64) instead for bytes that are not valid UTF-8, and "lease_ttl" (seconds)
for a key attached to a lease. Any other field is an error. Blank lines are
skipped.

The puts go in txns of at most --batch keys and about 1 MiB of keys and
values, at most --rate txns per second, so that other clients are not
stalled. Each line is checked before its txn is sent: a bad line stops the
import with "line N: reason", and nothing of its txn is applied (the txns
before it are). An import that stops says "imported through line N; rerun
with --from-line N+1", and --from-line skips the lines before N+1. Importing
a file again is harmless: a key is put again with the same value (and a new
revision). --skip-existing leaves the keys that already exist alone: each
txn's keys are read first and those present dropped (a key created between
the read and the txn is overwritten).

Leases: one new lease is granted per distinct lease_ttl value in the file (per
run of import), and every key with that lease_ttl is attached to it. The
leases are not kept alive: the keys are deleted lease_ttl seconds after the
import, unless something renews the lease ('cairn lease keepalive ID'; see
'cairn lease list').

Each request runs within --command-timeout. On a terminal, stderr shows the
keys imported so far. A bad line or a failed request exits 1. Output: table prints "imported N keys in M
transactions" (and the keys skipped with --skip-existing); -o json prints
{"keys":N,"transactions":M,"skipped":K,"lines":L,"leases":G}; -o value
prints N.`,
		register: func(fs *flag.FlagSet) any {
			o := &importOptions{}
			fs.IntVar(&o.batch, "batch", defaultImportBatch, "put at most `N` keys per txn (at most the servers' --max-txn-ops)")
			fs.IntVar(&o.rate, "rate", defaultImportRate, "send at most `N` txns per second (0: no limit)")
			fs.BoolVar(&o.skipExisting, "skip-existing", false, "leave keys that already exist unchanged")
			fs.IntVar(&o.fromLine, "from-line", 1, "start at line `N` of FILE (skip the lines before it)")
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*importOptions)
			switch {
			case len(args) != 1:
				return usagef("import takes exactly one argument: FILE (- for stdin)")
			case o.batch < 1:
				return usagef("--batch must be at least 1")
			case o.rate < 0:
				return usagef("--rate must not be negative (0: no limit)")
			case o.fromLine < 1:
				return usagef("--from-line must be at least 1 (lines are numbered from 1)")
			}
			in := inv.stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			cli, err := inv.connect(ctx)
			if err != nil {
				return err
			}
			defer cli.Close()
			w := &importWriter{inv: inv, kv: cli, lease: cli, skipExisting: o.skipExisting}
			if o.rate > 0 {
				w.pace = &pacer{every: time.Second / time.Duration(o.rate)}
			}
			im := &importer{batch: o.batch, fromLine: o.fromLine, apply: w.apply}
			if isTerminal(inv.stderr) {
				im.prog = &keyProgress{w: inv.stderr, verb: "imported"}
			}
			err = im.run(ctx, in)
			im.prog.clear()
			var ie *importError
			if errors.As(err, &ie) {
				// The cause first, as reportError words it (an interrupt
				// or a timeout has its own words), then where to resume.
				code := reportError(inv, ie.err)
				fmt.Fprintf(inv.stderr, "cairn: %s\n", ie.resume())
				return &exitCodeError{code: code}
			}
			if err != nil {
				return err
			}
			return inv.printer().imported(importResult{Keys: w.puts, Transactions: w.txns, Skipped: w.skipped, Lines: im.lines, Leases: len(w.leases)})
		},
	}
}

// importWriter applies batches to a cluster.
type importWriter struct {
	inv          *invocation
	kv           clientv3.KV
	lease        clientv3.Lease
	skipExisting bool
	pace         *pacer // nil: no limit

	leases  map[int64]clientv3.LeaseID // the lease granted for each lease_ttl
	puts    int                        // keys put
	txns    int                        // txns that put keys
	skipped int                        // keys left alone by --skip-existing
}

// apply puts the batch's keys in one txn (after dropping the existing ones
// with --skip-existing), granting the leases it needs first.
func (w *importWriter) apply(ctx context.Context, b *importBatch) error {
	if err := w.pace.wait(ctx); err != nil {
		return err
	}
	recs := b.recs
	if w.skipExisting {
		var err error
		if recs, err = w.dropExisting(ctx, recs); err != nil {
			return err
		}
	}
	if len(recs) == 0 {
		return nil
	}
	ops := make([]clientv3.Op, 0, len(recs))
	for _, r := range recs {
		var opts []clientv3.OpOption
		if r.leaseTTL > 0 {
			id, err := w.leaseFor(ctx, r.leaseTTL)
			if err != nil {
				return err
			}
			opts = append(opts, clientv3.WithLease(id))
		}
		ops = append(ops, clientv3.OpPut(r.key, r.value, opts...))
	}
	rctx, cancel := w.inv.requestContext(ctx)
	defer cancel()
	if _, err := w.kv.Txn(rctx).Then(ops...).Commit(); err != nil {
		return err
	}
	w.puts += len(ops)
	w.txns++
	return nil
}

// dropExisting returns the records whose keys do not exist, reading them all
// in one txn.
func (w *importWriter) dropExisting(ctx context.Context, recs []importRecord) ([]importRecord, error) {
	gets := make([]clientv3.Op, len(recs))
	for i, r := range recs {
		gets[i] = clientv3.OpGet(r.key, clientv3.WithCountOnly())
	}
	rctx, cancel := w.inv.requestContext(ctx)
	defer cancel()
	resp, err := w.kv.Txn(rctx).Then(gets...).Commit()
	if err != nil {
		return nil, err
	}
	var keep []importRecord
	for i, r := range recs {
		if resp.Responses[i].GetResponseRange().GetCount() > 0 {
			w.skipped++
			continue
		}
		keep = append(keep, r)
	}
	return keep, nil
}

// leaseFor returns the lease granted for ttl, granting it on first use.
func (w *importWriter) leaseFor(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if id, ok := w.leases[ttl]; ok {
		return id, nil
	}
	rctx, cancel := w.inv.requestContext(ctx)
	defer cancel()
	resp, err := w.lease.Grant(rctx, ttl)
	if err != nil {
		return 0, fmt.Errorf("granting a lease with TTL %ds: %w", ttl, err)
	}
	if w.leases == nil {
		w.leases = map[int64]clientv3.LeaseID{}
	}
	w.leases[ttl] = resp.ID
	return resp.ID, nil
}

// pacer spaces calls to wait at least every apart. A nil *pacer never waits.
type pacer struct {
	every time.Duration
	now   func() time.Time                                 // nil: time.Now
	sleep func(ctx context.Context, d time.Duration) error // nil: a timer, or ctx's end
	next  time.Time                                        // when the next call may go
}

func (p *pacer) wait(ctx context.Context) error {
	if p == nil || p.every <= 0 {
		return nil
	}
	now, sleep := time.Now, sleepContext
	if p.now != nil {
		now = p.now
	}
	if p.sleep != nil {
		sleep = p.sleep
	}
	t := now()
	if t.Before(p.next) {
		if err := sleep(ctx, p.next.Sub(t)); err != nil {
			return err
		}
		t = p.next
	}
	p.next = t.Add(p.every)
	return nil
}

// sleepContext waits d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// importResult is the outcome of `import`, in -o json as it is.
type importResult struct {
	Keys         int `json:"keys"`         // keys put
	Transactions int `json:"transactions"` // txns that put keys
	Skipped      int `json:"skipped"`      // keys left alone by --skip-existing
	Lines        int `json:"lines"`        // lines in the file
	Leases       int `json:"leases"`       // leases granted
}

func (p printer) imported(r importResult) error {
	switch p.format {
	case outputJSON:
		return p.json(r)
	case outputValue:
		return p.lines(strconv.Itoa(r.Keys))
	default:
		s := fmt.Sprintf("imported %d keys in %d transactions", r.Keys, r.Transactions)
		if r.Skipped > 0 {
			s += fmt.Sprintf(" (skipped %d existing keys)", r.Skipped)
		}
		return p.lines(s)
	}
}
