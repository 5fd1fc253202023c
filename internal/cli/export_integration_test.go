package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/cairn-db/cairn/internal/testutil"
)

// testClient is a clientv3 client of endpoints, closed at test end.
func testClient(t *testing.T, endpoints string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: strings.Split(endpoints, ","), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// dumpedKV is a key as a test sees it: its value and its lease's granted TTL
// (0: no lease).
type dumpedKV struct {
	value string
	ttl   int64
}

// dump reads every key under prefix ("": every key) with the granted TTL of
// its lease, and returns the keys of each lease.
func dump(t *testing.T, ctx context.Context, cli *clientv3.Client, prefix string) (map[string]dumpedKV, map[clientv3.LeaseID][]string) {
	t.Helper()
	opts := []clientv3.OpOption{clientv3.WithPrefix()}
	if prefix == "" {
		prefix, opts = "\x00", []clientv3.OpOption{clientv3.WithFromKey()}
	}
	resp, err := cli.Get(ctx, prefix, opts...)
	if err != nil {
		t.Fatal(err)
	}
	kvs := map[string]dumpedKV{}
	byLease := map[clientv3.LeaseID][]string{}
	for _, kv := range resp.Kvs {
		d := dumpedKV{value: string(kv.Value)}
		if id := clientv3.LeaseID(kv.Lease); id != 0 {
			ttl, err := cli.TimeToLive(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			d.ttl = ttl.GrantedTTL
			byLease[id] = append(byLease[id], string(kv.Key))
		}
		kvs[string(kv.Key)] = d
	}
	return kvs, byLease
}

var exportedRE = regexp.MustCompile(`^exported (\d+) keys at revision (\d+)\n$`)

// TestIntegrationExportImport exports keys (text, binary, leased) from the
// integration cluster, imports them into a fresh cluster and compares; it
// checks paging, --rev, a bad line, --from-line, --skip-existing and that a
// second import changes nothing.
func TestIntegrationExportImport(t *testing.T) {
	c := integration(t)
	ctx := testutil.Ctx(t)
	src := testClient(t, c.endpoints)
	q := c.prefix + "x/" // the exported prefix
	want := map[string]dumpedKV{
		q + "a":            {value: "1"},
		q + "empty":        {value: ""},
		q + "text/é":       {value: "日本\n\t\"quoted\""},
		q + "\xff\x00bin":  {value: "binary key"},
		q + "binval":       {value: "\x00\xff\xfe\x80"},
		q + "json":         {value: `{"key":"not this","lease_ttl":1}`},
		q + "leased/long1": {value: "x", ttl: 600},
		q + "leased/long2": {value: "y", ttl: 600},
		q + "leased/short": {value: "z", ttl: 300},
	}
	long, err := src.Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	short, err := src.Grant(ctx, 300)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		src.Revoke(context.Background(), long.ID)
		src.Revoke(context.Background(), short.ID)
	})
	for k, d := range want {
		var opts []clientv3.OpOption
		switch d.ttl {
		case 600:
			opts = append(opts, clientv3.WithLease(long.ID))
		case 300:
			opts = append(opts, clientv3.WithLease(short.ID))
		}
		if _, err := src.Put(ctx, k, d.value, opts...); err != nil {
			t.Fatal(err)
		}
	}
	c.must("", "put", c.prefix+"y", "outside the exported prefix")

	// Export: one line per key, sorted by key, binary bytes in base64.
	code, exported, errs := c.run("", "export", q)
	m := exportedRE.FindStringSubmatch(errs)
	if code != exitOK || m == nil || m[1] != "9" {
		t.Fatalf("export: exit %d, stderr %q", code, errs)
	}
	rev := m[2]
	lines := strings.Split(strings.TrimSuffix(exported, "\n"), "\n")
	if len(lines) != 9 {
		t.Fatalf("export wrote %d lines:\n%s", len(lines), exported)
	}
	var keys []string
	for i, line := range lines {
		r, err := parseImportLine([]byte(line))
		if err != nil {
			t.Fatalf("line %d %s: %v", i+1, line, err)
		}
		if d := want[r.key]; r.value != d.value || r.leaseTTL != d.ttl {
			t.Errorf("line %d %s: want value %q, lease_ttl %d", i+1, line, d.value, d.ttl)
		}
		keys = append(keys, r.key)
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Errorf("keys not sorted: %q before %q", keys[i-1], keys[i])
		}
	}
	for _, w := range []string{
		`{"key_b64":"` + base64.StdEncoding.EncodeToString([]byte(q+"\xff\x00bin")) + `","value":"binary key"}`,
		`{"key":"` + q + `binval","value_b64":"AP/+gA=="}`,
		`{"key":"` + q + `leased/short","value":"z","lease_ttl":300}`,
	} {
		if !strings.Contains(exported, w+"\n") {
			t.Errorf("export lacks the line %s:\n%s", w, exported)
		}
	}

	// Two keys per page: the same lines.
	var paged, pagedErr bytes.Buffer
	inv := &invocation{verb: "export", g: &globalFlags{commandTimeout: 5 * time.Second}, stderr: &pagedErr}
	ex := &exporter{inv: inv, kv: src, lease: src, opts: &exportOptions{prefix: q, withLeases: true}, pageSize: 2}
	ex.opts.rev, _ = strconv.ParseInt(rev, 10, 64)
	if err := ex.run(ctx, &paged); err != nil || paged.String() != exported || pagedErr.String() != errs {
		t.Errorf("export 2 keys per page (%v):\n%s%s\nwant\n%s%s", err, paged.String(), pagedErr.String(), exported, errs)
	}
	// --with-leases=false leaves lease_ttl out.
	if out := c.must("", "export", q, "--with-leases=false", "--rev", rev); out != strings.ReplaceAll(strings.ReplaceAll(exported, `,"lease_ttl":600`, ""), `,"lease_ttl":300`, "") {
		t.Errorf("--with-leases=false:\n%s", out)
	}

	// Later changes do not show at --rev; a lease gone since is dropped
	// with a warning.
	c.must("", "put", q+"a", "changed")
	c.must("", "put", q+"new", "new")
	if _, err := src.Revoke(ctx, short.ID); err != nil {
		t.Fatal(err)
	}
	code, out, errs := c.run("", "export", q, "--rev", rev)
	if wantOut := strings.Replace(exported, `,"lease_ttl":300`, "", 1); code != exitOK || out != wantOut {
		t.Errorf("export --rev %s: exit %d:\n%s\nwant\n%s", rev, code, out, wantOut)
	}
	if wantErr := "warning: exported 1 key without lease_ttl: their leases have expired since revision " + rev + "\nexported 9 keys at revision " + rev + "\n"; errs != wantErr {
		t.Errorf("export --rev stderr:\n got %q\nwant %q", errs, wantErr)
	}
	if out := c.must("", "export", q); strings.Count(out, "\n") != 9 || !strings.Contains(out, `"value":"changed"`) || strings.Contains(out, "leased/short") {
		t.Errorf("export after the changes:\n%s", out)
	}

	// Import into a fresh cluster: the same keys, values and lease TTLs,
	// one new lease per distinct TTL.
	dst := testutil.NewCluster(t, 1, testutil.ClusterOptions{})
	d := &cluster{t: t, endpoints: strings.Join(dst.Endpoints(), ",")}
	dcli := testClient(t, d.endpoints)
	file := filepath.Join(t.TempDir(), "export.jsonl")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := d.must("", "import", file, "--batch", "4"); out != "imported 9 keys in 3 transactions\n" {
		t.Errorf("import: %q", out)
	}
	checkImported := func(what string) {
		t.Helper()
		got, byLease := dump(t, ctx, dcli, "")
		if !maps.Equal(got, want) {
			t.Errorf("%s: the cluster holds\n%v\nwant\n%v", what, got, want)
		}
		var sizes []int
		for _, ks := range byLease {
			sizes = append(sizes, len(ks))
		}
		if slices.Sort(sizes); !slices.Equal(sizes, []int{1, 2}) {
			t.Errorf("%s: keys by lease %v, want one lease of 2 keys (600s) and one of 1 (300s)", what, byLease)
		}
	}
	checkImported("import")

	// Again, from stdin: nothing changes (but new leases are granted).
	var j importResult
	out = d.must(exported, "import", "-", "-o", "json")
	if err := json.Unmarshal([]byte(out), &j); err != nil || j != (importResult{Keys: 9, Transactions: 1, Lines: 9, Leases: 2}) {
		t.Errorf("import again -o json: %s (%v)", out, err)
	}
	checkImported("import again")

	// A bad line 5: nothing of its txn is applied, and the error says where.
	bad := importLinesUnder(q+"bad/", 1, 4) + `{"key":"` + q + `bad/5","value":"5","ttl":60}` + "\n" + importLinesUnder(q+"bad/", 6, 6)
	badFile := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(badFile, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = d.run("", "import", badFile)
	wantErr := `cairn: line 5: unknown field "ttl" (want "key" or "key_b64", "value" or "value_b64", and "lease_ttl")` + "\n" +
		"cairn: imported through line 0; rerun with --from-line 1\n"
	if code != exitError || out != "" || errs != wantErr {
		t.Errorf("import of a bad line 5: exit %d, out %q, stderr\n%s\nwant\n%s", code, out, errs, wantErr)
	}
	if got, _ := dump(t, ctx, dcli, q+"bad/"); len(got) != 0 {
		t.Errorf("a bad line 5 let %d keys in: %v", len(got), got)
	}
	if out := d.must("", "import", badFile, "--from-line", "6"); out != "imported 1 keys in 1 transactions\n" {
		t.Errorf("import --from-line 6: %q", out)
	}
	if got, _ := dump(t, ctx, dcli, q+"bad/"); len(got) != 1 || got[q+"bad/6"].value != "6" {
		t.Errorf("after --from-line 6: %v", got)
	}
	if _, err := dcli.Delete(ctx, q+"bad/", clientv3.WithPrefix()); err != nil {
		t.Fatal(err)
	}

	// --skip-existing leaves present keys alone and puts the missing ones.
	d.must("", "put", q+"a", "local")
	d.must("", "del", q+"empty")
	if out := d.must("", "import", file, "--skip-existing", "--rate", "0"); out != "imported 1 keys in 1 transactions (skipped 8 existing keys)\n" {
		t.Errorf("import --skip-existing: %q", out)
	}
	if got, _ := dump(t, ctx, dcli, ""); got[q+"a"].value != "local" || got[q+"empty"] != want[q+"empty"] || len(got) != len(want) {
		t.Errorf("after --skip-existing: %v", got)
	}
}

// importLinesUnder is lines from..to putting prefix<line> = <line>.
func importLinesUnder(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, `{"key":"%s%d","value":"%d"}`+"\n", prefix, i, i)
	}
	return b.String()
}
