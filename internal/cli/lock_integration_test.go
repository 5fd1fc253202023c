package cli

// Integration tests of `cairn lock`, run against a real etcd and against
// Cairn (as the lease tests are). The etcd half also runs etcdctl's lock to
// pin the shape of its output and environment.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/testutil"
)

func TestIntegrationLock(t *testing.T) {
	t.Run("etcd", func(t *testing.T) {
		c := etcdCluster(t)
		testLockVerb(t, c)
		testEtcdctlLock(t, c)
	})
	t.Run("cairn", func(t *testing.T) {
		testLockVerb(t, integration(t))
	})
}

// envScript prints the lock's environment, one variable a line, and exits 7.
const envScript = `printf '%s\n' "$ETCD_LOCK_KEY" "$ETCD_LOCK_REV" "$CAIRN_FENCING_TOKEN"; exit 7`

// lockKeyRE matches a key of the lock name and captures its lease ID.
func lockKeyRE(name string) *regexp.Regexp {
	return regexp.MustCompile("^" + regexp.QuoteMeta(name) + "/([0-9a-f]+)$")
}

// keyLease returns the lease ID of a lock or election key, as `lease`
// verbs take it.
func keyLease(t *testing.T, re *regexp.Regexp, key string) string {
	t.Helper()
	m := re.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("key %q does not match %s", key, re)
	}
	id, err := strconv.ParseUint(m[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%016x", id)
}

// keysUnder returns the number of keys under name/ (waiters and holder).
func (c *cluster) keysUnder(name string) int {
	c.t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(c.must("", "get", name+"/", "--prefix", "--count-only")))
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

func testLockVerb(t *testing.T, c *cluster) {
	name := c.prefix + "lock"
	keyRE := lockKeyRE(name)

	// A command gets etcdctl's variables and the fencing token, and its
	// exit status is cairn's. Uncontended, the lock is acquired at the
	// revision that created its key.
	before := revOf(t, c.must("", "put", c.prefix+"before", "x", "-o", "json"))
	code, out, errs := c.run("", "lock", name, "--", "sh", "-c", envScript)
	env := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if code != 7 || errs != "" || len(env) != 3 {
		t.Fatalf("lock -- sh: exit %d, stdout %q, stderr %q; want exit 7 and 3 lines", code, out, errs)
	}
	rev, err1 := strconv.ParseInt(env[1], 10, 64)
	token, err2 := strconv.ParseInt(env[2], 10, 64)
	if !keyRE.MatchString(env[0]) || err1 != nil || err2 != nil || rev != token || token <= before {
		t.Errorf("lock env: ETCD_LOCK_KEY=%q ETCD_LOCK_REV=%q CAIRN_FENCING_TOKEN=%q (a put before was at %d)", env[0], env[1], env[2], before)
	}
	// Released, and the session's lease revoked.
	if n := c.keysUnder(name); n != 0 {
		t.Errorf("%d keys under the lock after the command", n)
	}
	if id := keyLease(t, keyRE, env[0]); strings.Contains(c.must("", "lease", "list", "-o", "value"), id) {
		t.Errorf("the session lease %s outlived lock", id)
	}
	if code, _, errs := c.run("", "lock", name, "--", "true"); code != exitOK || errs != "" {
		t.Errorf("lock -- true: exit %d, stderr %q", code, errs)
	}

	// Without a command: etcdctl's text (key, empty value), held until
	// interrupted, then released (exit 0). A second lock waits, and an
	// interrupt while it waits leaves no key behind.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var held syncBuffer
	wait := c.start(ctx, &held, "lock", name)
	waitUntil(t, "lock prints its key", func() bool { return strings.Count(held.String(), "\n") >= 2 })
	key := strings.TrimSuffix(held.String(), "\n\n")
	if !keyRE.MatchString(key) || c.must("", "get", name+"/", "--prefix", "--keys-only", "-o", "value") != key+"\n" {
		t.Fatalf("lock printed %q; keys under the lock: %q", held.String(), c.must("", "get", name+"/", "--prefix", "--keys-only", "-o", "value"))
	}
	wctx, wcancel := context.WithCancel(context.Background())
	defer wcancel()
	var waiterOut syncBuffer
	waiter := c.start(wctx, &waiterOut, "lock", name, "--", "sh", "-c", "echo ran")
	waitUntil(t, "a second lock queues", func() bool { return c.keysUnder(name) == 2 })
	wcancel()
	if code, out, errs := waiter(15 * time.Second); code != exitError || out != "" || errs != "cairn: interrupted\n" {
		t.Errorf("interrupted waiter: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n := c.keysUnder(name); n != 1 {
		t.Errorf("%d keys under the lock after the waiter left, want the holder's", n)
	}
	cancel()
	if code, out, errs := wait(15 * time.Second); code != exitOK || out != key+"\n\n" || errs != "" {
		t.Errorf("interrupted lock: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n := c.keysUnder(name); n != 0 {
		t.Errorf("%d keys under the lock after it was released", n)
	}

	// Commands under one lock never overlap, and each holder's fencing
	// token is greater than the one before.
	log := filepath.Join(t.TempDir(), "log")
	script := `echo "start $1 $CAIRN_FENCING_TOKEN" >>"$2"; sleep 0.1; echo "end $1" >>"$2"`
	var waits []func(time.Duration) (int, string, string)
	ids := []string{"a", "b", "c"}
	for _, id := range ids {
		waits = append(waits, c.start(context.Background(), &syncBuffer{}, "lock", name, "--", "sh", "-c", script, "sh", id, log))
	}
	for i, w := range waits {
		if code, _, errs := w(30 * time.Second); code != exitOK {
			t.Errorf("lock %s: exit %d, stderr %q", ids[i], code, errs)
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 2*len(ids) {
		t.Fatalf("log of the locked commands:\n%s", b)
	}
	seen := map[string]bool{}
	last := int64(0)
	for i := 0; i < len(lines); i += 2 {
		f := strings.Fields(lines[i])
		if len(f) != 3 || f[0] != "start" || lines[i+1] != "end "+f[1] || seen[f[1]] {
			t.Fatalf("commands under one lock overlapped:\n%s", b)
		}
		seen[f[1]] = true
		tok, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || tok <= last {
			t.Errorf("fencing tokens do not increase:\n%s", b)
		}
		last = tok
	}

	// An interrupt is passed on to the command as SIGTERM; cairn exits with
	// the command's status once it has stopped, and the lock is released.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var trapped syncBuffer
	wait = c.start(ctx, &trapped, "lock", name, "--", "sh", "-c",
		`trap 'kill $!; echo "got TERM"; exit 5' TERM; sleep 60 </dev/null >/dev/null 2>&1 & echo ready; wait $!`)
	waitUntil(t, "the locked command starts", func() bool { return trapped.String() == "ready\n" })
	cancel()
	if code, out, errs := wait(15 * time.Second); code != 5 || out != "ready\ngot TERM\n" || errs != "" {
		t.Errorf("interrupted lock with a command: exit %d, stdout %q, stderr %q; want 5", code, out, errs)
	}
	if n := c.keysUnder(name); n != 0 {
		t.Errorf("%d keys under the lock after the interrupted command", n)
	}

	// A session lost while the command runs: the message, SIGTERM to the
	// command (sleep 60 ends at once) and exit 1. A 3s TTL makes the
	// keepalive that discovers the revoked lease come within a second.
	var lostOut syncBuffer
	wait = c.start(context.Background(), &lostOut, "lock", name, "--ttl", "3", "--", "sh", "-c", `echo "$ETCD_LOCK_KEY"; exec sleep 60`)
	waitUntil(t, "the locked command starts", func() bool { return strings.HasSuffix(lostOut.String(), "\n") })
	c.must("", "lease", "revoke", keyLease(t, keyRE, strings.TrimSpace(lostOut.String())))
	code, out, errs = wait(15 * time.Second)
	if want := "cairn: lock " + name + " lost: session expired\n"; code != exitError || errs != want {
		t.Errorf("lock whose session was revoked: exit %d, stdout %q\n got stderr %q\nwant stderr %q", code, out, errs, want)
	}
}

// etcdctl runs etcdctl against c in the background with stdout to out. stop
// sends it SIGTERM (its interrupt) when interrupt is set, and returns its
// exit code and stderr, failing the test if it does not exit within 15s.
func (c *cluster) etcdctl(out *syncBuffer, args ...string) (stop func(interrupt bool) (int, string)) {
	c.t.Helper()
	var errb syncBuffer
	cmd := exec.Command(filepath.Join(testutil.EtcdDir(c.t), "bin", "etcdctl"), append([]string{"--endpoints", c.endpoints}, args...)...)
	cmd.Stdout, cmd.Stderr = out, &errb
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	return func(interrupt bool) (int, string) {
		c.t.Helper()
		if interrupt {
			_ = cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-done:
			return cmd.ProcessState.ExitCode(), errb.String()
		case <-time.After(15 * time.Second):
			c.t.Fatalf("etcdctl %q did not exit within 15s; output so far:\n%s%s", args, out.String(), errb.String())
			return 0, ""
		}
	}
}

// testEtcdctlLock checks that etcdctl's lock prints and sets what
// testLockVerb expects of cairn's.
func testEtcdctlLock(t *testing.T, c *cluster) {
	name := c.prefix + "etcdctl-lock"
	keyRE := lockKeyRE(name)
	var out syncBuffer
	code, errs := c.etcdctl(&out, "lock", name, "--", "sh", "-c", envScript)(false)
	env := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if code != 7 || len(env) != 3 {
		t.Fatalf("etcdctl lock -- sh: exit %d, stdout %q, stderr %q", code, out.String(), errs)
	}
	if _, err := strconv.ParseInt(env[1], 10, 64); !keyRE.MatchString(env[0]) || err != nil || env[2] != "" {
		t.Errorf("etcdctl lock env: ETCD_LOCK_KEY=%q ETCD_LOCK_REV=%q CAIRN_FENCING_TOKEN=%q", env[0], env[1], env[2])
	}

	var held syncBuffer
	stop := c.etcdctl(&held, "lock", name)
	waitUntil(t, "etcdctl lock prints its key", func() bool { return strings.Count(held.String(), "\n") >= 2 })
	code, errs = stop(true)
	if key := strings.TrimSuffix(held.String(), "\n\n"); code != exitOK || !keyRE.MatchString(key) {
		t.Errorf("etcdctl lock: exit %d, stdout %q, stderr %q", code, held.String(), errs)
	}
}
