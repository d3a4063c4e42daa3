package webhook

import "sync"

// queue is a FIFO without bound from one goroutine that pushes to one that pops: push never
// blocks, so the notifier's intake that feeds the Sender is never held up by the receiver.
// (The root package's notifier has its own, of the same design, for Slack.)
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	ready  chan struct{} // a token once something was pushed or the queue closed since pop looked
}

func newQueue[T any]() *queue[T] { return &queue[T]{ready: make(chan struct{}, 1)} }

// push appends v; never after close.
func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.wake()
}

// close says nothing more comes: pop returns what is left, then reports the end.
func (q *queue[T]) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *queue[T]) wake() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop returns the oldest item, waiting for one; ok is false once the queue is closed and empty.
func (q *queue[T]) pop() (v T, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			var zero T
			v, q.items[0] = q.items[0], zero
			q.items = q.items[1:]
			q.mu.Unlock()
			return v, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return v, false
		}
		<-q.ready
	}
}
