package cli

import (
	"net"
	"strings"
	"testing"
	"time"
)

// closedPort returns an address on which nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestNoMemberAnswersClosedPort(t *testing.T) {
	addr := closedPort(t)
	for _, args := range [][]string{
		{"get", "foo", "--endpoints", addr},
		{"--endpoints", addr, "put", "foo", "bar"},
		{"txn", "--endpoints", addr},
		{"member", "list", "--endpoints", addr},
		{"status", "--endpoints", addr},
		{"health", "--endpoints", addr},
		{"compact", "5", "--endpoints", addr},
	} {
		start := time.Now()
		code, stdout, stderr := runCLI(t, "then\nput a b\n", append(args, "--dial-timeout", "10s")...)
		elapsed := time.Since(start)
		if code != exitError {
			t.Errorf("%q: exit %d, want %d", args, code, exitError)
		}
		want := "cairn: no member answered at " + addr + " (connection refused); check --endpoints or CAIRN_ENDPOINTS\n"
		if stderr != want {
			t.Errorf("%q: stderr\n got %q\nwant %q", args, stderr, want)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q", args, stdout)
		}
		// A refused connection is reported at once, not after --dial-timeout.
		if elapsed > 5*time.Second {
			t.Errorf("%q: took %v with a 10s dial timeout", args, elapsed)
		}
	}
}

func TestNoMemberAnswersSeveral(t *testing.T) {
	a, b := closedPort(t), closedPort(t)
	code, _, stderr := runCLI(t, "", "get", "foo", "--endpoints", a+","+b)
	if code != exitError {
		t.Errorf("exit %d", code)
	}
	want := "cairn: no member answered at " + a + " (connection refused), " + b + " (connection refused); check --endpoints or CAIRN_ENDPOINTS\n"
	if stderr != want {
		t.Errorf("stderr\n got %q\nwant %q", stderr, want)
	}
}

// A port that accepts TCP but never speaks gRPC fails after --dial-timeout.
func TestNoMemberAnswersSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { <-done; c.Close() }()
		}
	}()
	addr := ln.Addr().String()
	start := time.Now()
	code, _, stderr := runCLI(t, "", "get", "foo", "--endpoints", "http://"+addr, "--dial-timeout", "300ms")
	elapsed := time.Since(start)
	if code != exitError {
		t.Errorf("exit %d", code)
	}
	want := "cairn: no member answered at http://" + addr + " (no gRPC answer within 300ms); check --endpoints or CAIRN_ENDPOINTS\n"
	if stderr != want {
		t.Errorf("stderr\n got %q\nwant %q", stderr, want)
	}
	if elapsed > 5*time.Second {
		t.Errorf("took %v with a 300ms dial timeout", elapsed)
	}
}

func TestHealthPartialFailureNamesEndpoint(t *testing.T) {
	// With every endpoint down the single no-member line wins; the per-row
	// error text is checked in the output tests.
	addr := closedPort(t)
	_, _, stderr := runCLI(t, "", "health", "--endpoints", addr+","+addr)
	if !strings.Contains(stderr, "no member answered at "+addr+" (connection refused), "+addr) {
		t.Errorf("stderr %q", stderr)
	}
}
