package recovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/testkit"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
)

// pipeAPI opens watches whose events the test writes, one pipe each, or refuses them with fail.
type pipeAPI struct {
	opened chan *pipeWatch
	fail   error
}

// pipeWatch is one watch pipeAPI opened.
type pipeWatch struct {
	q      kube.WatchQuery
	rv     string
	w      *io.PipeWriter
	closed chan struct{} // closed when the watch's reader has gone
}

func newPipeAPI() *pipeAPI { return &pipeAPI{opened: make(chan *pipeWatch, 64)} }

func (a *pipeAPI) Watch(ctx context.Context, q kube.WatchQuery, rv string) (io.ReadCloser, error) {
	if a.fail != nil {
		return nil, a.fail
	}
	r, w := io.Pipe()
	pw := &pipeWatch{q: q, rv: rv, w: w, closed: make(chan struct{})}
	context.AfterFunc(ctx, func() { _ = w.Close(); close(pw.closed) })
	a.opened <- pw
	return r, nil
}

func (*pipeAPI) GetWorkload(context.Context, string, kube.WorkloadKind, string) (kube.Workload, error) {
	return kube.Workload{}, errors.New("pipeAPI reads no workload")
}

func (*pipeAPI) ListEvents(context.Context, string, types.UID) ([]kube.SeenEvent, error) {
	return nil, nil
}

// next is the next watch opened, failing the test if none is within testkit.Within.
func (a *pipeAPI) next(t *testing.T) *pipeWatch {
	t.Helper()
	w, _ := testkit.Recv(t, a.opened, "a watch to be opened")
	return w
}

// none fails the test if a watch was opened that it has not taken.
func (a *pipeAPI) none(t *testing.T) {
	t.Helper()
	select {
	case w := <-a.opened:
		t.Errorf("a watch of %s from %q opened, want none", w.q, w.rv)
	default:
	}
}

// pod writes an event of the pod name, labelled app, at resourceVersion rv.
func (w *pipeWatch) pod(t *testing.T, kind, name, app string, rv int) {
	t.Helper()
	_, err := fmt.Fprintf(w.w, `{"type":%q,"object":{"metadata":{"name":%q,"resourceVersion":"%d","labels":{"app":%q}}}}`+"\n", kind, name, rv, app)
	if err != nil {
		t.Fatal(err)
	}
}

// feedClock is a clock that moves step at each read, and counts them: a feed reads it once for
// each event it reads.
type feedClock struct {
	mu    sync.Mutex
	t     time.Time
	step  time.Duration
	reads int
}

func (c *feedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	c.reads++
	return c.t
}

// read waits until the clock was read n times: the feeds have read n events.
func (c *feedClock) read(t *testing.T, n int) {
	t.Helper()
	for deadline := time.Now().Add(testkit.Within); ; time.Sleep(time.Millisecond) {
		c.mu.Lock()
		reads := c.reads
		c.mu.Unlock()
		if reads >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the clock read %d times after %v, want %d: an event not read", reads, testkit.Within, n)
		}
	}
}

// newFeedFollower is a Follower on api whose clock moves a second at each read and whose
// timers fire at once.
func newFeedFollower(api API) (*Follower, *feedClock) {
	clock := &feedClock{t: kill0, step: time.Second}
	now := func(time.Duration) <-chan time.Time {
		ch := make(chan time.Time, 1)
		ch <- kill0
		return ch
	}
	return &Follower{API: api, Now: clock.now, After: now, Log: discardLogger()}, clock
}

// names is what in holds: the name of each pod, or the kind of what has none.
func names(t *testing.T, s *sub, in *inbox) []string {
	t.Helper()
	s.flush(t.Context())
	var got []string
	for d, ok := in.pop(); ok; d, ok = in.pop() {
		switch {
		case d.Err != nil:
			got = append(got, "error")
		case d.Pod != nil:
			got = append(got, d.Pod.Metadata.Name)
		default:
			got = append(got, d.Kind)
		}
	}
	return got
}

func mustSelect(t *testing.T, s string) labels.Selector {
	t.Helper()
	sel, err := labels.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel
}

