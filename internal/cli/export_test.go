package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// encodeExportLine is one line as export writes it.
func encodeExportLine(t testing.TB, key, value string, ttl int64) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(newExportLine([]byte(key), []byte(value), ttl)); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestExportLine(t *testing.T) {
	tests := []struct {
		key, value string
		ttl        int64
		want       string
	}{
		{"app/name", "cairn", 0, `{"key":"app/name","value":"cairn"}`},
		{"empty", "", 0, `{"key":"empty","value":""}`},
		{"leased", "x", 60, `{"key":"leased","value":"x","lease_ttl":60}`},
		// Control characters are valid UTF-8: JSON escapes, not base64.
		{"ctl\n", "\x00\x01\t", 0, `{"key":"ctl\n","value":"\u0000\u0001\t"}`},
		{"<html>&", "é 日本", 0, `{"key":"<html>&","value":"é 日本"}`},
		// Bytes that are not UTF-8: base64, key and value each on its own.
		{"\xff\x00k", "text", 0, `{"key_b64":"/wBr","value":"text"}`},
		{"bin", "\xff", 5, `{"key":"bin","value_b64":"/w==","lease_ttl":5}`},
		{"\xc3", "\xc3\x28", 0, `{"key_b64":"ww==","value_b64":"wyg="}`},
	}
	for _, tt := range tests {
		got := encodeExportLine(t, tt.key, tt.value, tt.ttl)
		if got != tt.want+"\n" {
			t.Errorf("%q=%q ttl %d:\n got %s\nwant %s", tt.key, tt.value, tt.ttl, got, tt.want)
			continue
		}
		// What export writes, import reads back byte for byte.
		r, err := parseImportLine([]byte(got))
		if err != nil {
			t.Errorf("parse %s: %v", got, err)
			continue
		}
		if r.key != tt.key || r.value != tt.value || r.leaseTTL != tt.ttl {
			t.Errorf("round trip of %s: %q=%q ttl %d", got, r.key, r.value, r.leaseTTL)
		}
	}
}

func TestKeyProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &keyProgress{w: &buf, verb: "exported", now: func() time.Time { return now }}
	p.update(1000) // first: drawn
	now = now.Add(keyProgressEvery / 2)
	p.update(2000) // too soon: not drawn
	now = now.Add(keyProgressEvery / 2)
	p.update(2500)
	p.clear()
	p.clear() // once only
	want := "\rexported 1000 keys\033[K\rexported 2500 keys\033[K\r\033[K"
	if buf.String() != want {
		t.Errorf("progress:\n got %q\nwant %q", buf.String(), want)
	}
	// Nothing drawn, nothing cleared; a nil progress shows nothing.
	buf.Reset()
	(&keyProgress{w: &buf}).clear()
	var none *keyProgress
	none.update(1)
	none.clear()
	if buf.Len() != 0 {
		t.Errorf("wrote %q", buf.String())
	}
}

func TestExportUsageErrors(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "a", "b"}, "export takes at most one argument: PREFIX, got 2"},
		{[]string{"export", "--rev", "-1"}, "--rev must not be negative"},
		{[]string{"export", "--rev", "x"}, `invalid value "x" for flag -rev`},
	} {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != exitUsage || out != "" || !strings.Contains(errs, tt.want) {
			t.Errorf("%q: exit %d, out %q, stderr %q; want exit 2 and %q", tt.args, code, out, errs, tt.want)
		}
	}
}
