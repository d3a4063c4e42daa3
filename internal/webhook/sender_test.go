package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/testkit"
	"k8s.io/apimachinery/pkg/util/wait"
)

// received is one POST the receiver got.
type received struct {
	contentType, auth string
	event             map[string]any
}

// receiver is an httptest CloudEvents receiver: each POST gets the next canned reply (202 once
// they run out) and is recorded.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	replies []func(http.ResponseWriter)
	got     []received
}

func newReceiver(t *testing.T, replies ...func(http.ResponseWriter)) *receiver {
	rc := &receiver{replies: replies}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var e map[string]any
		_ = json.Unmarshal(body, &e)
		rc.mu.Lock()
		rc.got = append(rc.got, received{contentType: r.Header.Get("Content-Type"), auth: r.Header.Get("Authorization"), event: e})
		reply := func(w http.ResponseWriter) { w.WriteHeader(http.StatusAccepted) }
		if len(rc.replies) > 0 {
			reply, rc.replies = rc.replies[0], rc.replies[1:]
		}
		rc.mu.Unlock()
		reply(w)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) Got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

func status(code int) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) { w.WriteHeader(code) }
}

func rateLimited(retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Retry-After", retryAfter)
		w.WriteHeader(http.StatusTooManyRequests)
	}
}

func redirect(w http.ResponseWriter) {
	w.Header().Set("Location", "https://elsewhere.invalid/")
	w.WriteHeader(http.StatusMovedPermanently)
}

// hangUp drops the connection without an answer.
func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// drops counts what the sender reports dropped.
type drops struct{ refused, atShutdown atomic.Int64 }

func (d *drops) WebhookDropped() { d.refused.Add(1) }
func (d *drops) ReportDropped()  { d.atShutdown.Add(1) }

// now is the fake clock's time, for a Retry-After given as a date.
var now = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// backoff is macaque's: 1s, 2s, 4s, 8s, 16s.
var backoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5, Cap: time.Minute}

func newSender(url string, clock *testkit.Instant, log io.Writer) *Sender {
	return &Sender{URL: url, Client: Client(), After: clock.After, Now: func() time.Time { return now }, Backoff: backoff,
		Log: slog.New(slog.NewTextHandler(log, nil))}
}

var kill = New("id-kill", TypeKill, Source("prod-eu", "shop"), "web-1", now, Report{Outcome: "killed", Pod: "web-1"})

