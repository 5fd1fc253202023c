package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The txn language (read by `cairn txn` on stdin), line by line:
//
//	# a comment, to the end of the line
//	if
//	  value("config/mode") = "blue"
//	  mod("config/x") > 5
//	then
//	  put config/mode green
//	  del config/old --prefix
//	  get config/ --prefix
//	else
//	  get config/mode
//
// Sections: the lines `if`, `then` and `else`, each alone on its line and in
// that order; each is optional, but the text must have `if` or `then`.
// Compares (under `if`): TARGET(KEY) OP VALUE, where TARGET is value,
// version, create, mod or lease, OP is =, !=, < or >, and VALUE is a string
// for value, a decimal integer for version/create/mod and a hexadecimal ID for
// lease (0: no lease). All compares must hold for the `then` ops to run;
// otherwise the `else` ops run.
// Ops (under `then` and `else`): put, del and get lines with the arguments and
// flags of the verbs of the same name (get without --serializable).
// Words: a bare word runs to the next space; "double-quoted" strings take Go
// escapes (\n \t \" \\ \xHH \u00e9 ...); 'single-quoted' strings are literal.
// A quoted word is never a flag, so put k "-1" writes the value -1. A word
// that starts with # begins a comment; quote it to use it as a key or value.

// txnRequest is a parsed txn text.
type txnRequest struct {
	compares []txnCompare
	success  []txnOp
	failure  []txnOp
}

// txnCompare is one compare line.
type txnCompare struct {
	line, col int
	target    string // value, version, create, mod or lease
	key       string
	op        string // =, !=, < or >
	value     string // for target value
	num       int64  // for the other targets
}

// txnOp is one put, del or get line.
type txnOp struct {
	line, col int
	src       string // the line as written, without its comment
	verb      string // put, del or get
	get       *getOptions
	put       *putOptions
	del       *delOptions
}

// errTxnSyntax is wrapped by every txn parse error.
var errTxnSyntax = errors.New("txn syntax error")

// txnSyntaxError locates a parse error: line and column (in characters) are
// 1-based.
type txnSyntaxError struct {
	line, col int
	msg       string
}

func (e *txnSyntaxError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.line, e.col, e.msg)
}

func (e *txnSyntaxError) Unwrap() error { return errTxnSyntax }

func syntaxErr(line, col int, format string, args ...any) *txnSyntaxError {
	return &txnSyntaxError{line: line, col: col, msg: fmt.Sprintf(format, args...)}
}

// parseTxn parses the txn language.
func parseTxn(text string) (*txnRequest, error) {
	if !utf8.ValidString(text) {
		return nil, locateInvalidUTF8(text)
	}
	req := &txnRequest{}
	section := "" // "", "if", "then" or "else"
	seenSection := false
	lines := strings.Split(text, "\n")
	for i, raw := range lines {
		lineNo := i + 1
		line := []rune(strings.TrimSuffix(raw, "\r"))
		lx := &lexer{line: line, lineNo: lineNo}
		lx.skipSpace()
		if lx.atEnd() {
			continue
		}
		kwCol := lx.pos + 1
		if kw, ok := lx.keyword(); ok {
			if err := checkSectionOrder(section, kw, lineNo, kwCol); err != nil {
				return nil, err
			}
			section, seenSection = kw, true
			continue
		}
		switch section {
		case "":
			return nil, syntaxErr(lineNo, lx.pos+1, "expected 'if' or 'then' before the first compare or op")
		case "if":
			c, err := lx.compare()
			if err != nil {
				return nil, err
			}
			req.compares = append(req.compares, c)
		default:
			op, err := lx.op()
			if err != nil {
				return nil, err
			}
			if section == "then" {
				req.success = append(req.success, op)
			} else {
				req.failure = append(req.failure, op)
			}
		}
	}
	if !seenSection {
		return nil, syntaxErr(len(lines), 1, "empty txn: expected 'if' or 'then'")
	}
	return req, nil
}

