package watch

import "sync"

// queue is a stream's bounded queue of responses. The registry pushes while
// holding its lock and never waits; the stream's send loop takes everything
// queued at once (Stream.Take), so a write that queues a response for each
// of a stream's hundred watchers costs the send loop one wake-up, not a
// hundred channel receives.
//
// It holds at most max responses. The batch the send loop took and is still
// sending is outside it, so a stream pins at most 2 x max responses.
type queue struct {
	ready chan struct{} // capacity 1: a value means "look again"

	mu     sync.Mutex // protects the fields below
	items  []Response
	max    int
	closed bool
}

func newQueue(max int) *queue { return &queue{ready: make(chan struct{}, 1), max: max} }

// push appends resp unless the queue is full or closed.
func (q *queue) push(resp Response) bool {
	q.mu.Lock()
	if q.closed || len(q.items) >= q.max {
		q.mu.Unlock()
		return false
	}
	wake := len(q.items) == 0
	q.items = append(q.items, resp)
	q.mu.Unlock()
	if wake {
		q.signal()
	}
	return true
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// room is how many more responses fit now.
func (q *queue) room() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return 0
	}
	return q.max - len(q.items)
}

// close ends the queue: nothing more is pushed; what is queued can still be
// taken.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// take returns every queued response and puts buf's storage (cleared) in
// their place; ok is false once the queue is closed and empty.
func (q *queue) take(buf []Response) (batch []Response, ok bool) {
	clear(buf)
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return buf[:0], !q.closed
	}
	batch, q.items = q.items, buf[:0]
	return batch, true
}
