package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/slack-go/slack"
)

// slackStub is an httptest Slack Web API: each chat.postMessage gets the next canned reply, and
// auth.test gets auth (or ok).
type slackStub struct {
	*httptest.Server
	mu        sync.Mutex
	replies   []func(http.ResponseWriter) // consumed in order; when empty, every post succeeds
	posts     []map[string]string         // the form of every chat.postMessage received
	auth      func(http.ResponseWriter)   // the answer to auth.test; nil: the token is good
	authTests int                         // auth.test calls received
}

func newSlackStub(t *testing.T, replies ...func(http.ResponseWriter)) *slackStub {
	s := &slackStub{replies: replies}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/auth.test" {
			s.mu.Lock()
			s.authTests++
			reply := s.auth
			s.mu.Unlock()
			if reply == nil {
				reply = slackAuthOK
			}
			reply(w)
			return
		}
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

// setAuth sets the answer to auth.test.
func (s *slackStub) setAuth(reply func(http.ResponseWriter)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.auth = reply
}

func (s *slackStub) AuthTests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.authTests
}

func slackAuthOK(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, `{"ok":true,"url":"https://shop.slack.com/","team":"Shop","user":"macaque","team_id":"T1","user_id":"U1"}`)
}

// slackHangUp reads the request and drops the connection without an answer: the post may have
// been made, but the client cannot know.
func slackHangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_ = conn.Close()
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
	type replies = []func(http.ResponseWriter)
	tests := []struct {
		name       string
		replies    replies
		posts      int             // chat.postMessage calls expected
		waits      []time.Duration // retry delays expected (0: any backoff step)
		dropped    bool
		resentFrom int // the first post marked as possibly repeating an earlier one; 0: none is
	}{
		{name: "delivered", posts: 1},
		// Slack answered 429, so it did not post: the retry is the first copy, unmarked.
		{name: "rate limited, retried after Retry-After", replies: replies{slackRateLimited("7")}, posts: 2, waits: []time.Duration{7 * time.Second}},
		{name: "server errors, retried with backoff", replies: replies{slackStatus(502), slackStatus(503)}, posts: 3, waits: []time.Duration{0, 0}, resentFrom: 1},
		{name: "answer lost, resent marked", replies: replies{slackHangUp}, posts: 2, waits: []time.Duration{0}, resentFrom: 1},
		{name: "a rate limit after a lost answer is still marked", replies: replies{slackHangUp, slackRateLimited("3")}, posts: 3, waits: []time.Duration{0, 3 * time.Second}, resentFrom: 1},
		{name: "marked only once the answer is lost", replies: replies{slackRateLimited("3"), slackStatus(502)}, posts: 3, waits: []time.Duration{3 * time.Second, 0}, resentFrom: 2},
		{name: "bad channel is not retried", replies: replies{slackError("channel_not_found")}, posts: 1, dropped: true},
		{name: "bad token is not retried", replies: replies{slackError("invalid_auth")}, posts: 1, dropped: true},
		{
			name:    "outage outlasts the retries",
			replies: replies{slackStatus(500), slackStatus(500), slackStatus(500), slackStatus(500), slackStatus(500), slackStatus(500)},
			posts:   6, waits: []time.Duration{0, 0, 0, 0, 0}, dropped: true, resentFrom: 1,
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
			for i, p := range posts {
				want := message(killed)
				if tt.resentFrom > 0 && i >= tt.resentFrom {
					want += "\n_(resent after a failed attempt; this may repeat an earlier message)_"
				}
				if p["channel"] != "C123" || p["token"] != "xoxb-test" || p["text"] != want {
					t.Errorf("post %d = %v, want channel C123, the token and text %q", i, p, want)
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
			if len(waits) > 1 && !(waits[1] > waits[0]) && tt.waits[0] == 0 && tt.waits[1] == 0 {
				t.Errorf("backoff does not grow: %v", waits)
			}
		})
	}
}

