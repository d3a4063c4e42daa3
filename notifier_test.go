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
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/recovery"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	"github.com/slack-go/slack"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
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

func newTestNotifier(stub *slackStub, clock *testkit.Instant) *Notifier {
	return &Notifier{
		slack:   newSlackPoster(slackSettings{token: "xoxb-test", channel: "C123", apiURL: stub.URL + "/api/"}),
		channel: "C123", after: clock.After, backoff: defaultBackoff, log: discardLogger(),
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
			clock := &testkit.Instant{}
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
			if len(waits) > 1 && waits[1] <= waits[0] && tt.waits[0] == 0 && tt.waits[1] == 0 {
				t.Errorf("backoff does not grow: %v", waits)
			}
		})
	}
}

func TestNotifierRunDeliversAllAndSurvivesFailures(t *testing.T) {
	stub := newSlackStub(t, slackError("not_in_channel")) // the first report is lost, the rest must not be
	n := newTestNotifier(stub, &testkit.Instant{})
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
	testkit.Recv(t, done, "the notifier to deliver three reports and return")
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
	n := &Notifier{after: (&testkit.Instant{}).After, log: discardLogger()}
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
	n := newTestNotifier(stub, &testkit.Instant{})
	graceOver := make(chan time.Time)
	n.after = func(time.Duration) <-chan time.Time { return graceOver }

	ctx, cancel := context.WithCancel(t.Context())
	cancel() // SIGTERM arrived; the report of the last kill is still to be sent
	results := make(chan []Result, 1)
	results <- []Result{killed}
	close(results)
	done := make(chan struct{})
	go func() { n.run(ctx, results, shutdownGrace); close(done) }()

	testkit.Recv(t, received, "the report to be attempted after SIGTERM")
	select {
	case <-done:
		t.Fatal("notifier returned before the grace period was over")
	default:
	}
	close(graceOver) // and a hung Slack cannot hold the shutdown past the grace period
	testkit.Recv(t, done, "the notifier to return once the grace period was over")
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
				"MACAQUE_LEADER_ELECTION": "false",
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

// slackPosted answers a chat.postMessage with ok and the message's ts.
func slackPosted(ts string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"ok":true,"channel":"C123","ts":%q}`, ts)
	}
}

// newBurstKiller is newTestKiller killing up to count pods a tick, through a client with no
// rate limit: a tick of a hundred victims must not outlast testTimeouts waiting on it.
func newBurstKiller(t *testing.T, srv *fakeapi.Server, count int) *Killer {
	t.Helper()
	k := newTestKiller(t, srv, "", false)
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	k.api, k.count = api, killCount{n: count}
	return k
}

// barePods are n pods web-0... in testNS, each of its own ReplicaSet (fakeapi.Pod's), so
// that a tick may kill them all.
func barePods(n int) []*corev1.Pod {
	pods := make([]*corev1.Pod, n)
	for i := range n {
		pods[i] = fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil)
	}
	return pods
}

// runPipeline runs k over ticks and n on what k reports, as run() wires them, and returns
// when the killer is done (killed) and when the notifier is (posted).
func runPipeline(t *testing.T, k *Killer, n *Notifier, ticks <-chan time.Time) (killed, posted <-chan struct{}) {
	t.Helper()
	results := make(chan []Result, reportBuffer)
	kdone, ndone := make(chan struct{}), make(chan struct{})
	go func() { k.run(t.Context(), ticks, results); close(kdone) }()
	go func() { n.run(t.Context(), results, time.Second); close(ndone) }()
	return kdone, ndone
}

// noParsing fails the test if a post asks Slack to turn names or text into mentions or links.
func noParsing(t *testing.T, post map[string]string) {
	t.Helper()
	if v, ok := post["link_names"]; ok {
		t.Errorf("post has link_names=%q: plain text could mention people", v)
	}
	if v, ok := post["parse"]; ok {
		t.Errorf("post has parse=%q: plain text could become mentions and links", v)
	}
}

// TestTickOfAHundredVictimsIsOneMessage runs a tick of MACAQUE_KILL_COUNT=100 through the
// killer and the notifier: one chat.postMessage names all 100 pods, and each kill's verdict is
// a reply in its thread, all through Slack's rate limits (Retry-After honoured) and in order:
// the tick's message before any verdict.
func TestTickOfAHundredVictimsIsOneMessage(t *testing.T) {
	srv := fakeapi.New(t, barePods(maxVictims)...)
	k := newBurstKiller(t, srv, maxVictims)
	const ts = "1700000000.000777"
	// Rate limited on the tick's message and on the second verdict.
	stub := newSlackStub(t, slackRateLimited("2"), slackPosted(ts), slackOK, slackRateLimited("3"))
	clock := &testkit.Instant{}
	n := newTestNotifier(stub, clock)
	verdicts := make(chan recovery.Verdict, maxVictims)
	n.verdicts = verdicts
	ticks := make(chan time.Time, 1)
	ticks <- tick0
	close(ticks)
	killed, posted := runPipeline(t, k, n, ticks)
	testkit.Recv(t, killed, "the killer to finish its tick")
	if got := len(srv.Deletes()); got != maxVictims {
		t.Fatalf("%d pods deleted, want %d", got, maxVictims)
	}
	for i := range maxVictims { // as the recovery goroutine sends them
		pod := fmt.Sprintf("web-%d", i)
		verdicts <- recovery.Verdict{Namespace: testNS, Pod: pod, Workload: "ReplicaSet/rs-" + pod, Status: recovery.Recovered, UID: types.UID("uid-" + pod)}
	}
	close(verdicts)
	testkit.Recv(t, posted, "the notifier to post the tick and its verdicts")

	posts := stub.Posts()
	// 1 message and 100 replies, and the two attempts Slack answered 429 to.
	if len(posts) != 1+maxVictims+2 {
		t.Fatalf("%d chat.postMessage calls, want %d", len(posts), 1+maxVictims+2)
	}
	if waits := clock.Waits(); len(waits) != 2 || waits[0] < 2*time.Second || waits[1] < 3*time.Second {
		t.Errorf("waited %v, want the Retry-After of each 429: 2s, then 3s", waits)
	}
	tick := posts[1]
	if posts[0]["text"] != tick["text"] {
		t.Errorf("first attempt %q, retried as %q: want the tick's message both times", posts[0]["text"], tick["text"])
	}
	if !strings.HasPrefix(tick["text"], ":monkey_face: killed 100 pods of 100 candidates in namespace `shop`. (tick 2026-03-29 09:00 UTC)\n") || tick["thread_ts"] != "" {
		t.Errorf("tick message %q (thread %q), want one saying it killed 100 pods, in the channel", firstLine(tick["text"]), tick["thread_ts"])
	}
	for i := range maxVictims {
		if want := fmt.Sprintf("\n• pod `shop/web-%d` (ReplicaSet/rs-web-%d, node node-web-%d), deleted at ", i, i, i); !strings.Contains(tick["text"], want) {
			t.Errorf("tick message does not list %q", want)
		}
	}
	replied := map[string]bool{}
	for i, p := range posts[2:] {
		noParsing(t, p)
		if p["thread_ts"] != ts || p["reply_broadcast"] != "" || !strings.HasPrefix(p["text"], ":white_check_mark: recovered: replicaset `shop/rs-web-") {
			t.Fatalf("post %d: thread %q, broadcast %q, text %q; want a recovered verdict in thread %s", i+2, p["thread_ts"], p["reply_broadcast"], p["text"], ts)
		}
		replied[p["text"]] = true
	}
	if len(replied) != maxVictims { // the 429'd reply and its retry are one
		t.Errorf("%d distinct verdict replies, want %d", len(replied), maxVictims)
	}
	noParsing(t, tick)
}

