package server

import "sync"

// waitRegistry matches each proposal, by its request ID, to the result its
// apply produced. Register before proposing; Trigger from the applier.
type waitRegistry struct {
	mu sync.Mutex // protects m
	m  map[uint64]chan applyResult
}

func newWaitRegistry() *waitRegistry {
	return &waitRegistry{m: make(map[uint64]chan applyResult)}
}

// Register returns the channel on which the result for id will arrive.
func (w *waitRegistry) Register(id uint64) <-chan applyResult {
	ch := make(chan applyResult, 1)
	w.mu.Lock()
	w.m[id] = ch
	w.mu.Unlock()
	return ch
}

// Trigger delivers r to the waiter for id, if any. Never blocks.
func (w *waitRegistry) Trigger(id uint64, r applyResult) {
	w.mu.Lock()
	ch := w.m[id]
	delete(w.m, id)
	w.mu.Unlock()
	if ch != nil {
		ch <- r
	}
}

// Cancel forgets the waiter for id (after a timeout).
func (w *waitRegistry) Cancel(id uint64) {
	w.mu.Lock()
	delete(w.m, id)
	w.mu.Unlock()
}

// indexWaiter lets readers wait until the applied index reaches a value.
type indexWaiter struct {
	mu      sync.Mutex // protects the fields below
	applied uint64
	waiters []indexWait
}

type indexWait struct {
	index uint64
	ch    chan struct{}
}

// Wait returns a channel closed once the applied index is at least index.
func (w *indexWaiter) Wait(index uint64) <-chan struct{} {
	ch := make(chan struct{})
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.applied >= index {
		close(ch)
		return ch
	}
	w.waiters = append(w.waiters, indexWait{index, ch})
	return ch
}

// Applied returns the applied index.
func (w *indexWaiter) Applied() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.applied
}

// SetApplied records the applied index and releases the waiters it satisfies.
func (w *indexWaiter) SetApplied(index uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.applied = index
	kept := w.waiters[:0]
	for _, wt := range w.waiters {
		if wt.index <= index {
			close(wt.ch)
		} else {
			kept = append(kept, wt)
		}
	}
	for i := len(kept); i < len(w.waiters); i++ {
		w.waiters[i] = indexWait{}
	}
	w.waiters = kept
}
