package daemon

import (
	"context"
	"runtime"
	"runtime/metrics"
	"syscall"
	"time"
)

// idleGC runs the garbage collector while the member is idle, so that a
// collection seldom falls in the middle of a burst of work.
//
// Why: one write to 50,000 watchers is a burst of 50,000 gRPC messages, and
// gRPC allocates about 100 bytes for each. With the default GOGC a member
// then collects every few such writes, in the middle of one. On a loaded
// machine the collection's stop-the-world phase waits for threads the kernel
// has not scheduled (up to 12 ms here) and its marking takes a quarter of
// the CPU, so the watchers of that member get the event late. Measured at
// 50,000 watchers and one write a second (BENCHMARKS.md, "Watch"): p99 from
// the put's send 54.5–69.1 ms with collections during the fan-outs, 42.8–43.8
// ms without any.
//
// The policy: every tick, if the process used less than idleShare of one
// core since the last tick, and the heap has grown at least half of the way
// from the live heap of the last collection to the next collection's goal,
// collect now. A member that is never idle (steady load) is never collected
// here, and one that does not allocate is not either; the runtime's own
// pacing stays in charge of both. Memory only goes down: the collection
// comes earlier than the runtime would start it.
type idleGC struct {
	tick      time.Duration
	idleShare float64                           // fraction of one core under which a tick counts as idle
	cpu       func() time.Duration              // CPU time the process has used so far
	heap      func() (inUse, live, goal uint64) // see readHeap
	collect   func()

	lastCPU time.Duration
	started bool
}

func newIdleGC() *idleGC {
	return &idleGC{tick: 50 * time.Millisecond, idleShare: 0.05, cpu: processCPU, heap: readHeap, collect: runtime.GC}
}

// step is one tick: it reports whether it collected.
func (g *idleGC) step() bool {
	now := g.cpu()
	used := now - g.lastCPU
	g.lastCPU = now
	if !g.started {
		g.started = true
		return false
	}
	if float64(used) >= g.idleShare*float64(g.tick) {
		return false
	}
	inUse, live, goal := g.heap()
	if goal <= live || inUse <= live || 2*(inUse-live) < goal-live {
		return false
	}
	g.collect()
	g.lastCPU = g.cpu() // the collection's own CPU does not make the next tick busy
	return true
}

// run ticks until ctx ends.
func (g *idleGC) run(ctx context.Context) {
	t := time.NewTicker(g.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			g.step()
		}
	}
}

// processCPU is the user and system CPU time of the whole process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var heapSamples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"}, // live objects and garbage not yet swept
	{Name: "/gc/heap/live:bytes"},                // marked live by the last collection
	{Name: "/gc/heap/goal:bytes"},                // where the runtime will have collected by
}

// readHeap reads the heap's size now, its live size at the last collection
// and the next collection's goal, from runtime/metrics (no stop-the-world).
// It is called from one goroutine only.
func readHeap() (inUse, live, goal uint64) {
	metrics.Read(heapSamples)
	for _, s := range heapSamples {
		if s.Value.Kind() != metrics.KindUint64 {
			return 0, 0, 0
		}
	}
	return heapSamples[0].Value.Uint64(), heapSamples[1].Value.Uint64(), heapSamples[2].Value.Uint64()
}
