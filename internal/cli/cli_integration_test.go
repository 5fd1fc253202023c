package cli

// Integration tests against a cluster: an in-process 3-member Cairn
// cluster, or the cluster CAIRN_TEST_ENDPOINTS names (comma-separated), e.g.
//
//	CAIRN_TEST_ENDPOINTS=127.0.0.1:2379 go test ./internal/cli -run Integration
//
// They write keys under a fresh prefix per test run and delete them after.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-db/cairn/internal/testutil"
)

type cluster struct {
	t         *testing.T
	endpoints string
	prefix    string
}

func integration(t *testing.T) *cluster {
	t.Helper()
	eps := os.Getenv("CAIRN_TEST_ENDPOINTS")
	if eps == "" {
		eps = strings.Join(testutil.NewCluster(t, 3, testutil.ClusterOptions{}).Endpoints(), ",")
	}
	c := &cluster{t: t, endpoints: eps, prefix: fmt.Sprintf("cairn-cli-test/%s/%d/", t.Name(), time.Now().UnixNano())}
	t.Cleanup(func() { c.run("", "del", c.prefix, "--prefix") })
	return c
}

// etcdCluster is a single-member etcd (testutil.StartEtcd; skipped when its
// binaries are missing): the etcd half of a test pins the behaviour the
// Cairn half must match.
func etcdCluster(t *testing.T) *cluster {
	t.Helper()
	return &cluster{t: t, endpoints: testutil.StartEtcd(t), prefix: fmt.Sprintf("cairn-cli-test/%s/%d/", t.Name(), time.Now().UnixNano())}
}

// waitUntil polls cond until it holds, failing the test after 15s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a correctness decision
	}
}

// getenv is the environment of the verbs run against the cluster: only
// endpointsEnv, naming its endpoints.
func (c *cluster) getenv(k string) string {
	if k == endpointsEnv {
		return c.endpoints
	}
	return ""
}

// run runs a verb against the cluster and returns exit code and output.
func (c *cluster) run(stdin string, args ...string) (int, string, string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, c.getenv, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// start runs `cairn verb args...` against the cluster in the background,
// writing stdout to out, which the test may read while the verb runs; wait
// returns its exit code and output, failing the test if it does not exit
// within d.
func (c *cluster) start(ctx context.Context, out *syncBuffer, verb string, args ...string) (wait func(d time.Duration) (int, string, string)) {
	var errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, append([]string{verb}, args...), c.getenv, strings.NewReader(""), out, &errb) }()
	return func(d time.Duration) (int, string, string) {
		c.t.Helper()
		select {
		case code := <-done:
			return code, out.String(), errb.String()
		case <-time.After(d):
			c.t.Fatalf("cairn %s %q did not exit within %v; output so far:\n%s%s", verb, args, d, out.String(), errb.String())
			return 0, "", ""
		}
	}
}

// must runs a verb that must succeed and returns its stdout.
func (c *cluster) must(stdin string, args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(stdin, args...)
	if code != exitOK {
		c.t.Fatalf("cairn %q: exit %d: %s", args, code, errs)
	}
	return out
}