// TestStalledSlackNeitherLosesNorDelays: Slack holds the first post while the killer runs more
// ticks than the channel to the notifier has room for: the killer finishes every tick without
// waiting, and once Slack answers, each tick is one message and every victim is in one.
func TestStalledSlackNeitherLosesNorDelays(t *testing.T) {
	const tickCount, perTick = reportBuffer + 6, 2
	srv := fakeapi.New(t, barePods(tickCount*perTick)...)
	k := newBurstKiller(t, srv, perTick)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	stub := newSlackStub(t, func(w http.ResponseWriter) { <-release; slackOK(w) })
	t.Cleanup(free) // before the stub's Close, which waits for the held post
	n := newTestNotifier(stub, &testkit.Instant{})
	ticks := make(chan time.Time, tickCount)
	for i := range tickCount {
		ticks <- tick0.Add(time.Duration(i) * time.Minute)
	}
	close(ticks)
	killed, posted := runPipeline(t, k, n, ticks)
	testkit.Recv(t, killed, "the killer to finish its ticks while Slack holds the first post")
	if got := len(srv.Deletes()); got != tickCount*perTick {
		t.Errorf("%d pods deleted, want %d", got, tickCount*perTick)
	}
	free()
	testkit.Recv(t, posted, "the notifier to post every tick once Slack answers")
	posts := stub.Posts()
	if len(posts) != tickCount {
		t.Errorf("%d posts, want one per tick, %d", len(posts), tickCount)
	}
	var all strings.Builder
	for _, p := range posts {
		all.WriteString(p["text"])
	}
	for i := range tickCount * perTick {
		if c := strings.Count(all.String(), fmt.Sprintf("`shop/web-%d`", i)); c != 1 {
			t.Errorf("web-%d named in %d posts, want 1", i, c)
		}
	}
}

