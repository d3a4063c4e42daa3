package queue

import (
	"sync"
	"testing"

	"github.com/macaque-chaos/macaque/internal/testkit"
)

// TestQueue: push never waits for pop, items come out in the order they went in, pop waits for
// an item, and after close pop returns what is left, then the end.
func TestQueue(t *testing.T) {
	t.Run("first in, first out, none lost", func(t *testing.T) {
		q := New[int]()
		const n = 10000 // far more than any channel buffer in macaque: push must never block
		for i := range n {
			q.Push(i)
		}
		q.Close()
		for want := range n {
			got, ok := q.Pop()
			if !ok || got != want {
				t.Fatalf("pop = %d, %v; want %d, true", got, ok, want)
			}
		}
		if got, ok := q.Pop(); ok {
			t.Errorf("pop after the last item = %d, true; want the end", got)
		}
	})
	t.Run("pop waits for a push", func(t *testing.T) {
		q := New[string]()
		got := make(chan string)
		go func() {
			v, _ := q.Pop()
			got <- v
		}()
		select {
		case v := <-got:
			t.Fatalf("pop returned %q from an empty queue", v)
		default:
		}
		q.Push("tick")
		if v, _ := testkit.Recv(t, got, "pop to return the item pushed"); v != "tick" {
			t.Errorf("pop = %q, want tick", v)
		}
	})
	t.Run("close wakes a waiting pop", func(t *testing.T) {
		q := New[int]()
		ended := make(chan bool)
		go func() {
			_, ok := q.Pop()
			ended <- ok
		}()
		q.Close()
		if ok, _ := testkit.Recv(t, ended, "pop to see the close"); ok {
			t.Error("pop on a closed, empty queue returned an item")
		}
	})
	t.Run("several pushers", func(t *testing.T) {
		q := New[int]()
		var wg sync.WaitGroup
		for p := range 4 {
			wg.Go(func() {
				for i := range 500 {
					q.Push(p*1000 + i)
				}
			})
		}
		done := make(chan struct{})
		go func() { wg.Wait(); q.Close(); close(done) }()
		last := map[int]int{0: -1, 1: -1, 2: -1, 3: -1}
		count := 0
		for {
			v, ok := q.Pop()
			if !ok {
				break
			}
			count++
			if p, i := v/1000, v%1000; i != last[p]+1 {
				t.Fatalf("pusher %d: item %d after %d", p, i, last[p])
			} else {
				last[p] = i
			}
		}
		testkit.Recv(t, done, "the pushers to end")
		if count != 2000 {
			t.Errorf("%d items popped, want 2000", count)
		}
	})
}