func TestIntegrationPutGetDel(t *testing.T) {
	c := integration(t)
	p := c.prefix
	if out := c.must("", "put", p+"a", "1"); out != "OK\n" {
		t.Errorf("put: %q", out)
	}
	c.must("", "put", p+"b", "--", "-2")
	c.must("two\nlines", "put", p+"c")
	if out := c.must("", "get", p, "--prefix", "-o", "value"); out != "1\n-2\ntwo\nlines\n" {
		t.Errorf("get --prefix -o value: %q", out)
	}
	want := fmt.Sprintf("KEY%sVALUE\n%sa  1\n%sb  -2\n%sc  \"two\\nlines\"\n", strings.Repeat(" ", len(p)), p, p, p)
	if out := c.must("", "get", p, "--prefix"); out != want {
		t.Errorf("get table:\n got %q\nwant %q", out, want)
	}
	if out := c.must("", "get", p, "--prefix", "--count-only"); out != "3\n" {
		t.Errorf("count-only: %q", out)
	}
	if out := c.must("", "get", p+"a", p+"c", "--keys-only", "-o", "value"); out != p+"a\n"+p+"b\n" {
		t.Errorf("range keys-only: %q", out)
	}
	if out := c.must("", "get", p, "--prefix", "--sort-by", "key", "--order", "descend", "--limit", "1", "-o", "value", "--keys-only"); out != p+"c\n" {
		t.Errorf("sorted limit: %q", out)
	}
	if out := c.must("", "get", p+"a", "--serializable", "-o", "value"); out != "1\n" {
		t.Errorf("serializable: %q", out)
	}
	var j struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
		KVs []struct {
			Key         string `json:"key"`
			Value       string `json:"value"`
			ModRevision int64  `json:"mod_revision"`
		} `json:"kvs"`
		Count int64 `json:"count"`
	}
	if err := json.Unmarshal([]byte(c.must("", "get", p+"a", "-o", "json")), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.KVs) != 1 || j.KVs[0].Key != p+"a" || j.KVs[0].Value != "1" || j.Count != 1 {
		t.Errorf("json: %+v", j)
	}
	rev := j.KVs[0].ModRevision
	c.must("", "put", p+"a", "updated")
	if out := c.must("", "get", p+"a", "--rev", strconv.FormatInt(rev, 10), "-o", "value"); out != "1\n" {
		t.Errorf("--rev: %q", out)
	}
	if out := c.must("", "put", p+"a", "again", "--prev-kv", "-o", "value"); out != "updated\n" {
		t.Errorf("put --prev-kv: %q", out)
	}
	if out := c.must("", "del", p+"a", "--prev-kv", "-o", "value"); out != "1\n" {
		t.Errorf("del: %q", out)
	}
	if out := c.must("", "del", p, "--prefix"); out != "2\n" {
		t.Errorf("del --prefix: %q", out)
	}
	if code, _, errs := c.run("", "put", p+"x", "--ignore-value"); code != exitError || !strings.Contains(errs, "key not found") {
		t.Errorf("put --ignore-value on a missing key: exit %d, %q", code, errs)
	}
}

func TestIntegrationTxn(t *testing.T) {
	c := integration(t)
	p := c.prefix
	c.must("", "put", p+"mode", "blue")
	c.must("", "put", p+"old/1", "x")
	txn := fmt.Sprintf(`if
  value(%[1]q) = "blue"
  version(%[2]q) = 0
then
  put %[1]s green
  del %[3]s --prefix
  get %[1]s
else
  get %[1]s
`, p+"mode", p+"absent", p+"old/")
	out := c.must(txn, "txn")
	want := fmt.Sprintf("SUCCESS\n-- put %[1]s green\nOK\n-- del %[2]s --prefix\n1\n-- get %[1]s\nKEY%[3]sVALUE\n%[1]s  green\n", p+"mode", p+"old/", strings.Repeat(" ", len(p+"mode")-1))
	if out != want {
		t.Errorf("txn:\n got %q\nwant %q", out, want)
	}
	// Now the compare fails and the else branch runs; exit code is still 0.
	if out := c.must(txn, "txn", "-o", "value"); out != "FAILURE\ngreen\n" {
		t.Errorf("txn failure: %q", out)
	}
	var j struct {
		Succeeded bool              `json:"succeeded"`
		Responses []json.RawMessage `json:"responses"`
	}
	if err := json.Unmarshal([]byte(c.must(txn, "txn", "-o", "json")), &j); err != nil || j.Succeeded || len(j.Responses) != 1 {
		t.Errorf("txn json: %+v %v", j, err)
	}
	if code, _, errs := c.run("then\nput a\n", "txn"); code != exitUsage || !strings.Contains(errs, "line 2, column 1") {
		t.Errorf("txn syntax error: exit %d, %q", code, errs)
	}
}

