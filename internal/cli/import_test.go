package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseImportLine(t *testing.T) {
	tests := []struct {
		line       string
		key, value string
		ttl        int64
	}{
		{`{"key":"a","value":"1"}`, "a", "1", 0},
		{`{"value":"1","key":"a"}` + "\r\n", "a", "1", 0}, // any order, CRLF
		{` { "key" : "a" , "value" : "" } `, "a", "", 0},
		{`{"key":"a","value":"x","lease_ttl":60}`, "a", "x", 60},
		{`{"key":"\u00e9\n","value":"\u0000"}`, "é\n", "\x00", 0},
		{`{"key_b64":"/wBr","value_b64":""}`, "\xff\x00k", "", 0},
		{`{"key":"k","value_b64":"AAEC/w=="}`, "k", "\x00\x01\x02\xff", 0},
	}
	for _, tt := range tests {
		r, err := parseImportLine([]byte(tt.line))
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if r.key != tt.key || r.value != tt.value || r.leaseTTL != tt.ttl {
			t.Errorf("%s: got %q=%q ttl %d, want %q=%q ttl %d", tt.line, r.key, r.value, r.leaseTTL, tt.key, tt.value, tt.ttl)
		}
	}
}

func TestParseImportLineErrors(t *testing.T) {
	tests := []struct {
		line string
		want string // the whole error text
	}{
		{`{"key":"a","value":"1","extra":true}`, `unknown field "extra" (want "key" or "key_b64", "value" or "value_b64", and "lease_ttl")`},
		{`{"Key":"a","value":"1"}`, `unknown field "Key" (want "key" or "key_b64", "value" or "value_b64", and "lease_ttl")`}, // exact names, unlike encoding/json
		{`{"key":"a","key":"b","value":"1"}`, `field "key" appears twice`},
		{`{"key":"a","key_b64":"YQ==","value":"1"}`, `both "key" and "key_b64"`},
		{`{"key":"a","value":"1","value_b64":"MQ=="}`, `both "value" and "value_b64"`},
		{`{"value":"1"}`, `no "key" (or "key_b64")`},
		{`{"key":"a"}`, `no "value" (or "value_b64")`},
		{`{"key":"","value":"1"}`, `empty key`},
		{`{"key_b64":"","value":"1"}`, `empty key`},
		{`{"key":null,"value":"1"}`, `"key" must be a string, got null`},
		{`{"key":"a","value":1}`, `"value" must be a string, got 1`},
		{`{"key":"a","value":"1","lease_ttl":0}`, `"lease_ttl" must be a positive integer number of seconds, got 0`},
		{`{"key":"a","value":"1","lease_ttl":-5}`, `"lease_ttl" must be a positive integer number of seconds, got -5`},
		{`{"key":"a","value":"1","lease_ttl":1.5}`, `"lease_ttl" must be a positive integer number of seconds, got 1.5`},
		{`{"key":"a","value":"1","lease_ttl":"60"}`, `"lease_ttl" must be a positive integer number of seconds, got "60"`},
		{`{"key":"a","value":"1","lease_ttl":null}`, `"lease_ttl" must be a positive integer number of seconds, got null`},
		{`{"key_b64":"not base64!","value":"1"}`, `"key_b64" is not standard base64: illegal base64 data at input byte 3`},
		{`{"key":"a","value_b64":"/w"}`, `"value_b64" is not standard base64: illegal base64 data at input byte 0`},
		{`{"key":"a","value_b64":"-_8="}`, `"value_b64" is not standard base64: illegal base64 data at input byte 0`}, // URL alphabet
		{`{"key":"a","value":"1"} {}`, `text after the JSON object`},
		{`{"key":"a","value":"1"}x`, `text after the JSON object`},
		{`{"key":"a","value":"1"`, `not JSON: the line ends inside the object`},
		{`{"key":"a",}`, `not JSON: invalid character '}' looking for beginning of object key string`},
		{`["a","1"]`, `not a JSON object (want {"key":...,"value":...})`},
		{`"a"`, `not a JSON object (want {"key":...,"value":...})`},
		{`key=a`, `not JSON: invalid character 'k' looking for beginning of value`},
		{"{\"key\":\"\xff\",\"value\":\"1\"}", `not valid UTF-8 (bytes that are not UTF-8 go in "key_b64" or "value_b64", in base64)`},
	}
	for _, tt := range tests {
		_, err := parseImportLine([]byte(tt.line))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s:\n got %v\nwant %s", tt.line, err, tt.want)
		}
	}
}

