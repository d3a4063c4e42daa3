package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

// slackStub is an httptest Slack Web API: each chat.postMessage gets the next canned reply.
type slackStub struct {
	*httptest.Server
	mu      sync.Mutex
	replies []func(http.ResponseWriter) // consumed in order; when empty, every post succeeds
	posts   []map[string]string         // the form of every chat.postMessage received
}

func newSlackStub(t *testing.T, replies ...func(http.ResponseWriter)) *slackStub {
	s := &slackStub{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat.postMessage" {
			http.NotFound(w, r)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		form := map[string]string{}
		for k := range r.PostForm {
			form[k] = r.PostForm.Get(k)
		}
		s.mu.Lock()
		s.posts = append(s.posts, form)
		var reply func(http.ResponseWriter)
		if len(s.replies) > 0 {
			reply, s.replies = s.replies[0], s.replies[1:]
		}
		s.mu.Unlock()
		if reply == nil {
			reply = slackOK
		}
		reply(w)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *slackStub) Posts() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.posts...)
}

func slackOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true,"channel":"C123","ts":"1700000000.000100"}`)
}

func slackRateLimited(retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
	}
}

func slackStatus(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

func slackError(reason string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":false,"error":%q}`, reason)
	}
}

// fakeAfter is an injected timer that fires at once and records what it was asked to wait.
type fakeAfter struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (f *fakeAfter) after(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	f.waits = append(f.waits, d)
	f.mu.Unlock()
	c := make(chan time.Time, 1)
	c <- time.Time{}
	return c
}

func (f *fakeAfter) Waits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.waits...)
}

func newTestNotifier(stub *slackStub, clock *fakeAfter) *Notifier {
	return &Notifier{
		slack:   newSlackPoster(slackSettings{token: "xoxb-test", channel: "C123", apiURL: stub.URL + "/api/"}),
		channel: "C123", after: clock.after, backoff: defaultBackoff, log: discardLogger(),
	}
}

var killed = Result{Time: tick0, Namespace: "shop", Selector: "app=web", Pod: "web-1", Owner: "ReplicaSet/web-7d9", Node: "node-1", Candidates: 3, Outcome: OutcomeKilled}

func TestNotifierPosts(t *testing.T) {
	tests := []struct {
		name    string
		replies []func(http.ResponseWriter)
		posts   int             // chat.postMessage calls expected
		waits   []time.Duration // retry delays expected (0: any backoff step)
		dropped bool
	}{
		{name: "delivered", posts: 1},
		{name: "rate limited, retried after Retry-After", replies: []func(http.ResponseWriter){slackRateLimited("7")}, posts: 2, waits: []time.Duration{7 * time.Second}},
		{name: "server errors, retried with backoff", replies: []func(http.ResponseWriter){slackStatus(502), slackStatus(503)}, posts: 3, waits: []time.Duration{0, 0}},
		{name: "bad channel is not retried", replies: []func(http.ResponseWriter){slackError("channel_not_found")}, posts: 1, dropped: true},
		{name: "bad token is not retried", replies: []func(http.ResponseWriter){slackError("invalid_auth")}, posts: 1, dropped: true},
		{
			name:    "outage outlasts the retries",
			replies: []func(http.ResponseWriter){slackStatus(500), slackStatus(500), slackStatus(500), slackStatus(500), slackStatus(500), slackStatus(500)},
			posts:   6, waits: []time.Duration{0, 0, 0, 0, 0}, dropped: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newSlackStub(t, tt.replies...)
			clock := &fakeAfter{}
			n := newTestNotifier(stub, clock)
			err := n.post(t.Context(), killed)
			if (err != nil) != tt.dropped {
				t.Fatalf("post err = %v, want dropped %v", err, tt.dropped)
			}
			posts := stub.Posts()
			if len(posts) != tt.posts {
				t.Fatalf("%d posts, want %d", len(posts), tt.posts)
			}
			for _, p := range posts {
				if p["channel"] != "C123" || p["token"] != "xoxb-test" || p["text"] != message(killed) {
					t.Errorf("post = %v, want channel C123, the token and the kill message", p)
				}
			}
			waits := clock.Waits()
			if len(waits) != len(tt.waits) {
				t.Fatalf("waited %v, want %d waits", waits, len(tt.waits))
			}
			for i, w := range tt.waits {
				if w != 0 && waits[i] < w {
					t.Errorf("wait %d = %v, want at least %v", i, waits[i], w)
				}
				if w == 0 && (waits[i] < 900*time.Millisecond || waits[i] > time.Minute) {
					t.Errorf("backoff wait %d = %v, want between 0.9s and 1m", i, waits[i])
				}
			}
			if len(waits) > 1 && !(waits[1] > waits[0]) && tt.waits[0] == 0 {
				t.Errorf("backoff does not grow: %v", waits)
			}
		})
	}
}

