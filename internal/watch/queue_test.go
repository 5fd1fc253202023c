package watch

import "testing"

// The queue holds at most max responses, wakes the send loop when it gets
// its first one, hands everything over at once and, once closed, still
// hands over what it held.
func TestQueueTakeAndClose(t *testing.T) {
	q := newQueue(2)
	if got, ok := q.take(nil); !ok || len(got) != 0 {
		t.Fatalf("empty open queue: %v %v", got, ok)
	}
	if !q.push(Response{WatchID: 1}) || !q.push(Response{WatchID: 2}) || q.push(Response{WatchID: 3}) {
		t.Fatal("a queue of 2 must take two responses and refuse the third")
	}
	select {
	case <-q.ready:
	default:
		t.Fatal("no wake-up after the first response")
	}
	select {
	case <-q.ready:
		t.Fatal("a second wake-up for a queue that was not empty")
	default:
	}
	batch, ok := q.take(nil)
	if !ok || len(batch) != 2 || batch[0].WatchID != 1 || batch[1].WatchID != 2 || q.room() != 2 {
		t.Fatalf("take: %v %v, room %d", batch, ok, q.room())
	}
	q.push(Response{WatchID: 4})
	q.close()
	if q.push(Response{WatchID: 5}) || q.room() != 0 {
		t.Fatal("a closed queue took a response")
	}
	batch, ok = q.take(batch) // the old batch's storage goes back to the queue
	if !ok || len(batch) != 1 || batch[0].WatchID != 4 {
		t.Fatalf("take after close: %v %v", batch, ok)
	}
	if _, ok := q.take(batch); ok {
		t.Fatal("a closed, drained queue still reports open")
	}
}
