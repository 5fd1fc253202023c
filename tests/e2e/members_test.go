package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cairn-db/cairn/internal/testutil"
)

// etcdctl member add (as a learner), the new member joining with
// --initial-cluster-state existing, member promote, member update, member
// remove, and defrag, against Cairn processes.
func TestEtcdctlMembership(t *testing.T) {
	bin := filepath.Join(testutil.EtcdDir(t), "bin", "etcdctl")
	pc := startProcCluster(t, 3)
	c := ctl{t, bin, strings.Join(pc.Endpoints(), ",")}
	if _, err := pc.Client().Put(testutil.Ctx(t), "before", "x"); err != nil {
		t.Fatal(err)
	}

	p := pc.NewProc("p3")
	out := c.run("", "member", "add", "p3", "--peer-urls", p.Peer, "--learner")
	// etcdctl prints IDs with %16x: one with a leading zero nibble is padded with a space.
	m := regexp.MustCompile(`Member +([0-9a-f]+) added (?:as learner )?to cluster +([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, `ETCD_INITIAL_CLUSTER_STATE="existing"`) {
		t.Fatalf("member add --learner:\n%s", out)
	}
	id := m[1]
	p.Start()
	pc.Procs = append(pc.Procs, p)
	pc.WaitReady(p)
	if r, err := pc.Client(p).Get(testutil.Ctx(t), "before"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("the new member misses data: %v %v", r, err)
	}
	if out := c.run("", "member", "list"); !strings.Contains(out, id+", started, p3, "+p.Peer) || !strings.Contains(out, "true") {
		t.Fatalf("member list with the learner:\n%s", out)
	}
	// Promotion may be refused until the learner caught up; it has, by now.
	if out := c.run("", "member", "promote", id); !strings.Contains(out, id+" promoted in cluster") {
		t.Fatalf("member promote: %q", out)
	}
	newPeer := strings.Replace(p.Peer, "127.0.0.1", "localhost", 1)
	if out := c.run("", "member", "update", id, "--peer-urls", newPeer); !strings.Contains(out, id+" updated in cluster") {
		t.Fatalf("member update: %q", out)
	}
	if out := c.run("", "member", "update", id, "--peer-urls", p.Peer); !strings.Contains(out, "updated") {
		t.Fatalf("member update back: %q", out)
	}
	if out := c.run("", "defrag", "--cluster"); strings.Count(out, "Finished defragmenting etcd member") != 4 {
		t.Fatalf("defrag --cluster:\n%s", out)
	}
	// Remove a founding member; it stops.
	victim := pc.Procs[0]
	vid := memberID(t, c, victim.Name)
	if out := c.run("", "member", "remove", vid); !strings.Contains(out, vid+" removed from cluster") {
		t.Fatalf("member remove: %q", out)
	}
	if _, exited := victim.WaitExit(15_000_000_000); !exited {
		t.Fatalf("the removed member %s kept running", victim.Name)
	}
	if out := c.run("", "member", "remove", vid); !strings.Contains(out, "member not found") {
		t.Fatalf("removing it again: %q", out)
	}
	// The removed member led; a write proposed while the others elect a new
	// leader may time out (with etcd too): wait until they serve.
	rest := pc.Procs[1:]
	pc.WaitReady(rest...)
	if _, err := pc.Client(rest...).Put(testutil.Ctx(t), "after", "x"); err != nil {
		t.Fatalf("write after the changes: %v", err)
	}
}

// memberID finds a member's hex ID in etcdctl member list.
func memberID(t *testing.T, c ctl, name string) string {
	t.Helper()
	for _, l := range strings.Split(c.run("", "member", "list"), "\n") {
		f := strings.Split(l, ", ")
		if len(f) > 2 && f[2] == name {
			return f[0]
		}
	}
	t.Fatalf("member %s not in the list", name)
	return fmt.Sprint()
}