// TestFeedsAreSharedPerNamespaceAndResource: the follows of kills in one namespace share one
// watch of its pods and one of each workload kind, begun at the earliest kill's
// resourceVersion; another namespace has its own.
func TestFeedsAreSharedPerNamespaceAndResource(t *testing.T) {
	api := newPipeAPI()
	rc, _ := newFeedFollower(api)
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); rc.feeds.wait() }()
	type want struct{ path, rv string }
	var got []want
	for _, j := range []struct {
		key feedKey
		rv  string
		new bool
	}{
		{podsKey(testNS), "10", true},
		{kindKey(testNS, kube.KindDeployment), "10", true},
		{podsKey(testNS), "11", false},
		{kindKey(testNS, kube.KindDeployment), "12", false},
		{kindKey(testNS, kube.KindStatefulSet), "12", true},
		{podsKey("cart"), "13", true},
	} {
		rc.feeds.join(ctx, rc, j.key, j.rv, kill0)
		if j.new {
			w := api.next(t)
			got = append(got, want{w.q.Prefix + "/" + w.q.Namespace + "/" + w.q.Resource + w.q.LabelSelector + w.q.FieldSelector, w.rv})
		}
		api.none(t)
	}
	wantWatches := []want{{"/api/v1/shop/pods", "10"}, {"/apis/apps/v1/shop/deployments", "10"},
		{"/apis/apps/v1/shop/statefulsets", "12"}, {"/api/v1/cart/pods", "13"}}
	if !slices.Equal(got, wantWatches) {
		t.Errorf("watches %v, want %v", got, wantWatches)
	}
}

// TestFeedHandsOnWhatCameAfterTheKill: a follow gets, from the moment it attaches, what the
// feed read after its kill that concerns it (its workload's pods), the feed's earlier reads
// first, stamped when the feed read them.
func TestFeedHandsOnWhatCameAfterTheKill(t *testing.T) {
	api := newPipeAPI()
	rc, clock := newFeedFollower(api)
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); rc.feeds.wait() }()
	first := rc.feeds.join(ctx, rc, podsKey(testNS), "10", kill0)
	w := api.next(t)
	in1 := newInbox()
	first.attach(matchPods(mustSelect(t, "app=web")), in1)
	w.pod(t, "ADDED", "web-a", "web", 11)
	w.pod(t, "ADDED", "db-b", "db", 12)
	w.pod(t, "ADDED", "web-c", "web", 13)
	later := rc.feeds.join(ctx, rc, podsKey(testNS), "11", kill0.Add(time.Minute))
	api.none(t)
	first.flush(t.Context())
	in2 := newInbox()
	later.attach(matchPods(mustSelect(t, "app=web")), in2)
	w.pod(t, "MODIFIED", "web-a", "web", 14)
	clock.read(t, 4)
	if got, want := names(t, first, in1), []string{"web-a", "web-c", "web-a"}; !slices.Equal(got, want) {
		t.Errorf("the first kill's follow got %v, want %v", got, want)
	}
	got := names(t, later, in2)
	if want := []string{"web-c", "web-a"}; !slices.Equal(got, want) {
		t.Errorf("the later kill's follow got %v, want %v: what came after its kill, old reads first", got, want)
	}
	// Stamped by the feed as it read them (the clock moves a second a read), since the
	// feed began, whenever the follow took them.
	in3 := newInbox()
	rc.feeds.join(ctx, rc, podsKey(testNS), "12", kill0).attach(matchPods(mustSelect(t, "app=web")), in3)
	d, _ := in3.pop()
	if d.Pod.Metadata.Name != "web-c" || !d.at.Equal(kill0.Add(3*time.Second)) || !d.since.Equal(kill0) {
		t.Errorf("web-c handed on as %s at %v since %v, want read third, at +3s, since the feed began", d.Pod.Metadata.Name, d.at, d.since)
	}
}