// TestSend: each failure that may pass is retried with the backoff (a 429 after its
// Retry-After), each refusal is not, and every attempt is the same event (the same id, so a
// receiver can tell a resend), in structured mode.
func TestSend(t *testing.T) {
	type replies = []func(http.ResponseWriter)
	outage := replies{status(500), status(500), status(500), status(500), status(500), status(500)}
	tests := []struct {
		name    string
		replies replies
		posts   int
		waits   []time.Duration // 0: a backoff step (0.9s to 1m)
		dropped bool
	}{
		{name: "delivered", posts: 1},
		{name: "a 200 is delivered too", replies: replies{status(200)}, posts: 1},
		{name: "rate limited, retried after Retry-After in seconds", replies: replies{rateLimited("7")}, posts: 2, waits: []time.Duration{7 * time.Second}},
		{name: "rate limited, retried after Retry-After as a date", replies: replies{rateLimited(now.Add(42 * time.Second).Format(http.TimeFormat))},
			posts: 2, waits: []time.Duration{42 * time.Second}},
		{name: "rate limited with Retry-After 0, backoff", replies: replies{rateLimited("0")}, posts: 2, waits: []time.Duration{0}},
		{name: "rate limited without Retry-After, backoff", replies: replies{status(429)}, posts: 2, waits: []time.Duration{0}},
		{name: "rate limited without Retry-After again and again, backoff grows", replies: replies{status(429), status(429), status(429)},
			posts: 4, waits: []time.Duration{0, 0, 0}},
		{name: "rate limited for an hour waits five minutes", replies: replies{rateLimited("3600")}, posts: 2, waits: []time.Duration{5 * time.Minute}},
		{name: "server errors, retried with backoff", replies: replies{status(502), status(503)}, posts: 3, waits: []time.Duration{0, 0}},
		{name: "request timeout, retried", replies: replies{status(408)}, posts: 2, waits: []time.Duration{0}},
		{name: "answer lost, retried", replies: replies{hangUp}, posts: 2, waits: []time.Duration{0}},
		{name: "outage outlasts the retries", replies: outage, posts: 6, waits: []time.Duration{0, 0, 0, 0, 0}, dropped: true},
		{name: "a stuck rate limit outlasts them too", replies: replies{rateLimited("1"), rateLimited("1"), rateLimited("1"), rateLimited("1"), rateLimited("1"), rateLimited("1")},
			posts: 6, waits: []time.Duration{time.Second, time.Second, time.Second, time.Second, time.Second}, dropped: true},
		{name: "refused is not retried", replies: replies{status(400)}, posts: 1, dropped: true},
		{name: "unauthorized is not retried", replies: replies{status(401)}, posts: 1, dropped: true},
		{name: "a redirect is not followed nor retried", replies: replies{redirect}, posts: 1, dropped: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, tt.replies...)
			clock := &testkit.Instant{}
			err := newSender(rc.URL, clock, io.Discard).Send(t.Context(), kill)
			if (err != nil) != tt.dropped {
				t.Fatalf("Send = %v, want dropped %v", err, tt.dropped)
			}
			got := rc.Got()
			if len(got) != tt.posts {
				t.Fatalf("%d posts, want %d", len(got), tt.posts)
			}
			for i, r := range got {
				if r.contentType != ContentType || r.event["id"] != "id-kill" || r.event["type"] != TypeKill || r.event["specversion"] != "1.0" {
					t.Errorf("post %d: Content-Type %q, event %v; want %s and the same event each time", i, r.contentType, r.event, ContentType)
				}
			}
			waits := clock.Waits()
			if len(waits) != len(tt.waits) {
				t.Fatalf("waited %v, want %d waits", waits, len(tt.waits))
			}
			for i, w := range tt.waits {
				if w != 0 && waits[i] != w {
					t.Errorf("wait %d = %v, want %v", i, waits[i], w)
				}
				if w == 0 && (waits[i] < 900*time.Millisecond || waits[i] > time.Minute) {
					t.Errorf("backoff wait %d = %v, want between 0.9s and 1m", i, waits[i])
				}
			}
			if len(waits) > 2 && tt.waits[0] == 0 && tt.waits[1] == 0 && waits[1] <= waits[0] {
				t.Errorf("backoff does not grow: %v", waits)
			}
		})
	}
}

// TestAuthorizationFromFile: the header is the file's content, trimmed, read again before each
// send, so that a Secret rotated in place is used from the next event on; a file that cannot
// be read is retried, never sent without it.
func TestAuthorizationFromFile(t *testing.T) {
	rc := newReceiver(t)
	path := filepath.Join(t.TempDir(), "authorization")
	write := func(v string) {
		if err := os.WriteFile(path, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("Bearer first-token\n")
	clock := &testkit.Instant{}
	s := newSender(rc.URL, clock, io.Discard)
	s.Auth = AuthFile(path)
	if err := s.Send(t.Context(), kill); err != nil {
		t.Fatal(err)
	}
	write("Bearer rotated-token")
	if err := s.Send(t.Context(), kill); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	err := s.Send(t.Context(), kill)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Send without the file = %v, want it not found", err)
	}
	got := rc.Got()
	if len(got) != 2 || got[0].auth != "Bearer first-token" || got[1].auth != "Bearer rotated-token" {
		t.Errorf("posts %+v, want two, with the first token then the rotated one, and none without the file", got)
	}
	if n := len(clock.Waits()); n != 5 {
		t.Errorf("%d retries without the file, want 5 (it may be mid-rotation)", n)
	}
}

// TestReadAuth: the file's whole content, trimmed, one line of text, or why not.
func TestReadAuth(t *testing.T) {
	tests := []struct {
		name, content string
		want          string // "" for an error
		wantErr       string
	}{
		{name: "bearer", content: "Bearer abc.def", want: "Bearer abc.def"},
		{name: "from-file newline trimmed", content: "  Bearer abc\r\n", want: "Bearer abc"},
		{name: "basic", content: "Basic dXNlcjpwYXNz", want: "Basic dXNlcjpwYXNz"},
		{name: "empty", content: "", wantErr: "is empty"},
		{name: "blank", content: " \n\t", wantErr: "is empty"},
		{name: "two lines", content: "Bearer a\nX-Injected: 1", wantErr: "line break"},
		{name: "a control character", content: "Bearer a\x00b", wantErr: "control character"},
		{name: "as long as it may be", content: "Bearer " + strings.Repeat("a", maxAuth-len("Bearer ")), want: "Bearer " + strings.Repeat("a", maxAuth-len("Bearer "))},
		{name: "a byte too long", content: "Bearer " + strings.Repeat("a", maxAuth-len("Bearer ")+1), wantErr: "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "auth")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadAuth(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ReadAuth = %q, %v; want an error saying %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ReadAuth = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		if _, err := ReadAuth(filepath.Join(t.TempDir(), "none")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ReadAuth of no file = %v, want not found", err)
		}
	})
}

