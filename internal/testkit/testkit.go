// Package testkit is what every package's unit tests share to wait, and to read what goroutines
// wrote, without ever waiting unbounded: each wait fails the test, saying what it waited for,
// after Within.
package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"
)

// Within is how long a unit test waits for anything: long enough never to fail a correct run
// on a loaded machine, short enough that a bug that hangs fails the test quickly.
const Within = 5 * time.Second

// Recv receives from ch, failing the test with what if nothing comes within Within. It returns
// the value and whether ch was still open.
func Recv[T any](t *testing.T, ch <-chan T, what string) (T, bool) {
	t.Helper()
	select {
	case v, ok := <-ch:
		return v, ok
	case <-time.After(Within):
		t.Fatalf("still waiting after %v for %s", Within, what)
		var zero T
		return zero, false
	}
}

// Ctx is the test's context, cancelled after Within: a call that a bug makes loop on the API (a
// list that never reaches its last page) or hang fails fast instead of hanging the suite.
func Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), Within)
	t.Cleanup(cancel)
	return ctx
}

// SyncBuffer is a bytes.Buffer that goroutines write while the test reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Served is obj as the API server would serve it, decoded into T: a typed object of
// k8s.io/api read as the wire type macaque decodes.
func Served[T any](t *testing.T, obj any) T {
	t.Helper()
	var out T
	b, err := json.Marshal(obj)
	if err == nil {
		err = json.Unmarshal(b, &out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Instant is an injected timer, for an `after func(time.Duration) <-chan time.Time`, that fires
// at once and records each wait asked of it: retries and backoffs run without sleeping, and
// the test reads what they would have waited.
type Instant struct {
	mu    sync.Mutex
	waits []time.Duration
}

// After records d and returns a channel that has already fired.
func (f *Instant) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

// Waits are the waits asked so far, in order.
func (f *Instant) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}