// TestFeedOfItsOwn: a kill from before a feed began, or before what it still keeps, gets a
// watch of its own from its resourceVersion; the shared one stays the one later kills join.
func TestFeedOfItsOwn(t *testing.T) {
	api := newPipeAPI()
	rc, clock := newFeedFollower(api)
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); rc.feeds.wait() }()
	shared := rc.feeds.join(ctx, rc, podsKey(testNS), "20", kill0)
	w := api.next(t)
	rc.feeds.join(ctx, rc, podsKey(testNS), "15", kill0)
	if own := api.next(t); own.rv != "15" {
		t.Errorf("a kill from before the feed watched from %q, want its own 15", own.rv)
	}
	rc.feeds.join(ctx, rc, podsKey(testNS), "21", kill0)
	api.none(t)
	// A feed of its own that ends (its follow left) leaves the shared one open to later kills.
	own := rc.feeds.join(ctx, rc, podsKey(testNS), "14", kill0)
	api.next(t)
	own.leave()
	rc.feeds.join(ctx, rc, podsKey(testNS), "21", kill0)
	api.none(t)

	// Past historyKeep, what the feed read is dropped: a kill from before it gets its own.
	w.pod(t, "ADDED", "web-a", "web", 22)
	clock.read(t, 1)
	clock.mu.Lock()
	clock.t = clock.t.Add(historyKeep)
	clock.mu.Unlock()
	w.pod(t, "ADDED", "web-b", "web", 23)
	clock.read(t, 2)
	rc.feeds.join(ctx, rc, podsKey(testNS), "22", kill0)
	api.none(t)
	rc.feeds.join(ctx, rc, podsKey(testNS), "21", kill0)
	if own := api.next(t); own.rv != "21" {
		t.Errorf("a kill from before what the feed keeps watched from %q, want its own 21", own.rv)
	}
	// A follow that joined before the drop, attached after it, is told that it missed some.
	in := newInbox()
	shared.attach(matchPods(mustSelect(t, "app=web")), in)
	if got, want := names(t, shared, in), []string{kindExpired, "web-b"}; !slices.Equal(got, want) {
		t.Errorf("a follow attached after the feed dropped events after its kill got %v, want %v", got, want)
	}
}

// TestFeedHistoryIsBounded: a feed keeps at most historyMax events, however quick.
func TestFeedHistoryIsBounded(t *testing.T) {
	api := newPipeAPI()
	rc, clock := newFeedFollower(api)
	clock.step = 0
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); rc.feeds.wait() }()
	s := rc.feeds.join(ctx, rc, podsKey(testNS), "1", kill0)
	w := api.next(t)
	for i := range historyMax + 10 {
		w.pod(t, "ADDED", fmt.Sprint("web-", i), "web", 2+i)
	}
	clock.read(t, historyMax+10)
	rc.feeds.mu.Lock()
	kept, floor := len(s.feed.history), s.feed.floor
	rc.feeds.mu.Unlock()
	if kept != historyMax || floor != fmt.Sprint(2+9) {
		t.Errorf("history of %d with floor %s, want %d, the 10 oldest dropped (floor 11)", kept, floor, historyMax)
	}
}

// TestFeedHistoryKeepsItsWholeSpan: an event exactly historyKeep older than the newest is
// kept; a moment older, dropped.
func TestFeedHistoryKeepsItsWholeSpan(t *testing.T) {
	api := newPipeAPI()
	rc, clock := newFeedFollower(api)
	clock.step = 0
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); rc.feeds.wait() }()
	s := rc.feeds.join(ctx, rc, podsKey(testNS), "1", kill0)
	w := api.next(t)
	kept := func() int {
		rc.feeds.mu.Lock()
		defer rc.feeds.mu.Unlock()
		return len(s.feed.history)
	}
	w.pod(t, "ADDED", "web-a", "web", 2)
	clock.read(t, 1)
	for i, c := range []struct {
		after time.Duration
		kept  int
	}{{historyKeep, 2}, {time.Nanosecond, 2}} { // web-a, then web-a dropped for web-c
		clock.mu.Lock()
		clock.t = clock.t.Add(c.after)
		clock.mu.Unlock()
		w.pod(t, "ADDED", fmt.Sprint("web-", string(rune('b'+i))), "web", 3+i)
		clock.read(t, 2+i)
		if got := kept(); got != c.kept {
			t.Errorf("after %d events %v apart: %d kept, want %d", 2+i, c.after, got, c.kept)
		}
	}
	rc.feeds.mu.Lock()
	floor := s.feed.floor
	rc.feeds.mu.Unlock()
	if floor != "2" {
		t.Errorf("floor %q, want 2: web-a, more than historyKeep older than web-c, dropped", floor)
	}
}