func locateInvalidUTF8(text string) error {
	line, col := 1, 1
	for i := 0; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return syntaxErr(line, col, "invalid UTF-8")
}

var sectionRank = map[string]int{"": 0, "if": 1, "then": 2, "else": 3}

func checkSectionOrder(cur, next string, line, col int) error {
	if cur == next {
		return syntaxErr(line, col, "duplicate '%s'", next)
	}
	if sectionRank[next] < sectionRank[cur] {
		return syntaxErr(line, col, "'%s' must come before '%s'", next, cur)
	}
	if next == "else" && cur != "then" {
		return syntaxErr(line, col, "'else' needs a 'then' first")
	}
	return nil
}

// lexer scans one line; pos indexes line (runes), columns are pos+1.
type lexer struct {
	line   []rune
	lineNo int
	pos    int
}

func (lx *lexer) atEnd() bool { return lx.pos >= len(lx.line) || lx.line[lx.pos] == '#' }

func (lx *lexer) skipSpace() {
	for lx.pos < len(lx.line) && unicode.IsSpace(lx.line[lx.pos]) {
		lx.pos++
	}
}

func (lx *lexer) errAt(pos int, format string, args ...any) error {
	return syntaxErr(lx.lineNo, pos+1, format, args...)
}

// keyword reports whether the line is just if, then or else (plus a comment).
func (lx *lexer) keyword() (string, bool) {
	start := lx.pos
	end := start
	for end < len(lx.line) && !unicode.IsSpace(lx.line[end]) && lx.line[end] != '#' {
		end++
	}
	w := string(lx.line[start:end])
	if w != "if" && w != "then" && w != "else" {
		return "", false
	}
	save := lx.pos
	lx.pos = end
	lx.skipSpace()
	if !lx.atEnd() {
		lx.pos = save
		return "", false
	}
	return w, true
}

// word is one token of an op line.
type word struct {
	text   string
	col    int
	quoted bool
}

// quoted scans a quoted string starting at lx.pos (a " or ').
func (lx *lexer) quoted() (string, error) {
	start := lx.pos
	q := lx.line[start]
	var b strings.Builder
	i := start + 1
	for {
		if i >= len(lx.line) {
			return "", lx.errAt(start, "unterminated %c-quoted string", q)
		}
		r := lx.line[i]
		if r == q {
			lx.pos = i + 1
			return b.String(), nil
		}
		if r != '\\' || q == '\'' {
			b.WriteRune(r)
			i++
			continue
		}
		n, err := lx.escape(i, &b)
		if err != nil {
			return "", err
		}
		i += n
	}
}

// escape decodes the escape sequence at line[i] (a backslash) into b and
// returns its length in runes.
func (lx *lexer) escape(i int, b *strings.Builder) (int, error) {
	if i+1 >= len(lx.line) {
		return 0, lx.errAt(i, "unterminated escape sequence")
	}
	simple := map[rune]byte{'n': '\n', 't': '\t', 'r': '\r', '\\': '\\', '"': '"', '\'': '\'', 'a': '\a', 'b': '\b', 'f': '\f', 'v': '\v', '0': 0}
	c := lx.line[i+1]
	if v, ok := simple[c]; ok {
		b.WriteByte(v)
		return 2, nil
	}
	digits := map[rune]int{'x': 2, 'u': 4, 'U': 8}[c]
	if digits == 0 {
		return 0, lx.errAt(i, "unknown escape sequence \\%c", c)
	}
	if i+2+digits > len(lx.line) {
		return 0, lx.errAt(i, "\\%c needs %d hex digits", c, digits)
	}
	hex := string(lx.line[i+2 : i+2+digits])
	v, err := strconv.ParseUint(hex, 16, 32)
	if err != nil {
		return 0, lx.errAt(i, "\\%c needs %d hex digits", c, digits)
	}
	if c == 'x' {
		b.WriteByte(byte(v))
	} else {
		if !utf8.ValidRune(rune(v)) {
			return 0, lx.errAt(i, "\\%c%s is not a valid Unicode code point", c, hex)
		}
		b.WriteRune(rune(v))
	}
	return 2 + digits, nil
}

