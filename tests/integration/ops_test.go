package integration

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cairn-db/cairn/internal/testutil"
)

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetricsAndHealthOnTheClientPort checks the operational endpoints
// served beside gRPC on the client URL.
func TestMetricsAndHealthOnTheClientPort(t *testing.T) {
	c := testutil.NewCluster(t, 3, testutil.ClusterOptions{})
	ctx := testutil.Ctx(t)
	if _, err := c.Client().Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	lead := c.WaitLeader()
	base := c.Members[lead].ClientURL
	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, name := range []string{
		"cairn_raft_is_leader 1", "cairn_raft_has_leader 1", "cairn_raft_proposals_total",
		"cairn_server_apply_duration_seconds_bucket", "cairn_wal_fsync_duration_seconds_bucket",
		"cairn_mvcc_keys 1", "cairn_server_applied_index", "cairn_transport_", "cairn_watch_notify_duration_seconds_bucket", "go_goroutines",
	} {
		if !strings.Contains(body, name) {
			t.Errorf("/metrics lacks %q", name)
		}
	}
	for _, path := range []string{"/health", "/readyz", "/livez"} {
		code, body := httpGet(t, base+path)
		if code != 200 || !strings.Contains(body, `"health":"true"`) {
			t.Errorf("%s: %d %s", path, code, body)
		}
	}
	// A member that lost its quorum reports unhealthy, with the reason.
	c.StopMember((lead + 1) % 3)
	c.StopMember((lead + 2) % 3)
	code, body = httpGet(t, base+"/health")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"health":"false"`) {
		t.Errorf("/health without quorum: %d %s", code, body)
	}
	t.Logf("/health without quorum: %d %s", code, strings.TrimSpace(body))
}
