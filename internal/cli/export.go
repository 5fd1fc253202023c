package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// export and import move keys between clusters as JSON lines, one object per
// key:
//
//	{"key":"app/name","value":"cairn"}
//	{"key_b64":"/wBr","value_b64":"AAEC","lease_ttl":60}
//
// "key" and "value" are JSON strings when the bytes are valid UTF-8;
// otherwise "key_b64" and "value_b64" hold them in standard base64 (padded).
// "lease_ttl" is the granted TTL in seconds of the lease the key was attached
// to, absent for a key without a lease. No other field is allowed: import
// refuses a line with an unknown field rather than lose it. export.go writes
// the lines, import.go reads them.

// exportPageSize is the number of keys export reads per request.
const exportPageSize = 1000

// exportLine is one line of the export format. Exactly one of Key and
// KeyB64, and one of Value and ValueB64, is set; Value is a pointer because
// an empty value is written ("value":"").
type exportLine struct {
	Key      string  `json:"key,omitempty"`
	KeyB64   string  `json:"key_b64,omitempty"`
	Value    *string `json:"value,omitempty"`
	ValueB64 *string `json:"value_b64,omitempty"`
	LeaseTTL int64   `json:"lease_ttl,omitempty"`
}

// newExportLine describes key and value, each as a string when it is valid
// UTF-8 and in base64 otherwise; leaseTTL 0 means no lease.
func newExportLine(key, value []byte, leaseTTL int64) exportLine {
	var l exportLine
	if utf8.Valid(key) {
		l.Key = string(key)
	} else {
		l.KeyB64 = base64.StdEncoding.EncodeToString(key)
	}
	if utf8.Valid(value) {
		v := string(value)
		l.Value = &v
	} else {
		v := base64.StdEncoding.EncodeToString(value)
		l.ValueB64 = &v
	}
	l.LeaseTTL = leaseTTL
	return l
}

type exportOptions struct {
	prefix     string // "": every key
	rev        int64
	withLeases bool
}

func exportVerb() *verb {
	return &verb{
		name:    "export",
		args:    "[PREFIX]",
		summary: "write keys as JSON lines, for 'cairn import'",
		help: `Writes every key that starts with PREFIX (every key when PREFIX is omitted)
to stdout, one JSON object per line, sorted by key, all read at one revision:
--rev, or the current revision when the export starts. Load the lines into a
cluster with 'cairn import'.

Each line is {"key":"...","value":"..."}. A key or value whose bytes are not
valid UTF-8 is written as "key_b64" or "value_b64" instead, in standard
base64. A key attached to a lease also has "lease_ttl": the TTL in seconds
the lease was granted with (--with-leases, on by default; --with-leases=false
leaves it out). A key whose lease has expired by the time export asks for
its TTL (an old --rev, say) is exported without "lease_ttl", with a warning.
Only keys and values are exported: not their history, versions or revisions.

Keys are read 1000 per request, each request within --command-timeout. On a
terminal, stderr shows the keys written so far; the last line on stderr is
"exported N keys at revision R". -o does not apply: stdout is always the
JSON lines.`,
		register: func(fs *flag.FlagSet) any {
			o := &exportOptions{}
			fs.Int64Var(&o.rev, "rev", 0, "export the keys as of revision `N` (0: the current revision)")
			fs.BoolVar(&o.withLeases, "with-leases", true, "write the granted TTL of each key's lease as lease_ttl")
			return o
		},
		run: func(ctx context.Context, inv *invocation, opts any, args []string) error {
			o := opts.(*exportOptions)
			switch {
			case len(args) > 1:
				return usagef("export takes at most one argument: PREFIX, got %d", len(args))
			case o.rev < 0:
				return usagef("--rev must not be negative")
			}
			if len(args) == 1 {
				o.prefix = args[0]
			}
			cli, err := inv.connect(ctx)
			if err != nil {
				return err
			}
			defer cli.Close()
			ex := &exporter{inv: inv, kv: cli, lease: cli, opts: o, pageSize: exportPageSize}
			if isTerminal(inv.stderr) {
				ex.prog = &keyProgress{w: inv.stderr, verb: "exported"}
			}
			return ex.run(ctx, inv.stdout)
		},
	}
}

// exporter writes the export of one prefix at one revision.
type exporter struct {
	inv      *invocation
	kv       clientv3.KV
	lease    clientv3.Lease
	opts     *exportOptions
	pageSize int64
	prog     *keyProgress // nil: no progress line

	ttls    map[clientv3.LeaseID]int64 // granted TTL of each lease seen; 0: gone
	expired int                        // keys whose lease had expired
}

