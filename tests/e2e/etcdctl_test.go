package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-db/cairn/internal/testutil"
)

type ctl struct {
	t   *testing.T
	bin string
	eps string
}

func (c ctl) run(stdin string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--endpoints", c.eps, "--dial-timeout", "5s", "--command-timeout", "10s"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return normalizeCtl(string(out), err)
}

// normalizeCtl keeps what must match between etcd and Cairn: for an error,
// etcdctl's final "Error: ..." line (its log lines carry addresses and
// times); for output, everything but the cluster and member IDs and the
// raft term.
func normalizeCtl(out string, err error) string {
	var keep []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if err != nil && !strings.HasPrefix(line, "Error:") {
			continue
		}
		if strings.HasPrefix(line, "\"ClusterID\"") || strings.HasPrefix(line, "\"MemberID\"") || strings.HasPrefix(line, "\"RaftTerm\"") {
			continue
		}
		keep = append(keep, line)
	}
	if err != nil {
		return "ERROR: " + strings.Join(keep, "\n")
	}
	return strings.Join(keep, "\n")
}

// TestEtcdctlGetsEtcdsAnswers runs the same etcdctl commands against a real
// etcd and a 3-member Cairn cluster: put, get, del and txn must print the
// same; endpoint status and member list must describe the cluster.
func TestEtcdctlGetsEtcdsAnswers(t *testing.T) {
	dir := testutil.EtcdDir(t)
	bin := filepath.Join(dir, "bin", "etcdctl")
	etcd := ctl{t, bin, testutil.StartEtcd(t)}
	pc := startProcCluster(t, 3)
	cairn := ctl{t, bin, strings.Join(pc.Endpoints(), ",")}

	txn := "value(\"t\") = \"1\"\n\nput t 2\nget t\n\nget t\n\n"
	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"put", "foo", "bar"}},
		{"", []string{"put", "foo2", "bar2"}},
		{"", []string{"put", "t", "1"}},
		{"", []string{"get", "foo"}},
		{"", []string{"get", "foo", "--prefix"}},
		{"", []string{"get", "foo", "--prefix", "--keys-only"}},
		{"", []string{"get", "foo", "--prefix", "--count-only", "-w", "fields"}},
		{"", []string{"get", "", "--from-key", "--limit", "2", "--order", "DESCEND", "--sort-by", "VALUE"}},
		{"", []string{"put", "foo", "baz", "--prev-kv"}},
		{"", []string{"get", "foo", "--rev", "2"}},
		{"", []string{"get", "foo", "--rev", "1000"}},
		{txn, []string{"txn"}},
		{txn, []string{"txn"}},
		{"", []string{"del", "foo", "--prefix", "--prev-kv"}},
		{"", []string{"del", "nothing"}},
		{"", []string{"get", "", "--prefix", "--consistency", "s"}},
		{"", []string{"compact", "2"}},
		{"", []string{"get", "t", "--rev", "1"}},
		{"", []string{"put", "", "x"}},
		{"", []string{"lock", "mylock", "--", "echo", "held"}}, // the Lock service, then the command
		{"", []string{"lease", "timetolive", "1234"}},
		{"", []string{"lease", "revoke", "1234"}},
		{"", []string{"alarm", "list"}},
		{"", []string{"alarm", "disarm"}},
	}
	for _, st := range steps {
		want := etcd.run(st.stdin, st.args...)
		got := cairn.run(st.stdin, st.args...)
		if want != got {
			t.Errorf("etcdctl %v:\n etcd:  %q\n cairn: %q", st.args, want, got)
		}
	}

	// endpoint status: every member answers with one leader and the same revision.
	var status []struct {
		Endpoint string `json:"Endpoint"`
		Status   struct {
			Header struct {
				MemberID uint64 `json:"member_id"`
				Revision int64  `json:"revision"`
			} `json:"header"`
			Leader    uint64 `json:"leader"`
			RaftIndex uint64 `json:"raftIndex"`
			RaftTerm  uint64 `json:"raftTerm"`
			Version   string `json:"version"`
		} `json:"Status"`
	}
	out := cairn.run("", "endpoint", "status", "-w", "json")
	if err := json.Unmarshal([]byte(out), &status); err != nil || len(status) != 3 {
		t.Fatalf("endpoint status: %v\n%s", err, out)
	}
	for _, s := range status {
		if s.Status.Leader == 0 || s.Status.Leader != status[0].Status.Leader || s.Status.Version == "" || s.Status.RaftTerm == 0 {
			t.Errorf("endpoint status of %s: %+v", s.Endpoint, s.Status)
		}
	}
	// The table printer divides by the db size: a zero there crashes etcdctl.
	if out := cairn.run("", "endpoint", "status", "-w", "table"); strings.Count(out, "127.0.0.1") != 3 || strings.HasPrefix(out, "ERROR: ") {
		t.Errorf("endpoint status -w table:\n%s", out)
	}
	if out := cairn.run("", "endpoint", "health"); strings.Count(out, "is healthy") != 3 {
		t.Errorf("endpoint health:\n%s", out)
	}
	if out := cairn.run("", "endpoint", "hashkv", "--cluster"); strings.Count(out, "\n") != 2 || strings.Count(out, ", ") != 6 {
		t.Errorf("endpoint hashkv:\n%s", out)
	}

	var members struct {
		Members []struct {
			ID         uint64   `json:"ID"`
			Name       string   `json:"name"`
			PeerURLs   []string `json:"peerURLs"`
			ClientURLs []string `json:"clientURLs"`
		} `json:"members"`
	}
	out = cairn.run("", "member", "list", "-w", "json")
	if err := json.Unmarshal([]byte(out), &members); err != nil || len(members.Members) != 3 {
		t.Fatalf("member list: %v\n%s", err, out)
	}
	names := map[string]bool{}
	for _, m := range members.Members {
		names[m.Name] = true
		if len(m.PeerURLs) != 1 || len(m.ClientURLs) != 1 {
			t.Errorf("member %s: peer %v client %v", m.Name, m.PeerURLs, m.ClientURLs)
		}
	}
	if !names["p0"] || !names["p1"] || !names["p2"] {
		t.Errorf("member names: %v", names)
	}
	if out := cairn.run("", "member", "list"); strings.Count(out, "started") != 3 {
		t.Errorf("member list table:\n%s", out)
	}

	// move-leader: etcdctl finds the leader among the endpoints and asks it.
	leader := status[0].Status.Leader
	var target uint64
	for _, m := range members.Members {
		if m.ID != leader {
			target = m.ID
		}
	}
	out = cairn.run("", "move-leader", fmt.Sprintf("%x", target))
	if want := fmt.Sprintf("Leadership transferred from %x to %x", leader, target); !strings.Contains(out, want) {
		t.Errorf("move-leader: %q, want %q", out, want)
	}
}

