package cli

// Integration tests of `cairn elect`, run against a real etcd and against
// Cairn. On etcd, etcdctl's `elect -l` listens beside cairn's and must print
// the same text.

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestIntegrationElect(t *testing.T) {
	t.Run("etcd", func(t *testing.T) {
		testElectVerb(t, etcdCluster(t), true)
	})
	t.Run("cairn", func(t *testing.T) {
		testElectVerb(t, integration(t), false)
	})
}

func testElectVerb(t *testing.T, c *cluster, withEtcdctl bool) {
	name := c.prefix + "elect"
	keyRE := lockKeyRE(name)
	lines := func(b *syncBuffer) int { return strings.Count(b.String(), "\n") }

	// Listeners first: they see every leader from the first.
	lctx, lcancel := context.WithCancel(context.Background())
	defer lcancel()
	var listened, etcdctlListened syncBuffer
	listener := c.start(lctx, &listened, "elect", "--listen", name)
	var stopEtcdctl func(bool) (int, string)
	if withEtcdctl {
		stopEtcdctl = c.etcdctl(&etcdctlListened, "elect", "-l", name)
	}

	// A is elected at once and prints etcdctl's text: its key, its proposal.
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	var aOut syncBuffer
	a := c.start(actx, &aOut, "elect", name, "proposal A")
	waitUntil(t, "A is elected", func() bool { return lines(&aOut) >= 2 })
	keyA, propA, _ := strings.Cut(strings.TrimSuffix(aOut.String(), "\n"), "\n")
	if !keyRE.MatchString(keyA) || propA != "proposal A" {
		t.Fatalf("elected A printed %q", aOut.String())
	}
	waitUntil(t, "the listener sees A", func() bool { return listened.String() == aOut.String() })
	if withEtcdctl {
		waitUntil(t, "etcdctl's listener sees A", func() bool { return etcdctlListened.String() == aOut.String() })
	}

	// B campaigns while A leads: it is not elected (it prints only once it
	// is) until A is interrupted and resigns.
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	var bOut syncBuffer
	b := c.start(bctx, &bOut, "elect", name, "proposal B", "--ttl", "3", "-o", "value")
	waitUntil(t, "B campaigns", func() bool { return c.keysUnder(name) == 2 })
	if out := bOut.String(); out != "" {
		t.Fatalf("B printed %q while A leads", out)
	}
	acancel()
	if code, out, errs := a(15 * time.Second); code != exitOK || out != keyA+"\nproposal A\n" || errs != "" {
		t.Errorf("interrupted leader A: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	waitUntil(t, "B is elected", func() bool { return bOut.String() == "proposal B\n" })
	keyB := strings.TrimSpace(c.must("", "get", name+"/", "--prefix", "--keys-only", "-o", "value"))
	if !keyRE.MatchString(keyB) || keyB == keyA {
		t.Fatalf("leader key after A resigned: %q", keyB)
	}
	want := keyA + "\nproposal A\n" + keyB + "\nproposal B\n"
	waitUntil(t, "the listener sees B", func() bool { return lines(&listened) >= 4 })
	if got := listened.String(); got != want {
		t.Errorf("elect --listen:\n got %q\nwant %q", got, want)
	}
	if withEtcdctl {
		waitUntil(t, "etcdctl's listener sees B", func() bool { return lines(&etcdctlListened) >= 4 })
		if got := etcdctlListened.String(); got != want {
			t.Errorf("etcdctl elect -l:\n got %q\nwant %q", got, want)
		}
		if code, errs := stopEtcdctl(true); code != exitOK {
			t.Errorf("etcdctl elect -l: exit %d, stderr %q", code, errs)
		}
	}

	// B's session is revoked: B says so and exits 1; no leader is left.
	c.must("", "lease", "revoke", keyLease(t, keyRE, keyB))
	code, out, errs := b(15 * time.Second)
	if wantErr := "cairn: elect " + name + " lost: session expired\n"; code != exitError || out != "proposal B\n" || errs != wantErr {
		t.Errorf("leader whose session was revoked: exit %d, stdout %q\n got stderr %q\nwant stderr %q", code, out, errs, wantErr)
	}
	lcancel()
	if code, out, errs := listener(15 * time.Second); code != exitOK || out != want || errs != "" {
		t.Errorf("interrupted listener: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if n := c.keysUnder(name); n != 0 {
		t.Errorf("%d keys under the election at the end", n)
	}
}
