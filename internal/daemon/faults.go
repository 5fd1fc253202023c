package daemon

import (
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/cairn-db/cairn/internal/failpoint"
	"github.com/cairn-db/cairn/internal/raftnode"
	"github.com/cairn-db/cairn/internal/storage/vfs"
)

// faults wires a failpoint.Set into the member: the file system, the peer
// transport and the mutants read from it. It exists only in binaries built
// with -tags failpoints (see package failpoint).
type faults struct {
	set *failpoint.Set
	efs *vfs.ErrorFS

	mu      sync.RWMutex // protects the fields below
	drop    map[uint64]bool
	dropP   float64
	delay   time.Duration
	applyMu sync.Mutex // serializes apply
}

func newFaults(spec string, fs vfs.FS) (*faults, vfs.FS, error) {
	set, err := failpoint.Parse(spec)
	if err != nil {
		return nil, nil, err
	}
	f := &faults{set: set, efs: vfs.NewErrorFS(fs, time.Sleep), drop: map[uint64]bool{}}
	set.OnChange(func(name, value string) { f.apply(name, value) })
	for _, name := range []string{"peer-drop", "peer-drop-rate", "peer-delay", "fsync-delay", "fsync-error", "disk-full"} {
		if v, ok := set.Get(name); ok {
			f.apply(name, v)
		}
	}
	return f, f.efs, nil
}

func (f *faults) apply(name, value string) {
	f.applyMu.Lock()
	defer f.applyMu.Unlock()
	on := value != "" && value != "0"
	switch name {
	case "peer-drop":
		m := map[uint64]bool{}
		for _, s := range strings.Split(value, ",") {
			if id, err := strconv.ParseUint(strings.TrimSpace(s), 16, 64); err == nil {
				m[id] = true
			}
		}
		f.mu.Lock()
		f.drop = m
		f.mu.Unlock()
	case "peer-drop-rate":
		p, _ := strconv.ParseFloat(value, 64)
		f.mu.Lock()
		f.dropP = p
		f.mu.Unlock()
	case "peer-delay":
		d, _ := time.ParseDuration(value)
		f.mu.Lock()
		f.delay = d
		f.mu.Unlock()
	case "fsync-delay":
		d, _ := time.ParseDuration(value)
		f.efs.SlowSync(d)
	case "fsync-error":
		if on {
			f.efs.FailSync(fmt.Errorf("failpoint fsync-error: %w", syscall.EIO))
		} else {
			f.efs.FailSync(nil)
		}
	case "disk-full":
		if on {
			f.efs.FailWritesAfter(0)
		} else {
			f.efs.FailWritesAfter(-1)
		}
	}
}

func (f *faults) staleReads() bool { return f.set.On("mutant-stale-read") }
func (f *faults) skipFsync() bool  { return f.set.On("mutant-no-fsync") }
func (f *faults) corrupt() bool    { return f.set.On("mutant-corrupt") }

func (f *faults) dropWatchEvery() int {
	v, _ := f.set.Get("mutant-drop-watch-event")
	n, _ := strconv.Atoi(v)
	return n
}

// faultyTransport drops or delays outgoing raft messages as the failpoints say.
type faultyTransport struct {
	f     *faults
	inner raftnode.Transport
}

func (t faultyTransport) Send(msgs []*raftpb.Message) {
	t.f.mu.RLock()
	drop, p, delay := t.f.drop, t.f.dropP, t.f.delay
	t.f.mu.RUnlock()
	if len(drop) == 0 && p == 0 && delay == 0 {
		t.inner.Send(msgs)
		return
	}
	kept := make([]*raftpb.Message, 0, len(msgs))
	for _, m := range msgs {
		if drop[m.GetTo()] || (p > 0 && rand.Float64() < p) {
			continue
		}
		kept = append(kept, m)
	}
	if delay > 0 {
		time.AfterFunc(delay, func() { t.inner.Send(kept) })
		return
	}
	t.inner.Send(kept)
}

// handler serves /debug/failpoints: GET lists them; PUT /debug/failpoints/NAME
// with the value as body sets one; DELETE clears it.
func (f *faults) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/debug/failpoints")
		name = strings.TrimPrefix(name, "/")
		switch r.Method {
		case http.MethodGet:
			fmt.Fprintln(w, f.set.String())
		case http.MethodPut, http.MethodPost:
			if !failpoint.Known(name) {
				http.Error(w, "unknown failpoint "+name, http.StatusNotFound)
				return
			}
			b, _ := io.ReadAll(io.LimitReader(r.Body, 4096))
			f.set.Set(name, strings.TrimSpace(string(b)))
			fmt.Fprintln(w, f.set.String())
		case http.MethodDelete:
			f.set.Set(name, "")
			fmt.Fprintln(w, f.set.String())
		default:
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}