// TestNotifierCountsEveryDrop: a message Slack refused, or gave no answer to through every
// retry, is counted (macaque_slack_messages_dropped_total), a verdict as well as a report; what
// the shutdown grace left no time to try is counted too (macaque_reports_dropped_total).
func TestNotifierCountsEveryDrop(t *testing.T) {
	verdict := recovery.Verdict{Namespace: testNS, Pod: "web-1", Workload: "Deployment/web", Status: recovery.Recovered, UID: "uid-web-1"}
	outage := slices.Repeat([]func(http.ResponseWriter){slackStatus(500)}, 6)
	tests := []struct {
		name     string
		replies  []func(http.ResponseWriter)
		reports  [][]Result
		verdicts []recovery.Verdict
		refused  float64 // macaque_slack_messages_dropped_total
		untried  float64 // macaque_reports_dropped_total
	}{
		{name: "report posted", reports: [][]Result{{killed}}},
		{name: "report refused", replies: []func(http.ResponseWriter){slackError("channel_not_found")}, reports: [][]Result{{killed}}, refused: 1},
		{name: "report outlasted by an outage", replies: outage, reports: [][]Result{{killed}}, refused: 1},
		{name: "verdict refused", replies: []func(http.ResponseWriter){slackError("channel_not_found")}, verdicts: []recovery.Verdict{verdict}, refused: 1},
		{name: "verdict outlasted by an outage", replies: outage, verdicts: []recovery.Verdict{verdict}, refused: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newSlackStub(t, tt.replies...)
			n := newTestNotifier(stub, &testkit.Instant{})
			n.metrics = telemetry.NewMetrics(nil)
			results, verdicts := make(chan []Result, len(tt.reports)), make(chan recovery.Verdict, len(tt.verdicts))
			for _, r := range tt.reports {
				results <- r
			}
			for _, v := range tt.verdicts {
				verdicts <- v
			}
			close(results)
			close(verdicts)
			n.verdicts = verdicts
			done := make(chan struct{})
			go func() { n.run(t.Context(), results, time.Second); close(done) }()
			testkit.Recv(t, done, "the notifier to post")
			wantSeries(t, scrape(t, n.metrics), map[string]float64{
				"macaque_slack_messages_dropped_total": tt.refused, "macaque_reports_dropped_total": tt.untried,
			})
		})
	}
	t.Run("left unposted at shutdown", func(t *testing.T) {
		received, hung := make(chan struct{}), make(chan struct{})
		defer close(hung)
		stub := newSlackStub(t, func(http.ResponseWriter) { close(received); <-hung })
		n := newTestNotifier(stub, &testkit.Instant{})
		n.metrics = telemetry.NewMetrics(nil)
		logs := newLogBuffer("")
		n.log = slog.New(slog.NewJSONHandler(logs, nil))
		graceOver := make(chan time.Time)
		n.after = func(time.Duration) <-chan time.Time { return graceOver }
		second := killed
		second.Pod = "web-2"
		results, verdicts := make(chan []Result, 2), make(chan recovery.Verdict, 1)
		results <- []Result{killed}
		results <- []Result{second}
		verdicts <- verdict
		close(results)
		close(verdicts)
		n.verdicts = verdicts
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // SIGTERM: the grace starts
		done := make(chan struct{})
		go func() { n.run(ctx, results, shutdownGrace); close(done) }()
		testkit.Recv(t, received, "the first report to be attempted")
		close(graceOver)
		testkit.Recv(t, done, "the notifier to return once the grace was over")
		if got := len(stub.Posts()); got != 1 {
			t.Errorf("%d posts, want 1: nothing is tried after the grace", got)
		}
		// The report in flight was given up on; the other and the verdict were never tried.
		wantSeries(t, scrape(t, n.metrics), map[string]float64{
			"macaque_slack_messages_dropped_total": 1, "macaque_reports_dropped_total": 2,
		})
		// Each is logged as dropped, as a refused one is, with the count so far.
		if reports, verdicts := strings.Count(logs.String(), `"msg":"slack report dropped"`), strings.Count(logs.String(), `"msg":"slack verdict dropped"`); reports != 2 || verdicts != 1 ||
			!strings.Contains(logs.String(), `"dropped_total":3,"err":"not posted: the shutdown grace ran out: context canceled"`) {
			t.Errorf("log:\n%s\nwant 2 reports and 1 verdict logged as dropped, the last with dropped_total 3 and why", logs)
		}
	})
}

