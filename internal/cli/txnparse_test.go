package cli

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const exampleTxn = `# move config from blue to green
if
  value("config/mode") = "blue"
  mod("config/x") > 5
  version("a") != 0   # a comment
  create(b) < 10
  lease("l") = 694d7a4c5f3c2a1b
then
  put config/mode green
  del config/old --prefix
  get config/ --prefix --keys-only
else
  get config/mode
`

func TestParseTxnExample(t *testing.T) {
	got, err := parseTxn(exampleTxn)
	if err != nil {
		t.Fatal(err)
	}
	want := &txnRequest{
		compares: []txnCompare{
			{line: 3, col: 3, target: "value", key: "config/mode", op: "=", value: "blue"},
			{line: 4, col: 3, target: "mod", key: "config/x", op: ">", num: 5},
			{line: 5, col: 3, target: "version", key: "a", op: "!=", num: 0},
			{line: 6, col: 3, target: "create", key: "b", op: "<", num: 10},
			{line: 7, col: 3, target: "lease", key: "l", op: "=", num: 0x694d7a4c5f3c2a1b},
		},
		success: []txnOp{
			{line: 9, col: 3, src: "put config/mode green", verb: "put", put: &putOptions{key: "config/mode", value: "green"}},
			{line: 10, col: 3, src: "del config/old --prefix", verb: "del", del: &delOptions{key: "config/old", prefix: true}},
			{line: 11, col: 3, src: "get config/ --prefix --keys-only", verb: "get", get: &getOptions{key: "config/", prefix: true, keysOnly: true}},
		},
		failure: []txnOp{
			{line: 13, col: 3, src: "get config/mode", verb: "get", get: &getOptions{key: "config/mode"}},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseTxn:\n got %+v\nwant %+v", got, want)
	}
	// It converts to client requests without trouble.
	if n := len(got.cmps()); n != 5 {
		t.Errorf("cmps: %d", n)
	}
	if n := len(opsOf(got.success)); n != 3 {
		t.Errorf("ops: %d", n)
	}
}

func TestParseTxnForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *txnRequest
	}{
		{"then only", "then\nput a b\n", &txnRequest{success: []txnOp{
			{line: 2, col: 1, src: "put a b", verb: "put", put: &putOptions{key: "a", value: "b"}}}}},
		{"if only", "if\n value(a) = b\n", &txnRequest{compares: []txnCompare{
			{line: 2, col: 2, target: "value", key: "a", op: "=", value: "b"}}}},
		{"keywords with comments and CRLF", "if # c\r\nthen\r\nelse # e\r\n", &txnRequest{}},
		{"double equals and spaces", "if\n\tvalue ( \"k\" )==\"v w\"\nthen\n", &txnRequest{compares: []txnCompare{
			{line: 2, col: 2, target: "value", key: "k", op: "=", value: "v w"}}}},
		{"quoted values are not flags", "then\nput k \"-1\"\nput k -- --x\n", &txnRequest{success: []txnOp{
			{line: 2, col: 1, src: `put k "-1"`, verb: "put", put: &putOptions{key: "k", value: "-1"}},
			{line: 3, col: 1, src: "put k -- --x", verb: "put", put: &putOptions{key: "k", value: "--x"}},
		}}},
		{"flags with values", "then\nget a z --limit 3 --rev=7 --sort-by value --order descend\nput k --ignore-value --lease 0x1f --prev-kv\ndel a --from-key --prev-kv\n",
			&txnRequest{success: []txnOp{
				{line: 2, col: 1, src: "get a z --limit 3 --rev=7 --sort-by value --order descend", verb: "get",
					get: &getOptions{key: "a", end: "z", limit: 3, rev: 7, sortBy: "value", order: "descend"}},
				{line: 3, col: 1, src: "put k --ignore-value --lease 0x1f --prev-kv", verb: "put",
					put: &putOptions{key: "k", lease: "0x1f", leaseID: 31, prevKV: true, ignoreValue: true}},
				{line: 4, col: 1, src: "del a --from-key --prev-kv", verb: "del", del: &delOptions{key: "a", fromKey: true, prevKV: true}},
			}}},
		{"unicode columns", "then\nput é 'ü' # c\n", &txnRequest{success: []txnOp{
			{line: 2, col: 1, src: "put é 'ü'", verb: "put", put: &putOptions{key: "é", value: "ü"}}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTxn(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	got, err := parseTxn("then\nput \"a b\" \"x\\ty\\n\\\"q\\\"\\\\\\x00\\u00e9\"\nput 'it' 'raw\\n'\n")
	if err != nil {
		t.Fatal(err)
	}
	if p := got.success[0].put; p.key != "a b" || p.value != "x\ty\n\"q\"\\\x00é" {
		t.Errorf("escapes: key %q value %q", p.key, p.value)
	}
	if p := got.success[1].put; p.value != `raw\n` {
		t.Errorf("single quotes: value %q", p.value)
	}
}

func TestParseTxnErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // the full error text
	}{
		{"empty", "", "line 1, column 1: empty txn: expected 'if' or 'then'"},
		{"blank lines", "\n\n", "line 3, column 1: empty txn: expected 'if' or 'then'"},
		{"no section", "put a b\n", "line 1, column 1: expected 'if' or 'then' before the first compare or op"},
		{"duplicate then", "then\nthen\n", "line 2, column 1: duplicate 'then'"},
		{"if after then", "then\n  if\n", "line 2, column 3: 'if' must come before 'then'"},
		{"else without then", "if\nelse\n", "line 2, column 1: 'else' needs a 'then' first"},
		{"unknown target", "if\n  size(\"a\") > 1\n", `line 2, column 3: unknown compare target "size" (want value, version, create, mod or lease)`},
		{"no target", "if\n  (a) = 1\n", `line 2, column 3: expected a compare such as value("key") = "v"`},
		{"missing paren", "if\n  value \"a\" = 1\n", "line 2, column 9: expected '(' after value"},
		{"missing close paren", "if\n  value(\"a\" = 1\n", "line 2, column 13: expected ')' after the key"},
		{"empty key", "if\n  value() = 1\n", "line 2, column 9: expected a key"},
		{"missing operator", "if\n  value(a) \"b\"\n", "line 2, column 12: expected an operator: =, !=, < or >"},
		{"bad operator", "if\n  mod(a) >= 3\n", `line 2, column 10: unsupported operator ">=" (want =, !=, < or >)`},
		{"missing value", "if\n  mod(a) >\n", "line 2, column 11: expected a value after >"},
		{"non-integer", "if\n  version(a) = x1\n", `line 2, column 16: version compares need a decimal integer, got "x1"`},
		{"bad lease", "if\n  lease(a) = zz\n", `line 2, column 14: lease compares need a hexadecimal lease ID, got "zz"`},
		{"trailing junk", "if\n  mod(a) = 1 2\n", `line 2, column 14: unexpected "2" after the compare`},
		{"unterminated", "then\n  put a \"b\n", "line 2, column 9: unterminated \"-quoted string"},
		{"unterminated single", "then\n  put a 'b\n", "line 2, column 9: unterminated '-quoted string"},
		{"bad escape", "then\n  put a \"x\\q\"\n", `line 2, column 11: unknown escape sequence \q`},
		{"short hex escape", "then\n  put a \"\\x4\"\n", `line 2, column 10: \x needs 2 hex digits`},
		{"bad unicode escape", "then\n  put a \"\\U00110000\"\n", `line 2, column 10: \U00110000 is not a valid Unicode code point`},
		{"quote inside word", "then\n  put a b\"c\"\n", "line 2, column 10: quote inside a word: quote the whole word"},
		{"no space after string", "then\n  put \"a\"b c\n", `line 2, column 10: unexpected 'b' after a quoted string (add a space)`},
		{"unknown op", "then\n  set a b\n", `line 2, column 3: unknown op "set" (want put, del or get)`},
		{"quoted op", "then\n  \"put\" a b\n", "line 2, column 3: expected put, del or get, got a quoted string"},
		{"unknown flag", "then\n  get a --bogus\n", "line 2, column 9: unknown flag --bogus for get (put -- before values that start with '-')"},
		{"serializable in txn", "then\n  get a --serializable\n", "line 2, column 9: unknown flag --serializable for get (put -- before values that start with '-')"},
		{"flag needs value", "then\n  get a --limit\n", "line 2, column 9: flag --limit needs a value"},
		{"bad flag value", "then\n  get a --limit ten\n", `line 2, column 9: bad value "ten" for --limit`},
		{"put without value", "then\n  put a\n", "line 2, column 3: put needs KEY and VALUE"},
		{"put too many", "then\n  put a b c\n", "line 2, column 3: put takes KEY VALUE, got 3 arguments (quote values with spaces)"},
		{"else first", "else\n", "line 1, column 1: 'else' needs a 'then' first"},
		{"get no key", "then\nget --prefix\n", "line 2, column 1: get needs KEY"},
		{"prefix and from-key", "then\ndel a --prefix --from-key\n", "line 2, column 1: --prefix and --from-key cannot be used together"},
		{"range with prefix", "then\nget a b --prefix\n", "line 2, column 1: RANGE_END cannot be combined with --prefix or --from-key"},
		{"bad sort", "then\nget a --sort-by size\n", `line 2, column 1: unknown --sort-by "size" (want key, version, create, modify or value)`},
		{"keys and count", "then\nget a --keys-only --count-only\n", "line 2, column 1: --keys-only and --count-only cannot be used together"},
		{"lease and ignore", "then\nput a b --lease 1 --ignore-lease\n", "line 2, column 1: --ignore-lease cannot be used with --lease"},
		{"put bad lease", "then\nput a b --lease xyz\n", `line 2, column 1: bad --lease: "xyz" is not a hexadecimal lease ID`},
		{"invalid utf8", "then\nput a \xff\n", "line 2, column 7: invalid UTF-8"},
		{"column counts characters", "then\n  put é \"ü\n", "line 2, column 9: unterminated \"-quoted string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseTxn(tt.in)
			if err == nil {
				t.Fatal("parsed without error")
			}
			if !errors.Is(err, errTxnSyntax) {
				t.Errorf("%v is not errTxnSyntax", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

func FuzzParseTxn(f *testing.F) {
	f.Add(exampleTxn)
	f.Add("then\nput \"a\\x00\" 'b' --prev-kv\n")
	f.Add("if\n lease(k) != 0\nthen\nget a --limit=3\nelse\ndel a z\n")
	f.Add("if\n value(\"\\u00e9\") < \"\\U0001F600\"\n")
	f.Add("then\nget a -- --b\n")
	f.Fuzz(func(t *testing.T, in string) {
		req, err := parseTxn(in)
		if err != nil {
			var se *txnSyntaxError
			if !errors.As(err, &se) || se.line < 1 || se.col < 1 {
				t.Fatalf("error without a position: %v", err)
			}
			if lines := strings.Count(in, "\n") + 1; se.line > lines {
				t.Fatalf("error line %d beyond the %d lines: %v", se.line, lines, err)
			}
			return
		}
		// Everything parsed converts to client requests.
		_ = req.cmps()
		_ = opsOf(req.success)
		_ = opsOf(req.failure)
		for _, c := range req.compares {
			switch c.op {
			case "=", "!=", "<", ">":
			default:
				t.Fatalf("bad op %q", c.op)
			}
		}
	})
}
