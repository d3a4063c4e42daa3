package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/queue"
	"k8s.io/apimachinery/pkg/util/wait"
)

// Doer sends one HTTP request; *http.Client implements it.
type Doer interface {
	Do(req *http.Request) (*http.Response, error)
}

// Observer counts the events dropped; the metrics implement it.
type Observer interface {
	// WebhookDropped records an event the receiver refused, or did not take through every retry.
	WebhookDropped()
	// ReportDropped records an event left unsent when the shutdown grace ran out.
	ReportDropped()
}

// Sender POSTs events to one receiver, in the order they come, each retried until the
// receiver takes it or refuses it, or its retries run out.
type Sender struct {
	URL string
	// Auth is the Authorization header's value, read before each attempt (MACAQUE_WEBHOOK_AUTH_FILE,
	// which a rotated Secret updates in place); nil: no header.
	Auth    func() (string, error)
	Client  Doer
	After   func(time.Duration) <-chan time.Time // the clock's timer, injected so tests never sleep
	Now     func() time.Time                     // reads a Retry-After given as a date
	Backoff wait.Backoff                         // retry delays for failures that say nothing of when to retry
	Log     *slog.Logger
	Metrics Observer // nil: none
	dropped int      // events given up on so far, for the log; only Run's goroutine uses it
}

// RequestTimeout bounds one POST, so a receiver that hangs costs a retry, not the event.
const RequestTimeout = 10 * time.Second

// Client is the HTTP client a Sender is meant to have: bounded per request, and never
// following a redirect, which would carry the Authorization header, and the event, where
// MACAQUE_WEBHOOK_URL does not say (a 3xx is a refusal: the URL is to be fixed).
func Client() *http.Client {
	return &http.Client{Timeout: RequestTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Run sends every event of events until it is closed. Its intake takes each at once into a
// queue without bound, so whoever sends on events never waits on the receiver. Once ctx is
// done it keeps sending for at most grace, so the events of a kill in flight at SIGTERM still
// get out; what is left then is logged and counted as dropped.
func (s *Sender) Run(ctx context.Context, events <-chan Event, grace time.Duration) {
	sendCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-s.After(grace):
			cancel()
		case <-sendCtx.Done():
		}
	})
	defer stop()
	waiting := queue.New[Event]()
	go func() {
		defer waiting.Close()
		for e := range events {
			waiting.Push(e)
		}
	}()
	for {
		e, ok := waiting.Pop()
		if !ok {
			return
		}
		if sendCtx.Err() != nil {
			s.drop(e, true, fmt.Errorf("not sent: the shutdown grace ran out: %w", sendCtx.Err()))
			continue
		}
		if err := s.Send(sendCtx, e); err != nil {
			s.drop(e, false, err)
		}
	}
}

// drop logs and counts e as not delivered: left unsent at shutdown, or given up on.
func (s *Sender) drop(e Event, atShutdown bool, err error) {
	s.dropped++
	if s.Metrics != nil {
		if atShutdown {
			s.Metrics.ReportDropped()
		} else {
			s.Metrics.WebhookDropped()
		}
	}
	s.Log.Error("webhook event dropped", "type", e.Type, "source", e.Source, "subject", e.Subject, "id", e.ID,
		"dropped_total", s.dropped, "err", err)
}

// Send POSTs e, retrying a 429 after the Retry-After the receiver asked for (a second at
// least) and a failure that may pass (no connection, a timeout, a 408 or 5xx, the auth file
// unreadable) with backoff. Any other answer (a 4xx, a redirect) is not retried: sending it
// again would get the same.
func (s *Sender) Send(ctx context.Context, e Event) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode the event: %w", err)
	}
	b := s.Backoff
	for {
		err := s.attempt(ctx, body)
		if err == nil {
			return nil
		}
		delay, retry := s.retryDelay(err, &b)
		if !retry || ctx.Err() != nil {
			return err
		}
		s.Log.Warn("webhook post failed, will retry", "type", e.Type, "subject", e.Subject, "id", e.ID, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("gave up at shutdown: %w", err)
		case <-s.After(delay):
		}
	}
}

// StatusError is a receiver's answer that is not a 2xx.
type StatusError struct {
	Code int
	// RetryAfter is what a 429 asked to wait (its Retry-After); zero when it did not say.
	RetryAfter time.Duration
	Body       string // the start of the answer, for the log
}

// Error says the status and what the receiver said.
func (e *StatusError) Error() string {
	return fmt.Sprintf("the receiver answered %d %s: %q", e.Code, http.StatusText(e.Code), e.Body)
}

// authError is an Authorization header that could not be read: the file may be mid-rotation.
type authError struct{ err error }

func (e *authError) Error() string { return "read the Authorization header: " + e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// maxBody bounds what is read of an answer: enough for a reason, never a whole page.
const maxBody = 512

// attempt POSTs body once.
func (s *Sender) attempt(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build the request: %w", err)
	}
	req.Header.Set("Content-Type", ContentType)
	if s.Auth != nil {
		auth, err := s.Auth()
		if err != nil {
			return &authError{err}
		}
		req.Header.Set("Authorization", auth)
	}
	resp, err := s.Client.Do(req)
	if err != nil {
		return fmt.Errorf("post to the webhook: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // so the connection is reused
	if resp.StatusCode/100 == 2 {
		return nil
	}
	return &StatusError{Code: resp.StatusCode, RetryAfter: s.retryAfter(resp.Header.Get("Retry-After")),
		Body: strings.TrimSpace(string(answer))}
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; zero when absent or unreadable.
func (s *Sender) retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(0, at.Sub(s.Now()))
	}
	return 0
}

// maxRetryAfter bounds how long a Retry-After may hold the queue: longer, and the events
// behind it would be stale by the time they go.
const maxRetryAfter = 5 * time.Minute

// retryDelay says whether err is worth another try and after how long; b counts the tries left.
func (s *Sender) retryDelay(err error, b *wait.Backoff) (time.Duration, bool) {
	if b.Steps <= 0 {
		return 0, false
	}
	var status *StatusError
	if !errors.As(err, &status) {
		return b.Step(), true // no connection, a timeout, the auth file unreadable
	}
	if status.Code == http.StatusTooManyRequests && status.RetryAfter > 0 {
		b.Step() // a rate limit spends a try too, so a stuck limit cannot hold the queue forever
		return min(max(status.RetryAfter, time.Second), maxRetryAfter), true
	}
	if status.Code == http.StatusTooManyRequests || status.Code == http.StatusRequestTimeout || status.Code >= 500 {
		return b.Step(), true
	}
	return 0, false
}