func TestNotifierRunDeliversAllAndSurvivesFailures(t *testing.T) {
	stub := newSlackStub(t, slackError("not_in_channel")) // the first report is lost, the rest must not be
	n := newTestNotifier(stub, &fakeAfter{})
	var logs strings.Builder // read only after run has returned
	n.log = slog.New(slog.NewJSONHandler(&logs, nil))
	results := make(chan []Result, 3)
	for _, o := range []Outcome{OutcomeKilled, OutcomeForbidden, OutcomeNoCandidates} {
		r := killed
		r.Outcome = o
		results <- []Result{r}
	}
	close(results)
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	recvWithin(t, done, "the notifier to deliver three reports and return")
	// The lost report is logged as dropped, once, with the count; the delivered ones are not.
	var drops []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if strings.Contains(line, `"msg":"slack report dropped"`) {
			drops = append(drops, line)
		}
	}
	if len(drops) != 1 || !strings.Contains(drops[0], `"dropped_total":1,`) || !strings.Contains(drops[0], `"outcome":"killed"`) {
		t.Errorf("drop log lines = %q, want one for the first report with dropped_total 1", drops)
	}
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
	results := make(chan []Result) // unbuffered: each send returns only once run has taken it
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()

	const reports = 3
	for i := range reports {
		select {
		case results <- []Result{killed}:
		case <-done:
			t.Fatalf("run returned after taking %d of %d results, before results was closed", i, reports)
		case <-time.After(5 * time.Second):
			t.Fatalf("run stopped taking results: %d of %d taken after 5s", i, reports)
		}
	}
	select {
	case <-done:
		t.Fatal("run returned before results was closed")
	default:
	}
	close(results)
	select {
	case <-done: // nothing to post to, nothing to block on
	case <-time.After(5 * time.Second):
		t.Fatal("run still running 5s after results was closed")
	}
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
	results := make(chan []Result, 1)
	results <- []Result{killed}
	close(results)
	done := make(chan struct{})
	go func() { n.run(ctx, results, shutdownGrace); close(done) }()

	recvWithin(t, received, "the report to be attempted after SIGTERM")
	select {
	case <-done:
		t.Fatal("notifier returned before the grace period was over")
	default:
	}
	close(graceOver) // and a hung Slack cannot hold the shutdown past the grace period
	recvWithin(t, done, "the notifier to return once the grace period was over")
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