// FuzzParseImportLine checks that parsing never panics and that a line that
// parses means what export would write for it.
func FuzzParseImportLine(f *testing.F) {
	for _, s := range []string{
		`{"key":"a","value":"1"}`,
		`{"key_b64":"/wBr","value_b64":"AAEC","lease_ttl":60}`,
		`{"key":"a","value":"1","extra":1}`,
		`{"key":"a","key":"b","value":""}`,
		`{"key":"a","value":"1"`,
		`[1,2]`,
		"{\"key\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := parseImportLine(line)
		if err != nil {
			return
		}
		if r.key == "" || r.leaseTTL < 0 {
			t.Fatalf("%q parsed to key %q, ttl %d", line, r.key, r.leaseTTL)
		}
		again, err := parseImportLine([]byte(encodeExportLine(t, r.key, r.value, r.leaseTTL)))
		if err != nil || again != r {
			t.Fatalf("%q: %+v, re-encoded: %+v, %v", line, r, again, err)
		}
	})
}

// testImport runs an importer over text with a recording apply that fails
// the batch whose first line is failAt (0: none). It returns the batches
// applied, as line numbers, and run's error.
func testImport(t *testing.T, text string, batch, fromLine, failAt int) (*importer, [][]int, error) {
	t.Helper()
	var got [][]int
	im := &importer{batch: batch, fromLine: fromLine, apply: func(_ context.Context, b *importBatch) error {
		if b.recs[0].line == failAt {
			return errors.New("injected failure")
		}
		var lines []int
		for _, r := range b.recs {
			lines = append(lines, r.line)
		}
		got = append(got, lines)
		return nil
	}}
	err := im.run(context.Background(), strings.NewReader(text))
	return im, got, err
}

// lineRange is from..to.
func lineRange(from, to int) []int {
	var l []int
	for i := from; i <= to; i++ {
		l = append(l, i)
	}
	return l
}

// importLines is n lines putting key-<line> to a value of size bytes.
func importLines(n, size int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, `{"key":"key-%d","value":%q}`+"\n", i, strings.Repeat("v", size))
	}
	return b.String()
}

func checkBatches(t *testing.T, what string, got, want [][]int) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: batches\n got %v\nwant %v", what, got, want)
	}
}

func TestImportBatchByCount(t *testing.T) {
	im, got, err := testImport(t, importLines(300, 1), 128, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, "300 lines, --batch 128", got, [][]int{lineRange(1, 128), lineRange(129, 256), lineRange(257, 300)})
	if im.done != 300 || im.lines != 300 || im.through != 300 {
		t.Errorf("done %d, lines %d, through %d", im.done, im.lines, im.through)
	}
	_, got, _ = testImport(t, importLines(3, 1), 1, 1, 0)
	checkBatches(t, "--batch 1", got, [][]int{{1}, {2}, {3}})
	_, got, _ = testImport(t, "", 128, 1, 0)
	checkBatches(t, "empty file", got, nil)
}

func TestImportBatchBySize(t *testing.T) {
	// 300 KiB values: three fit in importTxnBytes (1 MiB), four do not.
	_, got, err := testImport(t, importLines(7, 300<<10), 128, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, "300 KiB values", got, [][]int{{1, 2, 3}, {4, 5, 6}, {7}})
	// A put larger than the limit goes alone (the server judges it).
	text := importLines(1, 10) + importLines(1, 2<<20) + importLines(2, 10)
	_, got, _ = testImport(t, text, 128, 1, 0)
	checkBatches(t, "a 2 MiB value", got, [][]int{{1}, {2}, {3, 4}})
	// Exactly at the limit still fits.
	r := importRecord{key: "k", value: strings.Repeat("v", importTxnBytes-importPutOverhead-1)}
	var b importBatch
	if !b.fits(r, 128) {
		t.Error("an empty batch refuses a record")
	}
	b.add(importRecord{key: "j"})
	if b.fits(r, 128) {
		t.Errorf("a batch of %d bytes takes %d more", b.bytes, r.size())
	}
}