// TestFeedEnds: a watch that gives up or whose pods expired (410) tells every follow on it, and
// later kills get a new one; the last follow to leave a feed closes its watch.
func TestFeedEnds(t *testing.T) {
	t.Run("the pods' watch expired", func(t *testing.T) {
		api := newPipeAPI()
		rc, clock := newFeedFollower(api)
		ctx, cancel := context.WithCancel(t.Context())
		defer func() { cancel(); rc.feeds.wait() }()
		s := rc.feeds.join(ctx, rc, podsKey(testNS), "10", kill0)
		w := api.next(t)
		in := newInbox()
		s.attach(matchPods(mustSelect(t, "app=web")), in)
		w.pod(t, "ADDED", "web-a", "web", 11)
		clock.read(t, 1)
		if _, err := io.WriteString(w.w, `{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old resource version: 10 (12)"}}`+"\n"); err != nil {
			t.Fatal(err)
		}
		testkit.Recv(t, s.feed.gone, "the expired feed to stop handing on")
		if got, want := names(t, s, in), []string{"web-a", kindExpired}; !slices.Equal(got, want) {
			t.Errorf("the follow got %v, want %v", got, want)
		}
		rc.feeds.join(ctx, rc, podsKey(testNS), "12", kill0)
		if w := api.next(t); w.rv != "12" {
			t.Errorf("a later kill's watch from %q, want a new one from 12", w.rv)
		}
	})
	t.Run("failed in a row past the budget", func(t *testing.T) {
		api := newPipeAPI()
		api.fail = errors.New("connection refused")
		rc, _ := newFeedFollower(api)
		ctx, cancel := context.WithCancel(t.Context())
		defer func() { cancel(); rc.feeds.wait() }()
		s := rc.feeds.join(ctx, rc, kindKey(testNS, kube.KindDeployment), "10", kill0)
		testkit.Recv(t, s.feed.gone, "the failing feed to give up")
		in := newInbox()
		s.attach(matchWorkload("web"), in)
		if got := names(t, s, in); !slices.Equal(got, []string{"error"}) {
			t.Errorf("a follow attached after its feed gave up got %v, want its error", got)
		}
		if d := s.feed.history[0]; !errors.Is(d.Err, api.fail) {
			t.Errorf("the error handed on: %v, want the last failure's", d.Err)
		}
	})
	t.Run("the last follow leaves", func(t *testing.T) {
		api := newPipeAPI()
		rc, _ := newFeedFollower(api)
		a := rc.feeds.join(t.Context(), rc, podsKey(testNS), "10", kill0)
		w := api.next(t)
		b := rc.feeds.join(t.Context(), rc, podsKey(testNS), "11", kill0)
		a.leave()
		select {
		case <-w.closed:
			t.Fatal("the watch closed while a follow was still on it")
		case <-time.After(10 * time.Millisecond):
		}
		b.leave()
		testkit.Recv(t, w.closed, "the watch to close once no follow is on it")
		done := make(chan struct{})
		go func() { rc.feeds.wait(); close(done) }()
		testkit.Recv(t, done, "the feed's goroutines to end")
		rc.feeds.join(t.Context(), rc, podsKey(testNS), "12", kill0).leave()
		if w := api.next(t); w.rv != "12" {
			t.Errorf("a kill after the feed stopped watched from %q, want a new watch from 12", w.rv)
		}
	})
}

// TestAfter: resourceVersions are compared as numbers; one that is not counts as after.
func TestAfter(t *testing.T) {
	for _, tt := range []struct {
		rv, from string
		want     bool
	}{
		{"11", "10", true}, {"10", "10", false}, {"9", "10", false}, {"100", "99", true},
		{"x", "10", true}, {"10", "", true},
	} {
		if got := after(tt.rv, tt.from); got != tt.want {
			t.Errorf("after(%q, %q) = %v, want %v", tt.rv, tt.from, got, tt.want)
		}
	}
}

// TestMatchWorkload: a follow on a workload kind's feed hears of its own workload alone, and
// of no pod.
func TestMatchWorkload(t *testing.T) {
	web := matchWorkload("web")
	named := func(name string) *kube.Workload {
		var w kube.Workload
		w.Metadata.Name = name
		return &w
	}
	for _, c := range []struct {
		name string
		e    kube.WatchEvent
		want bool
	}{
		{"its workload", kube.WatchEvent{Workload: named("web")}, true},
		{"another of its kind", kube.WatchEvent{Workload: named("db")}, false},
		{"no workload", kube.WatchEvent{Pod: &kube.WatchedPod{}}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := web(c.e); got != c.want {
				t.Errorf("matchWorkload(web) = %v, want %v", got, c.want)
			}
		})
	}
}