func TestMayHavePosted(t *testing.T) {
	// A real refused connection, through slack-go and net/http, so the test sees the error's true shape.
	_, _, refused := newSlackPoster(slackSettings{token: "xoxb-test", channel: "C123", apiURL: refusingURL}).
		PostMessageContext(t.Context(), "C123", slack.MsgOptionText("x", false))
	if refused == nil {
		t.Fatal("post to a closed server succeeded")
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"rate limited: Slack answered", &slack.RateLimitedError{RetryAfter: time.Second}, false},
		{"429 without Retry-After", slack.StatusCodeError{Code: 429, Status: "429 Too Many Requests"}, false},
		{"slack said no", slack.SlackErrorResponse{Err: "channel_not_found"}, false},
		{"connection refused: nothing sent", refused, false},
		{"no such host", &url.Error{Op: "Post", URL: "https://slack.invalid/api/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "slack.invalid"}}}, false},
		{"server error", slack.StatusCodeError{Code: 503, Status: "503 Service Unavailable"}, true},
		{"client timeout", &url.Error{Op: "Post", URL: "https://slack.com/api/", Err: context.DeadlineExceeded}, true},
		{"connection reset", &url.Error{Op: "Post", URL: "https://slack.com/api/", Err: &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}}, true},
		{"answer cut off", &url.Error{Op: "Post", URL: "https://slack.com/api/", Err: io.EOF}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := mayHavePosted(fmt.Errorf("post: %w", tt.err)); got != tt.want {
				t.Errorf("mayHavePosted(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// logBuffer is a logger's output that tests can read while the logger writes, and that signals
// once a line containing mark has been written.
type logBuffer struct {
	mu   sync.Mutex
	buf  strings.Builder
	mark string
	seen chan struct{} // closed at the first line containing mark
}

func newLogBuffer(mark string) *logBuffer { return &logBuffer{mark: mark, seen: make(chan struct{})} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.mark != "" && strings.Contains(string(p), b.mark) && !strings.Contains(b.buf.String(), b.mark) {
		close(b.seen)
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const unreachableWarning = `level=WARN msg="slack unreachable at start; starting anyway, reports will be retried"`

// refusingURL is a Slack API URL whose connections are refused. Not a closed httptest server's:
// its port is free again at once, and another test's server may take it (a flake seen once in
// 75 runs of -count=200 -cpu 1,2,4). Port 1 is privileged and below every ephemeral port.
const refusingURL = "http://127.0.0.1:1/api/"

func TestCheckSlack(t *testing.T) {
	tests := []struct {
		name     string
		auth     func(http.ResponseWriter)
		apiURL   string // default: the stub's
		rejected string // the reason a MACAQUE_SLACK_TOKEN error must quote; empty: no error
		warn     bool
	}{
		{name: "token accepted", auth: slackAuthOK},
		{name: "invalid token", auth: slackError("invalid_auth"), rejected: "invalid_auth"},
		{name: "no token", auth: slackError("not_authed"), rejected: "not_authed"},
		{name: "revoked token", auth: slackError("token_revoked"), rejected: "token_revoked"},
		{name: "deactivated bot", auth: slackError("account_inactive"), rejected: "account_inactive"},
		{name: "slack-side error says nothing of the token", auth: slackError("internal_error"), warn: true},
		{name: "server error", auth: slackStatus(503), warn: true},
		{name: "rate limited", auth: slackRateLimited("30"), warn: true},
		{name: "connection refused", apiURL: refusingURL, warn: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newSlackStub(t)
			stub.setAuth(tt.auth)
			apiURL := cmp.Or(tt.apiURL, stub.URL+"/api/")
			logs := newLogBuffer("")
			api := newSlackPoster(slackSettings{token: "xoxb-test", channel: "C123", apiURL: apiURL})
			err := checkSlack(t.Context(), api, slog.New(slog.NewTextHandler(logs, nil)))

			if tt.rejected == "" && err != nil {
				t.Fatalf("checkSlack = %v, want nil: only a rejected token stops macaque", err)
			}
			if tt.rejected != "" {
				var bad *configError
				if !errors.As(err, &bad) || bad.variable != "MACAQUE_SLACK_TOKEN" || bad.problem != "Slack rejected the token: "+tt.rejected {
					t.Fatalf("checkSlack = %v, want a MACAQUE_SLACK_TOKEN setting error quoting %q", err, tt.rejected)
				}
			}
			if warned := strings.Contains(logs.String(), unreachableWarning); warned != tt.warn {
				t.Errorf("warned %v, want %v; log:\n%s", warned, tt.warn, logs)
			}
			if tt.apiURL == "" && stub.AuthTests() != 1 {
				t.Errorf("%d auth.test calls, want 1", stub.AuthTests())
			}
			if len(stub.Posts()) != 0 {
				t.Errorf("the check posted %v", stub.Posts())
			}
			// Who macaque posts as is logged when Slack says: it helps find the wrong workspace.
			accepted := strings.Contains(logs.String(), `msg="slack token accepted" team=`)
			if want := tt.rejected == "" && !tt.warn; accepted != want {
				t.Errorf("token accepted logged %v, want %v; log:\n%s", accepted, want, logs)
			}
		})
	}
}

// authFunc is a slackAPI whose auth.test is f.
type authFunc func(ctx context.Context) (*slack.AuthTestResponse, error)

func (f authFunc) AuthTestContext(ctx context.Context) (*slack.AuthTestResponse, error) {
	return f(ctx)
}
func (authFunc) PostMessageContext(context.Context, string, ...slack.MsgOption) (string, string, error) {
	panic("checkSlack must not post")
}

func TestCheckSlackIsBoundedAndQuietAtShutdown(t *testing.T) {
	t.Run("a hung Slack is given up on after the check's own timeout", func(t *testing.T) {
		logs := newLogBuffer("")
		var deadline time.Duration
		hung := authFunc(func(ctx context.Context) (*slack.AuthTestResponse, error) {
			d, ok := ctx.Deadline()
			if !ok {
				t.Error("auth.test called without a deadline: a hung Slack would hold the start forever")
			}
			deadline = time.Until(d)
			return nil, fmt.Errorf("Post %q: %w", "https://slack.com/api/auth.test", context.DeadlineExceeded)
		})
		if err := checkSlack(context.Background(), hung, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
			t.Fatalf("checkSlack = %v, want nil", err)
		}
		if deadline <= 0 || deadline > slackCheckTimeout {
			t.Errorf("auth.test deadline in %v, want within %v", deadline, slackCheckTimeout)
		}
		if !strings.Contains(logs.String(), unreachableWarning) {
			t.Errorf("no warning; log:\n%s", logs)
		}
	})
	t.Run("stopped during the check: no warning", func(t *testing.T) {
		logs := newLogBuffer("")
		ctx, cancel := context.WithCancel(t.Context())
		stopped := authFunc(func(ctx context.Context) (*slack.AuthTestResponse, error) {
			cancel() // SIGTERM arrives while auth.test is in flight
			return nil, ctx.Err()
		})
		if err := checkSlack(ctx, stopped, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
			t.Fatalf("checkSlack = %v, want nil", err)
		}
		if strings.Contains(logs.String(), "WARN") {
			t.Errorf("warned at shutdown; log:\n%s", logs)
		}
	})
}

// kubeconfigFor writes a kubeconfig for the API server at url.
func kubeconfigFor(t *testing.T, url string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "` + url + `"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: shop}}]
current-context: x
`
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunChecksSlackAtStart runs the whole daemon in process against a fake API server and the
// Slack stub: a rejected token stops it before the first tick, an unreachable Slack does not.
func TestRunChecksSlackAtStart(t *testing.T) {
	tests := []struct {
		name     string
		auth     func(http.ResponseWriter)
		rejected bool
		dryRun   string // "true" where macaque starts, so that a tick that fires anyway kills nothing
	}{
		{name: "rejected token stops macaque", auth: slackError("token_revoked"), rejected: true, dryRun: "false"},
		{name: "unreachable slack does not", auth: slackStatus(503), dryRun: "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := fakeapi.New(t, fakeapi.Pod(testNS, "web-1", nil))
			stub := newSlackStub(t)
			stub.setAuth(tt.auth)
			t.Setenv("KUBECONFIG", kubeconfigFor(t, api.URL))
			for k, v := range map[string]string{
				"MACAQUE_CRONTAB": "0 0 1 1 *", "MACAQUE_TIMEZONE": "UTC", "MACAQUE_NAMESPACE": testNS, "MACAQUE_SELECTOR": "",
				"MACAQUE_DRY_RUN": tt.dryRun, "MACAQUE_SLACK_TOKEN": "xoxb-test", "MACAQUE_SLACK_CHANNEL": "C123",
				"MACAQUE_SLACK_API_URL": stub.URL + "/api/", "MACAQUE_LOG_FORMAT": "text", "MACAQUE_LOG_LEVEL": "info", "POD_NAME": "macaque-0", "MACAQUE_HTTP_ADDR": "127.0.0.1:0",
			} {
				t.Setenv(k, v)
			}
			logs := newLogBuffer(`msg="macaque started"`)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- run(ctx, nil, io.Discard, logs) }()

			if tt.rejected {
				select {
				case err := <-errc:
					var bad *configError
					if !errors.As(err, &bad) || bad.Error() != "MACAQUE_SLACK_TOKEN: Slack rejected the token: token_revoked" {
						t.Errorf("run = %v, want the MACAQUE_SLACK_TOKEN setting error", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("run still running 5s after Slack rejected the token; log:\n%s", logs)
				}
				if strings.Contains(logs.String(), "macaque started") {
					t.Errorf("macaque started with a rejected token; log:\n%s", logs)
				}
			} else {
				select {
				case <-logs.seen:
				case err := <-errc:
					t.Fatalf("run = %v with Slack unreachable, want it to start; log:\n%s", err, logs)
				case <-time.After(5 * time.Second):
					t.Fatalf("not started 5s after the Slack check; log:\n%s", logs)
				}
				cancel()
				select {
				case err := <-errc:
					if err != nil {
						t.Errorf("run = %v after stop, want nil", err)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("run still running 5s after stop; log:\n%s", logs)
				}
				if !strings.Contains(logs.String(), unreachableWarning) {
					t.Errorf("no warning that Slack is unreachable; log:\n%s", logs)
				}
				// POD_NAME, not the hostname, is the pod macaque must never pick.
				if want := `msg="macaque started" namespace=` + testNS + ` selector="" crontab="0 0 1 1 *" timezone=UTC dry_run=true slack=true self=macaque-0`; !strings.Contains(logs.String(), want) {
					t.Errorf("no line %q; log:\n%s", want, logs)
				}
			}
			if stub.AuthTests() != 1 {
				t.Errorf("%d auth.test calls, want 1", stub.AuthTests())
			}
			for _, d := range api.Deletes() {
				if d.Query.Get("dryRun") == "" { // preflight's dry-run delete kills nothing
					t.Errorf("deleted %s", d.Path)
				}
			}
		})
	}
}

// The e2e tests and the demo match reports by these; a message must keep them.
var (
	killedRE  = regexp.MustCompile("^:monkey_face: killed pod `([^/`]+)/([^`]+)` \\(([^,]+), node ([^)]+)\\), 1 of (\\d+) candidates")
	firstLine = func(s string) string { line, _, _ := strings.Cut(s, "\n"); return line }
)

func TestMessage(t *testing.T) {
	with := func(o Outcome, err error) Result {
		r := killed
		r.Outcome, r.Err = o, err
		return r
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	deleted := killed
	deleted.Deleted = tick0.Add(123 * time.Millisecond)
	inParis := deleted
	inParis.Time = tick0.In(paris) // 2026-03-29 is the day Paris goes to summer time: 09:00 UTC is 11:00 CEST
	fast := killed
	fast.Time = tick0.Add(30 * time.Second)
	fast.Deleted = fast.Time.Add(120 * time.Millisecond)
	midnight := killed
	midnight.Time = time.Date(2026, 3, 29, 23, 59, 59, 0, time.UTC)
	midnight.Deleted = midnight.Time.Add(1500 * time.Millisecond)
	readBack := deleted
	readBack.Note = "the DELETE's answer was lost; a read-back found the pod terminating"
	passedKill := deleted
	passedKill.Passed = []string{"shop/web-2: no longer running", "shop/web-3: replaced by a new pod"}
	gone := with(OutcomeNotFound, errors.New(`pod "web-1" is no longer running: pod is gone`))
	gone.Passed = []string{"shop/web-2: gone", "shop/web-3: replaced by a new pod"}
	allGone := Result{Time: tick0, Namespace: "shop", Selector: "app=web", Candidates: 3, Outcome: OutcomeNotFound,
		Passed: []string{"shop/web-1: gone", "shop/web-2: gone", "shop/web-3: gone", "shop/web-4: gone", "shop/web-5: gone", "shop/web-6: gone", "shop/web-7: gone"}}
	fivePassed := allGone
	fivePassed.Passed = allGone.Passed[:maxPassed]
	skipped := Result{Time: tick0, Namespace: "shop", Selector: "app=web", Candidates: 4, Outcome: OutcomeSkipped, Passed: []string{
		"shop/web-1: web: 2/3 ready", "shop/cron-abc: owned by a Job (cron), which MACAQUE_OWNER_KINDS does not list", "shop/solo: bare pod, nothing would recreate it"}}
	unknown := with(OutcomeUnknown, errors.New("context deadline exceeded"))
	unknown.Note = "a read-back found the pod still running with its old UID"

	tests := []struct {
		name     string
		r        Result
		prefix   string // the first line starts so
		contains []string
		absent   []string
	}{
		{name: "killed", r: killed, prefix: ":monkey_face: killed pod `shop/web-1` (ReplicaSet/web-7d9, node node-1), 1 of 3 candidates",
			contains: []string{"killed pod `shop/web-1`", "ReplicaSet/web-7d9", "node node-1", "1 of 3", "`app=web`", "(tick 2026-03-29 09:00 UTC)"},
			absent:   []string{"\n"}}, // nothing passed over, no note, no error: one line
		{name: "killed, with when the delete was accepted", r: deleted,
			contains: []string{"`app=web`. (tick 2026-03-29 09:00 UTC, deleted at 09:00:00.12 UTC)"}},
		{name: "times are on the schedule's clock", r: inParis, contains: []string{"(tick 2026-03-29 11:00 CEST, deleted at 11:00:00.12 CEST)"}},
		{name: "a sub-minute schedule shows seconds", r: fast, contains: []string{"(tick 2026-03-29 09:00:30 UTC, deleted at 09:00:30.12 UTC)"}},
		{name: "a delete on the next day shows its date", r: midnight, contains: []string{"(tick 2026-03-29 23:59:59 UTC, deleted at 2026-03-30 00:00:00.50 UTC)"}},
		{name: "a kill confirmed by a read-back says so", r: readBack, prefix: ":monkey_face: killed pod `shop/web-1`",
			contains: []string{"\nNote: the DELETE's answer was lost; a read-back found the pod terminating"}},
		{name: "a kill lists the picks passed over first", r: passedKill, prefix: ":monkey_face: killed pod `shop/web-1`",
			contains: []string{"\nPassed over first: `shop/web-2` (no longer running), `shop/web-3` (replaced by a new pod)"}},
		{name: "dry run", r: with(OutcomeDryRun, nil), prefix: ":see_no_evil: dry run: would have killed pod `shop/web-1`",
			contains: []string{"(tick 2026-03-29 09:00 UTC)"}, absent: []string{"deleted at"}},
		{name: "no candidates", r: Result{Namespace: "shop", Outcome: OutcomeNoCandidates}, contains: []string{"no Running pod to kill in namespace `shop`."}},
		{name: "no candidates at a tick", r: with(OutcomeNoCandidates, nil), prefix: ":zzz: no Running pod to kill in namespace `shop` matching `app=web`",
			contains: []string{"(tick 2026-03-29 09:00 UTC)"}},
		{name: "forbidden delete", r: with(OutcomeForbidden, errors.New(`pods "web-1" is forbidden`)), prefix: ":no_entry: forbidden to kill pod `shop/web-1`",
			contains: []string{"nothing was killed", "Check macaque's Role", `pods "web-1" is forbidden`, "(tick 2026-03-29 09:00 UTC)"}},
		{name: "forbidden list", r: Result{Namespace: "shop", Outcome: OutcomeForbidden, Err: errors.New("cannot list")}, contains: []string{"forbidden to kill in namespace `shop`", "nothing was killed"}},
		{name: "denied by a webhook", r: with(OutcomeDenied, errors.New(`admission webhook "deny.example.com" denied the request: not today`)),
			prefix:   ":no_entry: the API server denied killing pod `shop/web-1` (ReplicaSet/web-7d9, node node-1); nothing was killed.",
			contains: []string{"\n> admission webhook \"deny.example.com\" denied the request: not today", "(tick 2026-03-29 09:00 UTC)"},
			absent:   []string{"Role"}},
		{name: "result unknown", r: unknown, prefix: ":question: sent the delete of pod `shop/web-1` (ReplicaSet/web-7d9, node node-1)",
			contains: []string{"result is unknown: the pod may or may not have been killed.", "\nNote: a read-back found the pod still running", "\n> context deadline exceeded"},
			absent:   []string{"nothing was killed", "deleted at"}},
		{name: "gone", r: gone, prefix: ":ghost: picked pod `shop/web-1`",
			contains: []string{"gone before it could be deleted", "nothing was killed", "\nEarlier picks, also passed over: `shop/web-2` (gone), `shop/web-3` (replaced by a new pod)", "\n> pod \"web-1\" is no longer running"}},
		{name: "exactly as many passed over as are listed: no 'and 0 more'", r: fivePassed, prefix: ":ghost: every pick in namespace `shop`",
			contains: []string{"`shop/web-5` (gone)"}, absent: []string{"more"}},
		{name: "every pick gone", r: allGone, prefix: ":ghost: every pick in namespace `shop` matching `app=web` was gone or changed",
			contains: []string{"nothing was killed", "`shop/web-1` (gone)", "`shop/web-5` (gone), and 2 more"}, absent: []string{"web-6"}},
		{name: "skipped by the guard names why for each pick", r: skipped,
			prefix:   ":shield: skipped: no pick among 4 candidates in namespace `shop` matching `app=web` was safe to kill (steady-state guard); nothing was killed. (tick 2026-03-29 09:00 UTC)",
			contains: []string{"\nPicks passed over: `shop/web-1` (web: 2/3 ready), `shop/cron-abc` (owned by a Job (cron), which MACAQUE_OWNER_KINDS does not list), `shop/solo` (bare pod, nothing would recreate it)"},
			absent:   []string{"killed pod", "\n> ", "Passed over first"}},
		{name: "error", r: with(OutcomeError, errors.New("etcd timeout")), prefix: ":warning: failed to kill pod `shop/web-1`",
			contains: []string{"nothing was killed", "etcd timeout", "(tick 2026-03-29 09:00 UTC)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := message(tt.r)
			if !strings.HasPrefix(got, tt.prefix) {
				t.Errorf("message = %q, want it to start %q", got, tt.prefix)
			}
			for _, want := range tt.contains {
				if !strings.Contains(got, want) {
					t.Errorf("message = %q, want it to contain %q", got, want)
				}
			}
			for _, bad := range tt.absent {
				if strings.Contains(got, bad) {
					t.Errorf("message = %q, want no %q", got, bad)
				}
			}
			if !tt.r.Time.IsZero() && !strings.Contains(firstLine(got), "(tick ") {
				t.Errorf("message = %q, want the tick's time on its first line", got)
			}
			isKill := killedRE.MatchString(got)
			if isKill != (tt.r.Outcome == OutcomeKilled) {
				t.Errorf("message = %q matches the e2e kill report: %v, want %v", got, isKill, tt.r.Outcome == OutcomeKilled)
			}
		})
	}
}