func TestImportBatchDuplicateKey(t *testing.T) {
	// A txn may not put a key twice: the second put goes in the next txn,
	// so that the later line wins as it would in a sequence of puts.
	text := `{"key":"a","value":"1"}
{"key":"b","value":"1"}
{"key":"a","value":"2"}
{"key":"c","value":"1"}
`
	_, got, err := testImport(t, text, 128, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, "a key twice", got, [][]int{{1, 2}, {3, 4}})
}

func TestImportBadLine(t *testing.T) {
	text := importLines(4, 1) + `{"key":"key-5","value":"5","extra":1}` + "\n" + importLines(3, 1)
	// Line 5 is in the first batch: nothing is applied.
	im, got, err := testImport(t, text, 128, 1, 0)
	checkBatches(t, "bad line 5, --batch 128", got, nil)
	want := `line 5: unknown field "extra" (want "key" or "key_b64", "value" or "value_b64", and "lease_ttl"); imported through line 0; rerun with --from-line 1`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	var ie *importError
	if !errors.As(err, &ie) || ie.through != 0 || im.done != 0 {
		t.Errorf("through %+v, done %d", ie, im.done)
	}
	// With --batch 2 the batches before line 5's are applied.
	_, got, err = testImport(t, text, 2, 1, 0)
	checkBatches(t, "bad line 5, --batch 2", got, [][]int{{1, 2}, {3, 4}})
	if err == nil || !strings.HasPrefix(err.Error(), "line 5: ") || !strings.HasSuffix(err.Error(), "; imported through line 4; rerun with --from-line 5") {
		t.Errorf("error: %v", err)
	}
	// With --batch 3 line 4 is in line 5's batch: only 1-3 are applied.
	_, got, err = testImport(t, text, 3, 1, 0)
	checkBatches(t, "bad line 5, --batch 3", got, [][]int{{1, 2, 3}})
	if err == nil || !strings.HasSuffix(err.Error(), "imported through line 3; rerun with --from-line 4") {
		t.Errorf("error: %v", err)
	}
}

func TestImportFromLine(t *testing.T) {
	// Lines before --from-line are not even parsed; line numbers stay the
	// file's; blank lines are skipped.
	text := "not json\n" + importLines(2, 1) + "\n" + `{"key":"x","value":"y"}` + "\n  \n" + `{"key":"z","value":"y"}` + "\n"
	im, got, err := testImport(t, text, 2, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkBatches(t, "--from-line 4", got, [][]int{{5, 7}})
	if im.lines != 7 || im.through != 7 {
		t.Errorf("lines %d, through %d", im.lines, im.through)
	}
	// Past the end: nothing to do.
	_, got, err = testImport(t, text, 2, 100, 0)
	checkBatches(t, "--from-line 100", got, nil)
	if err != nil {
		t.Error(err)
	}
	// A last line without a newline counts.
	_, got, _ = testImport(t, strings.TrimSuffix(importLines(3, 1), "\n"), 128, 3, 0)
	checkBatches(t, "no final newline", got, [][]int{{3}})
}

func TestImportApplyError(t *testing.T) {
	_, got, err := testImport(t, importLines(10, 1), 4, 3, 7)
	checkBatches(t, "failing batch at line 7", got, [][]int{{3, 4, 5, 6}})
	want := "lines 7-10: injected failure; imported through line 6; rerun with --from-line 7"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n got %v\nwant %s", err, want)
	}
	// Failing at once: the hint names --from-line as given.
	_, _, err = testImport(t, importLines(10, 1), 4, 3, 3)
	if err == nil || !strings.HasSuffix(err.Error(), "imported through line 2; rerun with --from-line 3") {
		t.Errorf("error: %v", err)
	}
}

func TestImportInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	applied := 0
	im := &importer{batch: 2, fromLine: 1, apply: func(context.Context, *importBatch) error {
		if applied++; applied == 2 {
			cancel() // interrupted during the second txn, which succeeds
		}
		return nil
	}}
	err := im.run(ctx, strings.NewReader(importLines(10, 1)))
	if !errors.Is(err, context.Canceled) || applied != 2 || err.Error() != "context canceled; imported through line 4; rerun with --from-line 5" {
		t.Errorf("applied %d, error %v", applied, err)
	}
}

func TestImportBatchError(t *testing.T) {
	for _, tt := range []struct {
		e    *batchError
		want string
	}{
		{&batchError{first: 7, last: 7, err: errors.New("injected")}, "line 7: injected"},
		{&batchError{first: 1, last: 128, err: status.Error(codes.ResourceExhausted, "too big")}, "lines 1-128: too big"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	// reportError still sees a timeout (and words it itself).
	err := &importError{err: &batchError{first: 1, last: 2, err: context.DeadlineExceeded}}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("%v does not wrap context.DeadlineExceeded", err)
	}
}

func TestPacer(t *testing.T) {
	now := time.Unix(0, 0)
	var slept []time.Duration
	p := &pacer{
		every: 20 * time.Millisecond, // --rate 50
		now:   func() time.Time { return now },
		sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil },
	}
	ctx := context.Background()
	p.wait(ctx) // the first goes at once
	now = now.Add(5 * time.Millisecond)
	p.wait(ctx) // 15ms early
	p.wait(ctx) // right after: a whole interval
	now = now.Add(time.Second)
	p.wait(ctx) // late: at once, and no catching up after
	p.wait(ctx)
	want := []time.Duration{15 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}
	if fmt.Sprint(slept) != fmt.Sprint(want) {
		t.Errorf("slept %v, want %v", slept, want)
	}
	var none *pacer // --rate 0
	if err := none.wait(ctx); err != nil {
		t.Error(err)
	}
	// The real sleep ends with its context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := (&pacer{every: time.Hour, next: time.Now().Add(time.Hour)}).wait(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled wait: %v", err)
	}
}

func TestImportUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"import"}, "cairn import: import takes exactly one argument: FILE (- for stdin)\nRun 'cairn import --help' for usage."},
		{[]string{"import", "a", "b"}, "import takes exactly one argument: FILE (- for stdin)"},
		{[]string{"import", "-", "--batch", "0"}, "--batch must be at least 1"},
		{[]string{"import", "-", "--rate", "-1"}, "--rate must not be negative (0: no limit)"},
		{[]string{"import", "-", "--from-line", "0"}, "--from-line must be at least 1 (lines are numbered from 1)"},
		{[]string{"import", "-", "--batch", "x"}, `invalid value "x" for flag -batch`},
	} {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("%q: exit %d, out %q, stderr %q; want exit 2 and %q", tt.args, code, out, errs, tt.want)
		}
	}
	// A missing file is reported before any member is contacted.
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	code, _, errs := runCLI(t, "", "import", missing, "--endpoints", "127.0.0.1:1")
	if code != exitError || errs != "cairn: open "+missing+": no such file or directory\n" {
		t.Errorf("missing file: exit %d, %q", code, errs)
	}
}

func TestOutputImported(t *testing.T) {
	r := importResult{Keys: 300, Transactions: 3, Lines: 301, Leases: 1}
	for _, tt := range []struct {
		format string
		r      importResult
		want   string
	}{
		{outputTable, r, "imported 300 keys in 3 transactions\n"},
		{outputTable, importResult{Keys: 1, Transactions: 1, Skipped: 4}, "imported 1 keys in 1 transactions (skipped 4 existing keys)\n"},
		{outputJSON, r, `{"keys":300,"transactions":3,"skipped":0,"lines":301,"leases":1}` + "\n"},
		{outputValue, r, "300\n"},
	} {
		var buf strings.Builder
		if err := (printer{w: &buf, format: tt.format}).imported(tt.r); err != nil {
			t.Fatal(err)
		}
		if buf.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.format, buf.String(), tt.want)
		}
	}
}
