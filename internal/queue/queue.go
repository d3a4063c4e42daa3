package queue

import "sync"

// Queue is an unbounded FIFO from one or more goroutines to one that pops: push never blocks
// and never drops, so whoever feeds it is never held up by how slowly it is emptied (Slack).
type Queue[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	// ready holds a token once something was pushed or the queue closed since pop last
	// looked, so that pop can wait without holding mu.
	ready chan struct{}
}

// New is an empty, open queue.
func New[T any]() *Queue[T] {
	return &Queue[T]{ready: make(chan struct{}, 1)}
}

// Push appends v; it must not be called after Close.
func (q *Queue[T]) Push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.wake()
}

// Close says nothing more will be pushed: Pop returns what is left, then reports the end.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *Queue[T]) wake() {
	select {
	case q.ready <- struct{}{}:
	default: // a token is already waiting for pop
	}
}

// Pop returns the oldest item, waiting for one; ok is false once the queue is closed and empty.
// Only one goroutine may Pop.
func (q *Queue[T]) Pop() (v T, ok bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			var zero T
			v, q.items[0] = q.items[0], zero // let the item be collected once posted
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