// TestRunCountsEveryDrop: an event refused, or not taken through every retry, is logged and
// counted (macaque_webhook_events_dropped_total); one the shutdown's grace left no time for
// is counted as left at shutdown (macaque_reports_dropped_total); the others still get out.
func TestRunCountsEveryDrop(t *testing.T) {
	rc := newReceiver(t, status(400)) // the first refused
	var d drops
	var logs testkit.SyncBuffer
	s := newSender(rc.URL, &testkit.Instant{}, &logs)
	s.Metrics = &d
	events := make(chan Event, 3)
	for _, id := range []string{"a", "b", "c"} {
		e := kill
		e.ID = id
		events <- e
	}
	close(events)
	done := make(chan struct{})
	go func() { s.Run(t.Context(), events, time.Second); close(done) }()
	testkit.Recv(t, done, "the sender to send every event")
	if got := len(rc.Got()); got != 3 || d.refused.Load() != 1 || d.atShutdown.Load() != 0 {
		t.Errorf("%d posts, %d refused, %d at shutdown; want 3, 1, 0", got, d.refused.Load(), d.atShutdown.Load())
	}
	if !strings.Contains(logs.String(), `msg="webhook event dropped" type=dev.macaque.kill source=/macaque/clusters/prod-eu/namespaces/shop subject=web-1 id=a dropped_total=1`) {
		t.Errorf("log:\n%s\nwant the refused event logged as dropped, with its id", logs.String())
	}

	t.Run("left at shutdown", func(t *testing.T) {
		arrived, hung := make(chan struct{}), make(chan struct{})
		rc := newReceiver(t, func(http.ResponseWriter) { close(arrived); <-hung })
		defer close(hung) // before the receiver's Close, which waits for the held request
		var d drops
		s := newSender(rc.URL, &testkit.Instant{}, io.Discard)
		s.Metrics = &d
		graceOver := make(chan time.Time)
		s.After = func(time.Duration) <-chan time.Time { return graceOver }
		events := make(chan Event, 3)
		for range 3 {
			events <- kill
		}
		close(events)
		ctx, cancel := context.WithCancel(t.Context())
		cancel() // SIGTERM: the grace starts
		done := make(chan struct{})
		go func() { s.Run(ctx, events, time.Minute); close(done) }()
		testkit.Recv(t, arrived, "the first event to be attempted")
		close(graceOver)
		testkit.Recv(t, done, "the sender to return once the grace was over")
		if d.refused.Load() != 1 || d.atShutdown.Load() != 2 {
			t.Errorf("%d given up, %d left at shutdown; want the one in flight given up and the other 2 left", d.refused.Load(), d.atShutdown.Load())
		}
	})
}

// TestRunNeverHoldsItsFeeder: with the receiver hanging, whoever feeds the sender (the
// notifier's intake, on a channel of a few slots) never waits: many times the channel's room
// are taken at once, then all are delivered, in order, once the receiver answers.
func TestRunNeverHoldsItsFeeder(t *testing.T) {
	const count = 200
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	rc := newReceiver(t, func(w http.ResponseWriter) { <-release; w.WriteHeader(http.StatusAccepted) })
	t.Cleanup(free)
	s := newSender(rc.URL, &testkit.Instant{}, io.Discard)
	events := make(chan Event, 4)
	done := make(chan struct{})
	go func() { s.Run(t.Context(), events, time.Second); close(done) }()
	fed := make(chan struct{})
	go func() {
		for i := range count {
			e := kill
			e.ID = string(rune('A'+i%26)) + strings.Repeat("x", i/26)
			events <- e
		}
		close(events)
		close(fed)
	}()
	testkit.Recv(t, fed, "every event to be taken while the receiver hangs")
	free()
	testkit.Recv(t, done, "every event to be delivered once the receiver answers")
	got := rc.Got()
	if len(got) != count {
		t.Fatalf("%d delivered, want %d", len(got), count)
	}
	for i, r := range got {
		if want := string(rune('A'+i%26)) + strings.Repeat("x", i/26); r.event["id"] != want {
			t.Fatalf("event %d has id %v, want %s: out of order", i, r.event["id"], want)
		}
	}
}
