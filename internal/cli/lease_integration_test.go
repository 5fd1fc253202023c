package cli

// Integration tests of the lease verbs, run twice: against a real etcd
// (testutil.StartEtcd; skipped when its binaries are missing, as in every
// etcd comparison) and against Cairn (the cluster integration() gives: an
// in-process 3-member cluster or CAIRN_TEST_ENDPOINTS). The etcd half pins
// the behaviour the Cairn half must match.

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestIntegrationLease(t *testing.T) {
	t.Run("etcd", func(t *testing.T) {
		testLeaseVerbs(t, etcdCluster(t))
	})
	t.Run("cairn", func(t *testing.T) {
		testLeaseVerbs(t, integration(t))
	})
}

var (
	grantedRE   = regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\)\n$`)
	remainingRE = regexp.MustCompile(`^lease ([0-9a-f]{16}) granted with TTL\(60s\), remaining\((-?\d+)s\)(.*)\n$`)
	hexIDRE     = regexp.MustCompile(`^[0-9a-f]{16}\n$`)
)

// remaining checks a `lease ttl` table line for id and returns its remaining
// seconds and what follows them.
func remaining(t *testing.T, out, id string) (int64, string) {
	t.Helper()
	m := remainingRE.FindStringSubmatch(out)
	if m == nil || m[1] != id {
		t.Fatalf("lease ttl %s: %q does not match %s", id, out, remainingRE)
	}
	n, _ := strconv.ParseInt(m[2], 10, 64)
	return n, m[3]
}

// inRange checks a remaining TTL against what a lease granted (or renewed)
// for 60s must show a few seconds later, whatever the machine's speed.
func inRange(t *testing.T, what string, ttl int64) {
	t.Helper()
	if ttl < 30 || ttl > 60 {
		t.Errorf("%s: remaining TTL %d, want 30..60", what, ttl)
	}
}

// waitOutput waits (bounded) until out has n lines.
func waitOutput(t *testing.T, out *syncBuffer, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for strings.Count(out.String(), "\n") < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: printed %q within 15s, want %d lines", what, out.String(), n)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a correctness decision
	}
}

func testLeaseVerbs(t *testing.T, c *cluster) {
	p := c.prefix

	// grant: etcdctl's line, then json and value.
	out := c.must("", "lease", "grant", "60")
	m := grantedRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("lease grant 60: %q does not match %s", out, grantedRE)
	}
	id := m[1]
	var g struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
		ID  int64 `json:"id"`
		TTL int64 `json:"ttl"`
	}
	if err := json.Unmarshal([]byte(c.must("", "lease", "grant", "60", "-o", "json")), &g); err != nil || g.ID <= 0 || g.TTL != 60 || g.Header.Revision == 0 {
		t.Errorf("lease grant -o json: %+v %v", g, err)
	}
	idJSON := fmt.Sprintf("%016x", g.ID)
	idValue := strings.TrimSpace(c.must("", "lease", "grant", "60", "-o", "value"))
	if !hexIDRE.MatchString(idValue + "\n") {
		t.Errorf("lease grant -o value: %q", idValue)
	}

	// Keys attached with put --lease are listed by ttl --keys, sorted.
	c.must("", "put", p+"b", "2", "--lease", id)
	c.must("", "put", p+"a", "1", "--lease", "0x"+id)
	var kv struct {
		KVs []struct {
			Lease int64 `json:"lease"`
		} `json:"kvs"`
	}
	if err := json.Unmarshal([]byte(c.must("", "get", p+"a", "-o", "json")), &kv); err != nil || len(kv.KVs) != 1 || fmt.Sprintf("%016x", kv.KVs[0].Lease) != id {
		t.Errorf("get -o json of a key with lease %s: %+v %v", id, kv, err)
	}
	ttl, rest := remaining(t, c.must("", "lease", "ttl", id), id)
	inRange(t, "lease ttl", ttl)
	if rest != "" {
		t.Errorf("lease ttl without --keys: trailing %q", rest)
	}
	ttl, rest = remaining(t, c.must("", "lease", "timetolive", id, "--keys"), id)
	inRange(t, "lease timetolive --keys", ttl)
	if want := fmt.Sprintf(", attached keys([%sa %sb])", p, p); rest != want {
		t.Errorf("lease ttl --keys: got %q, want %q", rest, want)
	}
	var tj struct {
		ID         int64    `json:"id"`
		TTL        int64    `json:"ttl"`
		GrantedTTL int64    `json:"granted_ttl"`
		Keys       []string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(c.must("", "lease", "ttl", id, "--keys", "-o", "json")), &tj); err != nil ||
		fmt.Sprintf("%016x", tj.ID) != id || tj.GrantedTTL != 60 || strings.Join(tj.Keys, " ") != p+"a "+p+"b" {
		t.Errorf("lease ttl --keys -o json: %+v %v", tj, err)
	}
	inRange(t, "lease ttl -o json", tj.TTL)
	lines := strings.Split(c.must("", "lease", "ttl", id, "--keys", "-o", "value"), "\n")
	if n, err := strconv.ParseInt(lines[0], 10, 64); err != nil || len(lines) != 4 || lines[1] != p+"a" || lines[2] != p+"b" {
		t.Errorf("lease ttl --keys -o value: %q", lines)
	} else {
		inRange(t, "lease ttl -o value", n)
	}

	// list: "found N leases" and N sorted IDs, ours among them (other
	// leases may exist on a shared cluster).
	out = c.must("", "lease", "list")
	lines = strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if lines[0] != fmt.Sprintf("found %d leases", len(lines)-1) {
		t.Errorf("lease list: first line of %q", out)
	}
	for _, want := range []string{id, idJSON, idValue} {
		found := false
		for _, l := range lines[1:] {
			found = found || l == want
		}
		if !found {
			t.Errorf("lease list lacks %s:\n%s", want, out)
		}
	}
	if v := c.must("", "lease", "list", "-o", "value"); v != strings.Join(lines[1:], "\n")+"\n" {
		t.Errorf("lease list -o value: %q, want the IDs of %q", v, out)
	}

	// keepalive --once renews to the full TTL.
	if out := c.must("", "lease", "keepalive", id, "--once"); out != "lease "+id+" keepalived with TTL(60)\n" {
		t.Errorf("lease keepalive --once: %q", out)
	}
	if out := c.must("", "lease", "keep-alive", id, "--once", "-o", "value"); out != "60\n" {
		t.Errorf("lease keep-alive --once -o value: %q", out)
	}

	// keepalive runs until interrupted (exit 0); the first renewal comes at once.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var kaOut syncBuffer
	wait := c.start(ctx, &kaOut, "lease", "keepalive", idValue)
	waitOutput(t, &kaOut, 1, "lease keepalive")
	cancel()
	code, out, errs := wait(15 * time.Second)
	if code != exitOK || !strings.HasPrefix(out, "lease "+idValue+" keepalived with TTL(60)\n") || strings.Contains(out, "expired") || errs != "" {
		t.Errorf("interrupted keepalive: exit %d, out %q, stderr %q", code, out, errs)
	}

	// keepalive ends with etcdctl's line and exit 1 when the lease is
	// revoked under it. A short TTL makes the renewal that discovers it
	// come within a second or two.
	short := strings.TrimSpace(c.must("", "lease", "grant", "3", "-o", "value"))
	var shortOut syncBuffer
	wait = c.start(context.Background(), &shortOut, "lease", "keepalive", short)
	waitOutput(t, &shortOut, 1, "lease keepalive of a 3s lease")
	if out := c.must("", "lease", "revoke", short); out != "lease "+short+" revoked\n" {
		t.Errorf("lease revoke: %q", out)
	}
	code, out, errs = wait(15 * time.Second)
	if code != exitError || !strings.HasSuffix(out, "lease "+short+" expired or revoked.\n") || errs != "cairn: lease "+short+": expired or revoked\n" {
		t.Errorf("keepalive of a revoked lease: exit %d, out %q, stderr %q", code, out, errs)
	}
	if strings.Count(out, "keepalived with TTL(") < 1 {
		t.Errorf("keepalive printed no renewal: %q", out)
	}

	// revoke deletes the attached keys; afterwards the lease is gone.
	if out := c.must("", "lease", "revoke", id); out != "lease "+id+" revoked\n" {
		t.Errorf("lease revoke: %q", out)
	}
	if out := c.must("", "get", p, "--prefix", "--count-only"); out != "0\n" {
		t.Errorf("keys of a revoked lease: count %q", out)
	}
	if out := c.must("", "lease", "ttl", id, "--keys"); out != "lease "+id+" already expired\n" {
		t.Errorf("lease ttl of a revoked lease: %q", out)
	}
	if err := json.Unmarshal([]byte(c.must("", "lease", "ttl", id, "-o", "json")), &tj); err != nil || tj.TTL != -1 || tj.GrantedTTL != 0 {
		t.Errorf("lease ttl -o json of a revoked lease: %+v %v", tj, err)
	}
	if out := c.must("", "lease", "list", "-o", "value"); strings.Contains(out, id) {
		t.Errorf("lease list still has revoked %s:\n%s", id, out)
	}
	for _, args := range [][]string{
		{"lease", "revoke", id},
		{"lease", "keepalive", id, "--once"},
		{"put", p + "c", "3", "--lease", id},
	} {
		if code, out, errs := c.run("", args...); code != exitError || out != "" || errs != "cairn: etcdserver: requested lease not found\n" {
			t.Errorf("%q on a revoked lease: exit %d, out %q, stderr %q", args, code, out, errs)
		}
	}
	// keepalive without --once of a lease that does not exist: etcdctl's
	// line, exit 1.
	code, out, errs = c.run("", "lease", "keepalive", id)
	if code != exitError || out != "lease "+id+" expired or revoked.\n" || errs != "cairn: lease "+id+": expired or revoked\n" {
		t.Errorf("keepalive of a revoked lease: exit %d, out %q, stderr %q", code, out, errs)
	}

	// Clean up the other leases (a shared cluster outlives the test).
	for _, other := range []string{idJSON, idValue} {
		if code, _, errs := c.run("", "lease", "revoke", other, "-o", "json"); code != exitOK {
			t.Errorf("lease revoke %s -o json: exit %d, %q", other, code, errs)
		}
	}
}