// words splits the rest of the line into words, stopping at a comment.
func (lx *lexer) words() ([]word, error) {
	var ws []word
	for {
		lx.skipSpace()
		if lx.atEnd() {
			return ws, nil
		}
		start := lx.pos
		r := lx.line[start]
		if r == '"' || r == '\'' {
			s, err := lx.quoted()
			if err != nil {
				return nil, err
			}
			if lx.pos < len(lx.line) && !unicode.IsSpace(lx.line[lx.pos]) {
				return nil, lx.errAt(lx.pos, "unexpected %q after a quoted string (add a space)", lx.line[lx.pos])
			}
			ws = append(ws, word{text: s, col: start + 1, quoted: true})
			continue
		}
		for lx.pos < len(lx.line) && !unicode.IsSpace(lx.line[lx.pos]) {
			if c := lx.line[lx.pos]; c == '"' || c == '\'' {
				return nil, lx.errAt(lx.pos, "quote inside a word: quote the whole word")
			}
			lx.pos++
		}
		ws = append(ws, word{text: string(lx.line[start:lx.pos]), col: start + 1})
	}
}

// op parses a put, del or get line.
func (lx *lexer) op() (txnOp, error) {
	startPos := lx.pos
	ws, err := lx.words()
	if err != nil {
		return txnOp{}, err
	}
	src := strings.TrimSpace(string(lx.line[startPos:lx.pos]))
	verbWord := ws[0]
	op := txnOp{line: lx.lineNo, col: verbWord.col, src: src}
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var setArgs func([]string) error
	switch {
	case verbWord.quoted:
		return txnOp{}, lx.errAt(verbWord.col-1, "expected put, del or get, got a quoted string")
	case verbWord.text == "put":
		op.verb, op.put = "put", &putOptions{}
		op.put.register(fs)
		setArgs = func(a []string) error { return op.put.setArgs(a, nil) }
	case verbWord.text == "del" || verbWord.text == "delete":
		op.verb, op.del = "del", &delOptions{}
		op.del.register(fs)
		setArgs = op.del.setArgs
	case verbWord.text == "get":
		op.verb, op.get = "get", &getOptions{}
		op.get.register(fs, true)
		setArgs = op.get.setArgs
	default:
		return txnOp{}, lx.errAt(verbWord.col-1, "unknown op %q (want put, del or get)", verbWord.text)
	}
	args, err := lx.setFlags(fs, op.verb, ws[1:])
	if err != nil {
		return txnOp{}, err
	}
	if err := setArgs(args); err != nil {
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		return txnOp{}, lx.errAt(verbWord.col-1, "%s", msg)
	}
	return op, nil
}

// setFlags applies the flag words of an op line to fs and returns the other
// words. Quoted words are never flags; a bare "--" ends the flags.
func (lx *lexer) setFlags(fs *flag.FlagSet, verb string, ws []word) ([]string, error) {
	var args []string
	for i := 0; i < len(ws); i++ {
		w := ws[i]
		if w.quoted || len(w.text) < 2 || w.text[0] != '-' {
			args = append(args, w.text)
			continue
		}
		if w.text == "--" {
			for _, rest := range ws[i+1:] {
				args = append(args, rest.text)
			}
			break
		}
		name := strings.TrimPrefix(strings.TrimPrefix(w.text, "-"), "-")
		value, hasValue := "", false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, value, hasValue = name[:j], name[j+1:], true
		}
		f := fs.Lookup(name)
		if f == nil {
			return nil, lx.errAt(w.col-1, "unknown flag --%s for %s (put -- before values that start with '-')", name, verb)
		}
		if !hasValue {
			if isBoolFlag(f) {
				value = "true"
			} else {
				if i+1 >= len(ws) {
					return nil, lx.errAt(w.col-1, "flag --%s needs a value", name)
				}
				i++
				value = ws[i].text
			}
		}
		if err := fs.Set(name, value); err != nil {
			return nil, lx.errAt(w.col-1, "bad value %q for --%s", value, name)
		}
	}
	return args, nil
}

