package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/testutil"
)

// runServe runs `cairn serve args...` expecting it to fail fast; it returns
// the exit code and the combined output.
func runServe(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cairnBin, append([]string{"serve"}, args...)...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("cairn serve %v did not exit: %s", args, out)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	return code, string(out)
}

func localFlags(t *testing.T, dataDir string) []string { return namedFlags(t, "default", dataDir) }

func namedFlags(t *testing.T, name, dataDir string) []string {
	c := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	p := fmt.Sprintf("http://127.0.0.1:%d", testutil.FreePort(t))
	return []string{"--data-dir", dataDir, "--listen-client-urls", c, "--advertise-client-urls", c,
		"--listen-peer-urls", p, "--initial-advertise-peer-urls", p, "--name", name, "--initial-cluster", name + "=" + p}
}

func TestStartupErrorsAreOneClearSentence(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyURL := "http://" + busy.Addr().String()

	unreadable := filepath.Join(t.TempDir(), "file-not-dir")
	if err := os.WriteFile(unreadable, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"--no-such-flag"}, "no-such-flag"},
		{"bad election timeout", append(localFlags(t, t.TempDir()), "--election-timeout", "50"), "--election-timeout"},
		{"occupied client port", append(localFlags(t, t.TempDir()), "--listen-client-urls", busyURL, "--advertise-client-urls", busyURL), "already in use"},
		{"data dir is a file", localFlags(t, unreadable), "--data-dir"},
		{"bad cluster state", append(localFlags(t, t.TempDir()), "--initial-cluster-state", "maybe"), "--initial-cluster-state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runServe(t, tc.args...)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; output:\n%s", out)
			}
			if !strings.Contains(out, tc.want) {
				t.Fatalf("output does not mention %q:\n%s", tc.want, out)
			}
			if n := strings.Count(strings.TrimSpace(out), "\n"); n > 3 {
				t.Fatalf("want a short message, got %d lines:\n%s", n+1, out)
			}
		})
	}
}

func TestDataDirOfAnotherMemberIsRefused(t *testing.T) {
	pc := startProcCluster(t, 1)
	p := pc.Procs[0]
	p.Kill()
	code, out := runServe(t, namedFlags(t, "someone-else", p.DataDir)...)
	if code == 0 || !strings.Contains(out, "belongs to member") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}