func TestNotifierRunDeliversAllAndSurvivesFailures(t *testing.T) {
	stub := newSlackStub(t, slackError("not_in_channel")) // the first report is lost, the rest must not be
	n := newTestNotifier(stub, &fakeAfter{})
	results := make(chan Result, 3)
	for _, o := range []Outcome{OutcomeKilled, OutcomeForbidden, OutcomeNoCandidates} {
		r := killed
		r.Outcome = o
		results <- r
	}
	close(results)
	n.run(t.Context(), results, time.Second)
	posts := stub.Posts()
	if len(posts) != 3 {
		t.Fatalf("%d posts, want 3", len(posts))
	}
	if !strings.Contains(posts[2]["text"], "no Running pod") {
		t.Errorf("last post = %q, want the no-candidates report", posts[2]["text"])
	}
}

func TestNotifierWithoutSlackOnlyDrains(t *testing.T) {
	n := &Notifier{after: (&fakeAfter{}).after, log: discardLogger()}
	results := make(chan Result, 1)
	results <- killed
	close(results)
	n.run(t.Context(), results, time.Second) // returns: nothing to post to, nothing to block on
}

func TestNotifierShutdownIsBounded(t *testing.T) {
	// Slack accepts the post and never answers.
	received, hung := make(chan struct{}), make(chan struct{})
	defer close(hung)
	stub := newSlackStub(t, func(http.ResponseWriter) { close(received); <-hung })
	n := newTestNotifier(stub, &fakeAfter{})
	graceOver := make(chan time.Time)
	n.after = func(time.Duration) <-chan time.Time { return graceOver }

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // SIGTERM arrived; the report of the last kill is still to be sent
	results := make(chan Result, 1)
	results <- killed
	close(results)
	done := make(chan struct{})
	go func() { n.run(ctx, results, shutdownGrace); close(done) }()

	<-received // the report is still attempted after SIGTERM
	select {
	case <-done:
		t.Fatal("notifier returned before the grace period was over")
	default:
	}
	close(graceOver)
	<-done // and a hung Slack cannot hold the shutdown past the grace period
	if len(stub.Posts()) != 1 {
		t.Errorf("%d posts, want 1", len(stub.Posts()))
	}
}

func TestRetryDelay(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		retry bool
	}{
		{"rate limited", &slack.RateLimitedError{RetryAfter: 30 * time.Second}, true},
		{"server error", slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}, true},
		{"connection refused", errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{"bad request", slack.StatusCodeError{Code: 400, Status: "400 Bad Request"}, false},
		{"slack said no", slack.SlackErrorResponse{Err: "channel_not_found"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := defaultBackoff
			_, retry := retryDelay(fmt.Errorf("post: %w", tt.err), &b)
			if retry != tt.retry {
				t.Errorf("retry = %v, want %v", retry, tt.retry)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	with := func(o Outcome, err error) Result {
		r := killed
		r.Outcome, r.Err = o, err
		return r
	}
	tests := []struct {
		name     string
		r        Result
		contains []string
	}{
		{"killed", killed, []string{"killed pod `shop/web-1`", "ReplicaSet/web-7d9", "node node-1", "1 of 3", "`app=web`"}},
		{"dry run", with(OutcomeDryRun, nil), []string{"dry run", "would have killed pod `shop/web-1`"}},
		{"no candidates", Result{Namespace: "shop", Outcome: OutcomeNoCandidates}, []string{"no Running pod to kill in namespace `shop`."}},
		{"forbidden delete", with(OutcomeForbidden, errors.New(`pods "web-1" is forbidden`)), []string{"forbidden to kill pod `shop/web-1`", "nothing was killed", `pods "web-1" is forbidden`}},
		{"forbidden list", Result{Namespace: "shop", Outcome: OutcomeForbidden, Err: errors.New("cannot list")}, []string{"forbidden to kill in namespace `shop`", "nothing was killed"}},
		{"gone", with(OutcomeNotFound, errors.New("not found")), []string{"gone before it could be deleted", "nothing was killed"}},
		{"error", with(OutcomeError, errors.New("etcd timeout")), []string{"failed to kill pod `shop/web-1`", "nothing was killed", "etcd timeout"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := message(tt.r)
			for _, want := range tt.contains {
				if !strings.Contains(got, want) {
					t.Errorf("message = %q, want it to contain %q", got, want)
				}
			}
			if tt.r.Outcome != OutcomeKilled && strings.Contains(got, ":monkey_face: killed") {
				t.Errorf("message = %q claims a kill for outcome %q", got, tt.r.Outcome)
			}
		})
	}
}
