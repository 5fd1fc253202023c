package failpoint

import "testing"

func TestParseAndChange(t *testing.T) {
	s, err := Parse("peer-drop=1f,2a; fsync-delay=10ms;mutant-stale-read")
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Get("peer-drop"); v != "1f,2a" || !s.On("mutant-stale-read") || s.On("disk-full") {
		t.Fatalf("parsed %s", s)
	}
	var seen []string
	s.OnChange(func(n, v string) { seen = append(seen, n+"="+v) })
	s.Set("disk-full", "1")
	s.Set("disk-full", "")
	if len(seen) != 2 || s.On("disk-full") {
		t.Fatalf("changes %v, set %s", seen, s)
	}
	if _, err := Parse("no-such=1"); err == nil {
		t.Fatal("unknown failpoint accepted")
	}
}