// evilText is what anyone allowed to annotate a pod could write to make the bot alarm the
// whole channel and show a disguised link.
const evilText = "<!channel> <https://evil.example|x>"

// evilEscaped is evilText as Slack must receive it to show it as written.
const evilEscaped = "&lt;!channel&gt; &lt;https://evil.example|x&gt;"

// TestClusterTextNeverControlsSlack runs cluster text that looks like Slack markup through to
// chat.postMessage: an opt-out annotation's value in a skipped tick, names, notes and errors of
// a tick of several victims, and a verdict's reasons in its thread reply. Each is escaped
// (& < >), macaque's own markup is kept, and no post asks Slack to parse names or links.
func TestClusterTextNeverControlsSlack(t *testing.T) {
	tests := []struct {
		name string
		// feed sends what the notifier posts, through results and verdicts.
		feed    func(t *testing.T, results chan<- []Result, verdicts chan<- recovery.Verdict)
		escaped []string // in the last post's text
	}{
		{
			name: "an opt-out annotation's value on a pod",
			feed: func(t *testing.T, results chan<- []Result, _ chan<- recovery.Verdict) {
				srv := fakeapi.New(t, annotated(fakeapi.Pod(testNS, "web-1", nil), evilText))
				k := newGuardedKiller(t, srv, "", policy.Guard{})
				ticks := make(chan time.Time, 1)
				ticks <- tick0
				close(ticks)
				inner := make(chan []Result, 1)
				k.run(t.Context(), ticks, inner)
				for tick := range inner {
					if len(tick) != 1 || tick[0].Outcome != OutcomeSkipped {
						t.Fatalf("tick %+v, want one skipped report", tick)
					}
					results <- tick
				}
			},
			escaped: []string{":shield: skipped:", "`shop/web-1` (excluded by chaos.macaque.dev/exclude=\"" + evilEscaped + "\" on the pod"},
		},
		{
			name: "a tick of several victims",
			feed: func(_ *testing.T, results chan<- []Result, _ chan<- recovery.Verdict) {
				one, two, failed := killed, killed, killed
				one.Note = "guard says " + evilText
				two.Pod, two.Owner, two.Passed = "web-2&co", "ReplicaSet/<web>", []string{"shop/web-3: " + evilText}
				failed.Pod, failed.Outcome, failed.Err, failed.KilledBefore = "web-4", OutcomeError, errors.New("webhook: "+evilText), 2
				results <- []Result{one, two, failed}
			},
			escaped: []string{"\n    Note: guard says " + evilEscaped, "pod `shop/web-2&amp;co` (ReplicaSet/&lt;web&gt;,", "`shop/web-3` (" + evilEscaped + ")",
				"\n> webhook: " + evilEscaped},
		},
		{
			name: "a verdict's reply in its kill's thread",
			feed: func(_ *testing.T, results chan<- []Result, verdicts chan<- recovery.Verdict) {
				r := killed
				r.uid = "uid-web-1"
				results <- []Result{r}
				verdicts <- recovery.Verdict{Namespace: testNS, Pod: "web-1", Workload: "Deployment/web<x>", Status: recovery.NotRecovered, UID: "uid-web-1",
					Why: "last Event: " + evilText, Timeout: time.Minute}
			},
			escaped: []string{":rotating_light: not recovered: deployment `shop/web&lt;x&gt;`", "last Event: " + evilEscaped},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stub := newSlackStub(t)
			n := newTestNotifier(stub, &testkit.Instant{})
			results, verdicts := make(chan []Result, 4), make(chan recovery.Verdict, 4)
			n.verdicts = verdicts
			tt.feed(t, results, verdicts)
			close(results)
			close(verdicts)
			done := make(chan struct{})
			go func() { n.run(t.Context(), results, time.Second); close(done) }()
			testkit.Recv(t, done, "the notifier to post")
			posts := stub.Posts()
			if len(posts) == 0 {
				t.Fatal("nothing posted")
			}
			for _, p := range posts {
				noParsing(t, p)
				if strings.Contains(p["text"], "<!channel>") || strings.Contains(p["text"], "<https://") || strings.Contains(p["text"], "<web>") {
					t.Errorf("posted raw cluster text: %q", p["text"])
				}
			}
			last := posts[len(posts)-1]["text"]
			for _, want := range tt.escaped {
				if !strings.Contains(last, want) {
					t.Errorf("posted %q, want it to contain %q", last, want)
				}
			}
		})
	}
}