// etcdctl against the space quota: the NOSPACE error, alarm list, disarm.
func TestEtcdctlAlarmNoSpace(t *testing.T) {
	bin := filepath.Join(testutil.EtcdDir(t), "bin", "etcdctl")
	pc := startProcCluster(t, 3, "--quota-backend-bytes", "65536")
	c := ctl{t, bin, strings.Join(pc.Endpoints(), ",")}
	value := strings.Repeat("x", 1024)
	var out string
	for i := 0; i < 200; i++ {
		if out = c.run("", "put", fmt.Sprintf("k%d", i), value); strings.HasPrefix(out, "ERROR") {
			break
		}
	}
	if out != "ERROR: Error: etcdserver: mvcc: database space exceeded" {
		t.Fatalf("put past the quota: %q", out)
	}
	if out := c.run("", "alarm", "list"); !strings.HasPrefix(out, "memberID:") || !strings.HasSuffix(out, "alarm:NOSPACE") {
		t.Fatalf("alarm list: %q", out)
	}
	// Make room: delete, then compact the history away.
	var del struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
	}
	if out := c.run("", "del", "k", "--prefix", "-w", "json"); json.Unmarshal([]byte(out), &del) != nil || del.Header.Revision == 0 {
		t.Fatalf("delete under NOSPACE: %q", out)
	}
	if out := c.run("", "compact", fmt.Sprint(del.Header.Revision)); strings.HasPrefix(out, "ERROR") {
		t.Fatalf("compact under NOSPACE: %q", out)
	}
	if out := c.run("", "alarm", "disarm"); !strings.HasSuffix(out, "alarm:NOSPACE") {
		t.Fatalf("alarm disarm: %q", out)
	}
	if out := c.run("", "put", "after", "v"); out != "OK" {
		t.Fatalf("put after disarm: %q", out)
	}
}
