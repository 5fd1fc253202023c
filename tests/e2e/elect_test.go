package e2e

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/testutil"
)

// lines runs etcdctl with args in the background and returns its standard
// output line by line; the process is killed at test end.
func lines(t *testing.T, bin, eps string, args ...string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"--endpoints", eps}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ch := make(chan string, 16)
	go func() {
		defer close(ch)
		sc := bufio.NewScanner(io.Reader(out))
		for sc.Scan() {
			ch <- sc.Text()
		}
	}()
	return ch
}

func next(t *testing.T, ch <-chan string, what string) string {
	t.Helper()
	select {
	case l, ok := <-ch:
		if !ok {
			t.Fatalf("%s: etcdctl ended", what)
		}
		return l
	case <-time.After(15 * time.Second): // a hang becomes a failure; it never decides a pass
		t.Fatalf("%s: no output", what)
	}
	return ""
}

// etcdctl elect campaigns and observes against Cairn as against etcd: the
// campaigner prints its leader key and proposal, the observer the same.
func TestEtcdctlElect(t *testing.T) {
	bin := filepath.Join(testutil.EtcdDir(t), "bin", "etcdctl")
	pc := startProcCluster(t, 3)
	for name, eps := range map[string]string{"etcd": testutil.StartEtcd(t), "cairn": strings.Join(pc.Endpoints(), ",")} {
		t.Run(name, func(t *testing.T) {
			camp := lines(t, bin, eps, "elect", "myelection", "p1")
			key := next(t, camp, "campaign key")
			if val := next(t, camp, "campaign value"); !strings.HasPrefix(key, "myelection/") || val != "p1" {
				t.Fatalf("campaign printed %q, %q", key, val)
			}
			obs := lines(t, bin, eps, "elect", "-l", "myelection")
			if k, v := next(t, obs, "observed key"), next(t, obs, "observed value"); k != key || v != "p1" {
				t.Fatalf("observer printed %q, %q; leader is %q, %q", k, v, key, "p1")
			}
		})
	}
}