// TestTickMessages checks how a tick's reports become Slack messages: one report as message
// has it, several as one message listing each, and a list too long for Slack split into as few
// parts as fit, each under maxText once escaped, each saying which part it is, every report in
// exactly one of them, in order.
func TestTickMessages(t *testing.T) {
	victims := func(n int, note string) []Result {
		tick := make([]Result, n)
		for i := range tick {
			r := killed
			r.Pod, r.Note, r.uid = fmt.Sprintf("web-%d", i), note, types.UID(fmt.Sprintf("uid-web-%d", i))
			tick[i] = r
		}
		return tick
	}
	endedBy := func(tick []Result, o Outcome, err error) []Result {
		failed := killed
		failed.Pod, failed.Outcome, failed.Err, failed.KilledBefore = "web-x", o, err, len(tick)
		return append(tick, failed)
	}
	dry := victims(2, "")
	for i := range dry {
		dry[i].Outcome = OutcomeDryRun
	}
	evicted := victims(2, "")
	for i := range evicted {
		evicted[i].Mode = modeEvict
	}
	tests := []struct {
		name     string
		tick     []Result
		parts    int
		head     string   // the first message starts so
		contains []string // in the first message
	}{
		{name: "one report reads as it always did", tick: []Result{killed}, parts: 1, head: ":monkey_face: killed pod `shop/web-1`"},
		{name: "a few victims, one message", tick: victims(3, ""), parts: 1,
			head:     ":monkey_face: killed 3 pods of 3 candidates in namespace `shop` matching `app=web`. (tick 2026-03-29 09:00 UTC)\n",
			contains: []string{"\n• pod `shop/web-0` (ReplicaSet/web-7d9, node node-1)\n• pod `shop/web-1` ", "\n• pod `shop/web-2` "}},
		{name: "a victim and the failure that ended the tick", tick: endedBy(victims(1, ""), OutcomeForbidden, errors.New("forbidden")), parts: 1,
			head: ":monkey_face: killed 1 pod of 3 candidates in namespace `shop` matching `app=web`; a failure ended the tick. (tick 2026-03-29 09:00 UTC)\n",
			contains: []string{"\n:no_entry: forbidden to kill pod `shop/web-x` (ReplicaSet/web-7d9, node node-1); it was not killed (1 earlier in this tick were).",
				"\n> forbidden"}},
		{name: "a dry run", tick: dry, parts: 1, head: ":see_no_evil: dry run: would have killed 2 pods of 3 candidates"},
		{name: "evictions", tick: evicted, parts: 1, head: ":monkey_face: evicted 2 pods of 3 candidates"},
		{name: "a hundred victims with short notes, one message", tick: victims(maxVictims, "the DELETE's answer was lost; a read-back found the pod terminating"), parts: 1},
		{name: "a hundred victims with long notes, split", tick: victims(maxVictims, strings.Repeat("n", 600)), parts: 2},
		{name: "escaping is counted in the length", tick: victims(maxVictims, strings.Repeat("<", 400)), parts: 5}, // 2 if it were not
		{name: "a note longer than a message is cut", tick: victims(2, strings.Repeat("n", 2*maxText)), parts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := tickMessages(tt.tick)
			if len(msgs) != tt.parts {
				t.Fatalf("%d messages, want %d", len(msgs), tt.parts)
			}
			if len(tt.tick) == 1 && msgs[0].text != message(tt.tick[0]) {
				t.Errorf("text %q, want message's %q", msgs[0].text, message(tt.tick[0]))
			}
			if !strings.HasPrefix(msgs[0].text, tt.head) {
				t.Errorf("first message %q, want it to start %q", msgs[0].text, tt.head)
			}
			for _, want := range tt.contains {
				if !strings.Contains(msgs[0].text, want) {
					t.Errorf("first message %q, want it to contain %q", msgs[0].text, want)
				}
			}
			var listed []Result
			for i, m := range msgs {
				if len(m.text) > maxText {
					t.Errorf("part %d is %d bytes, more than %d", i+1, len(m.text), maxText)
				}
				label := fmt.Sprintf(" (part %d of %d).", i+1, len(msgs))
				if says := strings.Contains(firstLine(m.text), label); says != (len(msgs) > 1) {
					t.Errorf("part %d: first line %q says %q: %v, want %v", i+1, firstLine(m.text), label, says, len(msgs) > 1)
				}
				for _, r := range m.reports {
					if !strings.Contains(m.text, "`shop/"+r.Pod+"`") {
						t.Errorf("part %d tells of %s but does not name it", i+1, r.Pod)
					}
				}
				listed = append(listed, m.reports...)
			}
			if len(listed) != len(tt.tick) {
				t.Fatalf("%d reports in the parts, want %d", len(listed), len(tt.tick))
			}
			for i := range listed {
				if listed[i].Pod != tt.tick[i].Pod {
					t.Errorf("report %d is %s, want %s", i, listed[i].Pod, tt.tick[i].Pod)
				}
			}
		})
	}
	t.Run("each verdict goes in the thread of the part that names its kill", func(t *testing.T) {
		tick := victims(maxVictims, strings.Repeat("n", 600))
		stub := newSlackStub(t, slackPosted("1.000001"), slackPosted("1.000002"))
		n := newTestNotifier(stub, &testkit.Instant{})
		results, verdicts := make(chan []Result, 1), make(chan recovery.Verdict, 2)
		n.verdicts = verdicts
		results <- tick
		for _, r := range []Result{tick[0], tick[maxVictims-1]} {
			verdicts <- recovery.Verdict{Namespace: testNS, Pod: r.Pod, Status: recovery.Recovered, UID: r.uid}
		}
		close(results)
		close(verdicts)
		done := make(chan struct{})
		go func() { n.run(t.Context(), results, time.Second); close(done) }()
		testkit.Recv(t, done, "the notifier to post")
		posts := stub.Posts()
		if len(posts) != 4 {
			t.Fatalf("%d posts, want the 2 parts and 2 verdicts", len(posts))
		}
		if posts[2]["thread_ts"] != "1.000001" || posts[3]["thread_ts"] != "1.000002" {
			t.Errorf("verdicts in threads %q and %q, want web-0's in part 1 (1.000001), web-99's in part 2 (1.000002)", posts[2]["thread_ts"], posts[3]["thread_ts"])
		}
	})
}