var compareTargets = map[string]bool{"value": true, "version": true, "create": true, "mod": true, "lease": true}

// compare parses TARGET(KEY) OP VALUE.
func (lx *lexer) compare() (txnCompare, error) {
	c := txnCompare{line: lx.lineNo, col: lx.pos + 1}
	start := lx.pos
	for lx.pos < len(lx.line) && (unicode.IsLetter(lx.line[lx.pos]) || lx.line[lx.pos] == '_') {
		lx.pos++
	}
	c.target = string(lx.line[start:lx.pos])
	if c.target == "" {
		return c, lx.errAt(start, `expected a compare such as value("key") = "v"`)
	}
	if !compareTargets[c.target] {
		return c, lx.errAt(start, "unknown compare target %q (want value, version, create, mod or lease)", c.target)
	}
	lx.skipSpace()
	if lx.pos >= len(lx.line) || lx.line[lx.pos] != '(' {
		return c, lx.errAt(lx.pos, "expected '(' after %s", c.target)
	}
	lx.pos++
	lx.skipSpace()
	key, err := lx.compareWord(")")
	if err != nil {
		return c, err
	}
	c.key = key
	lx.skipSpace()
	if lx.pos >= len(lx.line) || lx.line[lx.pos] != ')' {
		return c, lx.errAt(lx.pos, "expected ')' after the key")
	}
	lx.pos++
	lx.skipSpace()
	opPos := lx.pos
	for lx.pos < len(lx.line) && strings.ContainsRune("=!<>", lx.line[lx.pos]) {
		lx.pos++
	}
	c.op = string(lx.line[opPos:lx.pos])
	switch c.op {
	case "=", "!=", "<", ">":
	case "==":
		c.op = "="
	case "":
		return c, lx.errAt(opPos, "expected an operator: =, !=, < or >")
	default:
		return c, lx.errAt(opPos, "unsupported operator %q (want =, !=, < or >)", c.op)
	}
	lx.skipSpace()
	valPos := lx.pos
	if lx.atEnd() {
		return c, lx.errAt(valPos, "expected a value after %s", c.op)
	}
	val, err := lx.compareWord("")
	if err != nil {
		return c, err
	}
	lx.skipSpace()
	if !lx.atEnd() {
		return c, lx.errAt(lx.pos, "unexpected %q after the compare", string(lx.line[lx.pos:]))
	}
	switch c.target {
	case "value":
		c.value = val
	case "lease":
		id, err := parseLeaseID(val)
		if err != nil {
			return c, lx.errAt(valPos, "lease compares need a hexadecimal lease ID, got %q", val)
		}
		c.num = id
	default:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			return c, lx.errAt(valPos, "%s compares need a decimal integer, got %q", c.target, val)
		}
		c.num = n
	}
	return c, nil
}

// compareWord scans a quoted string or a bare word ending at a space or at
// one of the stop characters.
func (lx *lexer) compareWord(stop string) (string, error) {
	if lx.pos < len(lx.line) && (lx.line[lx.pos] == '"' || lx.line[lx.pos] == '\'') {
		return lx.quoted()
	}
	start := lx.pos
	for lx.pos < len(lx.line) && !unicode.IsSpace(lx.line[lx.pos]) && !strings.ContainsRune(stop, lx.line[lx.pos]) {
		if c := lx.line[lx.pos]; c == '"' || c == '\'' {
			return "", lx.errAt(lx.pos, "quote inside a word: quote the whole word")
		}
		lx.pos++
	}
	if lx.pos == start {
		return "", lx.errAt(start, "expected a key")
	}
	return string(lx.line[start:lx.pos]), nil
}