func TestIntegrationClusterVerbs(t *testing.T) {
	c := integration(t)
	eps := strings.Split(c.endpoints, ",")
	out := c.must("", "status")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != len(eps)+1 || !strings.HasPrefix(lines[0], "ENDPOINT") {
		t.Errorf("status:\n%s", out)
	}
	out = c.must("", "status", "-o", "json")
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var s struct {
			Leader    uint64 `json:"leader"`
			RaftIndex uint64 `json:"raft_index"`
		}
		if err := json.Unmarshal([]byte(line), &s); err != nil || s.Leader == 0 || s.RaftIndex == 0 {
			t.Errorf("status json %q: %+v %v", line, s, err)
		}
	}
	if out := c.must("", "health"); strings.Count(out, " healthy ") != len(eps) {
		t.Errorf("health:\n%s", out)
	}
	out = c.must("", "member", "list", "-o", "json")
	var ml struct {
		Members []struct {
			ID   uint64 `json:"id"`
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := json.Unmarshal([]byte(out), &ml); err != nil || len(ml.Members) == 0 {
		t.Errorf("member list json %q: %v", out, err)
	}
	if out := c.must("", "member", "list"); !strings.HasPrefix(out, "ID ") {
		t.Errorf("member list:\n%s", out)
	}
}

func TestIntegrationCompact(t *testing.T) {
	c := integration(t)
	p := c.prefix
	c.must("", "put", p+"k", "1")
	var j struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(c.must("", "put", p+"k", "2", "-o", "json")), &j); err != nil {
		t.Fatal(err)
	}
	rev := strconv.FormatInt(j.Header.Revision, 10)
	if out := c.must("", "compact", rev, "--physical"); out != "compacted revision "+rev+"\n" {
		t.Errorf("compact: %q", out)
	}
	old := strconv.FormatInt(j.Header.Revision-1, 10)
	code, _, errs := c.run("", "get", p+"k", "--rev", old)
	if code != exitError || !strings.Contains(errs, "compacted") {
		t.Errorf("get at a compacted revision: exit %d, %q", code, errs)
	}
}

func TestIntegrationPutSequential(t *testing.T) {
	t.Run("etcd", func(t *testing.T) {
		c := etcdCluster(t)
		code, out, errs := c.run("", "put", "--sequential", c.prefix+"q/", "v")
		if code != exitError || out != "" || !strings.HasPrefix(errs, "cairn: --sequential needs a Cairn server: ") {
			t.Errorf("put --sequential on etcd: exit %d, out %q, stderr %q", code, out, errs)
		}
	})
	t.Run("cairn", func(t *testing.T) {
		c := integration(t)
		q := c.prefix + "q/job-"
		seqRE := regexp.MustCompile("^" + regexp.QuoteMeta(q) + `(\d{20})\n$`)
		out := c.must("", "put", "--sequential", q, "one")
		if os.Getenv("CAIRN_TEST_ENDPOINTS") != "" && strings.Contains(out, "needs a Cairn server") {
			t.Skip("the cluster at CAIRN_TEST_ENDPOINTS is not Cairn")
		}
		if !seqRE.MatchString(out) {
			t.Fatalf("put --sequential: %q does not match %s", out, seqRE)
		}
		k1 := strings.TrimSpace(out)
		var j jsonSequential
		if err := json.Unmarshal([]byte(c.must("", "put", q, "two", "--sequential", "-o", "json")), &j); err != nil ||
			j.Key != q+fmt.Sprintf("%020d", j.Revision) {
			t.Fatalf("put --sequential -o json: %+v %v", j, err)
		}
		out = c.must("three", "put", "--sequential", q, "-o", "value") // the value from stdin
		if !seqRE.MatchString(out) {
			t.Fatalf("put --sequential -o value: %q does not match %s", out, seqRE)
		}
		k3 := strings.TrimSpace(out)
		if !(k1 < j.Key && j.Key < k3) {
			t.Errorf("sequential keys do not increase: %s, %s, %s", k1, j.Key, k3)
		}
		if out := c.must("", "get", q, "--prefix", "-o", "value"); out != "one\ntwo\nthree\n" {
			t.Errorf("get of the sequential keys: %q", out)
		}
		// With --lease the key is ephemeral.
		id := strings.TrimSpace(c.must("", "lease", "grant", "60", "-o", "value"))
		k4 := strings.TrimSpace(c.must("", "put", "--sequential", q, "four", "--lease", id))
		if !seqRE.MatchString(k4+"\n") || k4 <= k3 {
			t.Errorf("put --sequential --lease: %q after %q", k4, k3)
		}
		c.must("", "lease", "revoke", id)
		if out := c.must("", "get", q, "--prefix", "-o", "value"); out != "one\ntwo\nthree\n" {
			t.Errorf("the sequential key of a revoked lease remains: %q", out)
		}
	})
}
