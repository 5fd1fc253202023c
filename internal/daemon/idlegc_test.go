package daemon

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// fakeGC drives idleGC by hand: CPU and heap figures are set by the test.
type fakeGC struct {
	cpu               time.Duration
	inUse, live, goal uint64
	collections       int
	cpuPerCollection  time.Duration
}

func (f *fakeGC) idleGC() *idleGC {
	return &idleGC{
		tick: 50 * time.Millisecond, idleShare: 0.05,
		cpu:  func() time.Duration { return f.cpu },
		heap: func() (uint64, uint64, uint64) { return f.inUse, f.live, f.goal },
		collect: func() {
			f.collections++
			f.cpu += f.cpuPerCollection
			f.inUse = f.live
		},
	}
}

func TestIdleGCCollectsOnlyWhenIdleAndHalfWay(t *testing.T) {
	f := &fakeGC{live: 100, goal: 200, inUse: 100, cpuPerCollection: 10 * time.Millisecond}
	g := f.idleGC()
	if g.step() {
		t.Fatal("the first tick has no CPU baseline and must not collect")
	}
	steps := []struct {
		name    string
		cpu     time.Duration // CPU used during the tick
		inUse   uint64
		collect bool
	}{
		{"idle, heap not grown", 0, 100, false},
		{"idle, heap grown less than half way", time.Millisecond, 149, false},
		{"busy, heap past half way", 3 * time.Millisecond, 160, false}, // 3 ms of 50 ms = 6% > 5%
		{"busy, heap near the goal", 40 * time.Millisecond, 195, false},
		{"idle, heap exactly half way", 2 * time.Millisecond, 150, true},
		// the collection used 10 ms of CPU: counted in the tick, it would make this one busy
		{"idle right after a collection, past half way again", 0, 170, true},
		{"idle, heap back to live", 0, 100, false},
	}
	for _, s := range steps {
		f.cpu += s.cpu
		f.inUse = s.inUse
		before := f.collections
		if got := g.step(); got != s.collect || (f.collections > before) != s.collect {
			t.Fatalf("%s: collected %v (count %d -> %d), want %v", s.name, got, before, f.collections, s.collect)
		}
	}
}

func TestIdleGCRespectsAnUnsetGoal(t *testing.T) {
	// GOGC=off: the goal is far away (or not above live): never collect.
	for _, c := range []struct{ inUse, live, goal uint64 }{
		{inUse: 1 << 30, live: 100, goal: 1 << 62},
		{inUse: 500, live: 100, goal: 100},
		{inUse: 500, live: 100, goal: 0},
		{inUse: 50, live: 100, goal: 200}, // just collected: in use below the last live figure
	} {
		f := &fakeGC{inUse: c.inUse, live: c.live, goal: c.goal}
		g := f.idleGC()
		g.step()
		if g.step() || f.collections != 0 {
			t.Errorf("heap %+v: collected", c)
		}
	}
}

func TestIdleGCRunStopsWithContext(t *testing.T) {
	g := newIdleGC()
	g.tick = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { g.run(ctx); close(done) }()
	cancel()
	<-done
}

func TestReadHeap(t *testing.T) {
	runtime.GC()
	inUse, live, goal := readHeap()
	if live == 0 || goal <= live || inUse == 0 {
		t.Fatalf("readHeap() = in use %d, live %d, goal %d: want live > 0, goal > live, in use > 0", inUse, live, goal)
	}
	if processCPU() <= 0 {
		t.Fatal("processCPU() = 0")
	}
}