// run writes the lines to out, then the summary line to stderr.
func (ex *exporter) run(ctx context.Context, out io.Writer) error {
	w := bufio.NewWriterSize(out, 64<<10)
	n, rev, err := ex.write(ctx, w)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	ex.prog.clear()
	if err != nil {
		return err
	}
	if ex.expired > 0 {
		fmt.Fprintf(ex.inv.stderr, "warning: exported %s without lease_ttl: their leases have expired since revision %d\n", plural(ex.expired, "key"), rev)
	}
	fmt.Fprintf(ex.inv.stderr, "exported %d keys at revision %d\n", n, rev)
	return nil
}

// write reads the keys page by page at one revision and writes their lines
// to w. It returns the number of keys and the revision.
func (ex *exporter) write(ctx context.Context, w io.Writer) (n int, rev int64, err error) {
	start, end := "\x00", "\x00" // every key: from \x00 on
	if ex.opts.prefix != "" {
		start, end = ex.opts.prefix, clientv3.GetPrefixRangeEnd(ex.opts.prefix)
	}
	// The revision first (a count-only read, which also fails early on a
	// compacted --rev), then every page at that revision: one consistent view.
	rev = ex.opts.rev
	countOpts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithCountOnly()}
	if rev > 0 {
		countOpts = append(countOpts, clientv3.WithRev(rev))
	}
	rctx, cancel := ex.inv.requestContext(ctx)
	resp, err := ex.kv.Get(rctx, start, countOpts...)
	cancel()
	if err != nil {
		return 0, 0, err
	}
	if rev == 0 {
		rev = resp.Header.Revision
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for {
		rctx, cancel := ex.inv.requestContext(ctx)
		resp, err := ex.kv.Get(rctx, start, clientv3.WithRange(end), clientv3.WithRev(rev),
			clientv3.WithLimit(ex.pageSize), clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
		cancel()
		if err != nil {
			return n, rev, err
		}
		for _, kv := range resp.Kvs {
			ttl, err := ex.leaseTTL(ctx, kv)
			if err != nil {
				return n, rev, err
			}
			if err := enc.Encode(newExportLine(kv.Key, kv.Value, ttl)); err != nil {
				return n, rev, err
			}
			n++
		}
		ex.prog.update(n)
		if !resp.More || len(resp.Kvs) == 0 {
			return n, rev, nil
		}
		start = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// leaseTTL returns the granted TTL of kv's lease (0: none, or not wanted),
// asking the cluster once per lease.
func (ex *exporter) leaseTTL(ctx context.Context, kv *mvccpb.KeyValue) (int64, error) {
	if kv.Lease == 0 || !ex.opts.withLeases {
		return 0, nil
	}
	id := clientv3.LeaseID(kv.Lease)
	ttl, ok := ex.ttls[id]
	if !ok {
		rctx, cancel := ex.inv.requestContext(ctx)
		resp, err := ex.lease.TimeToLive(rctx, id)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("lease %s of key %s: %w", leaseHex(id), strconv.Quote(string(kv.Key)), err)
		}
		if resp.TTL != -1 { // -1: the lease no longer exists
			ttl = resp.GrantedTTL
		}
		if ex.ttls == nil {
			ex.ttls = map[clientv3.LeaseID]int64{}
		}
		ex.ttls[id] = ttl
	}
	if ttl == 0 {
		ex.expired++
	}
	return ttl, nil
}

// keyProgressEvery is how often the progress line is redrawn at most.
const keyProgressEvery = 100 * time.Millisecond

// keyProgress redraws one terminal line, "exported 1200 keys", as export or
// import goes. A nil *keyProgress shows nothing.
type keyProgress struct {
	w     io.Writer
	verb  string           // "exported" or "imported"
	now   func() time.Time // nil: time.Now
	shown time.Time        // when the line was last drawn; zero before the first
	drawn bool
}

func (p *keyProgress) update(n int) {
	if p == nil {
		return
	}
	now := time.Now
	if p.now != nil {
		now = p.now
	}
	if t := now(); t.Sub(p.shown) >= keyProgressEvery {
		p.shown = t
		p.drawn = true
		// \033[K clears what a longer previous line left.
		fmt.Fprintf(p.w, "\r%s %d keys\033[K", p.verb, n)
	}
}

// clear erases the progress line, for the summary that follows.
func (p *keyProgress) clear() {
	if p == nil || !p.drawn {
		return
	}
	fmt.Fprint(p.w, "\r\033[K")
	p.drawn = false
}
