package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"k8s.io/apimachinery/pkg/util/wait"
)

// slackPoster is the one Slack Web API call macaque makes; *slack.Client implements it.
type slackPoster interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
}

// Notifier reports each Result to Slack, or only logs it when Slack is not configured.
// It runs in its own goroutine so that a slow or failing Slack never delays a kill.
type Notifier struct {
	slack   slackPoster // nil: log only
	channel string
	after   func(time.Duration) <-chan time.Time // the clock's timer, injected so tests never sleep
	backoff wait.Backoff                         // retry delays for failures that say nothing of when to retry
	log     *slog.Logger
}

// newSlackPoster builds the Slack client for s, or returns nil when Slack is not configured.
func newSlackPoster(s slackSettings) slackPoster {
	if s.token == "" {
		return nil
	}
	// slack-go's own retries sleep on wall time; Notifier.post retries with the injected clock instead.
	return slack.New(s.token, slack.OptionAPIURL(s.apiURL), slack.OptionHTTPClient(&http.Client{Timeout: 10 * time.Second}))
}

// defaultBackoff spaces retries of failed posts: 1s, 2s, 4s, 8s, 16s, then the report is dropped.
var defaultBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5, Cap: time.Minute}

// run posts every result until results is closed. Once ctx is done it keeps going for at most
// grace, so the report of an in-flight kill still gets out on SIGTERM.
func (n *Notifier) run(ctx context.Context, results <-chan Result, grace time.Duration) {
	postCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		select {
		case <-n.after(grace):
			cancel()
		case <-postCtx.Done():
		}
	})
	defer stop()

	dropped := 0
	for r := range results {
		if n.slack == nil {
			continue // the killer has logged it already
		}
		if err := n.post(postCtx, r); err != nil {
			dropped++
			n.log.Error("slack report dropped", "namespace", r.Namespace, "pod", r.Pod, "outcome", r.Outcome, "dropped_total", dropped, "err", err)
		}
	}
}

// post sends one report, retrying rate limits after the Retry-After Slack asked for and
// transient failures with backoff. Errors Slack gives a reason for (bad token, unknown channel)
// are not retried: retrying cannot fix them.
func (n *Notifier) post(ctx context.Context, r Result) error {
	b := n.backoff
	text := message(r)
	for {
		_, _, err := n.slack.PostMessageContext(ctx, n.channel, slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl())
		if err == nil {
			return nil
		}
		delay, retry := retryDelay(err, &b)
		if !retry || ctx.Err() != nil {
			return fmt.Errorf("post to slack channel %q: %w", n.channel, err)
		}
		n.log.Warn("slack post failed, will retry", "pod", r.Pod, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("post to slack channel %q: gave up at shutdown: %w", n.channel, err)
		case <-n.after(delay):
		}
	}
}

// retryDelay says whether err is worth another try and after how long; b counts the tries left.
func retryDelay(err error, b *wait.Backoff) (time.Duration, bool) {
	if b.Steps <= 0 {
		return 0, false
	}
	var limited *slack.RateLimitedError
	var slackErr slack.SlackErrorResponse
	var status slack.StatusCodeError
	switch {
	case errors.As(err, &limited):
		b.Step() // a rate limit spends a try too, so a stuck limit cannot hold a report forever
		return max(limited.RetryAfter, time.Second), true
	case errors.As(err, &slackErr):
		return 0, false
	case errors.As(err, &status) && !status.Retryable():
		return 0, false
	default: // 5xx, connection refused, timeouts
		return b.Step(), true
	}
}

// message renders r for humans; it never claims a kill that did not happen.
func message(r Result) string {
	scope := fmt.Sprintf("namespace `%s`", r.Namespace)
	if r.Selector != "" {
		scope += fmt.Sprintf(" matching `%s`", r.Selector)
	}
	pod := fmt.Sprintf("pod `%s/%s` (%s, node %s)", r.Namespace, r.Pod, orNone(r.Owner, "no owner"), orNone(r.Node, "unscheduled"))
	target := "in " + scope
	if r.Pod != "" {
		target = pod
	}
	var text string
	switch r.Outcome {
	case OutcomeKilled:
		text = fmt.Sprintf(":monkey_face: killed %s, 1 of %d candidates in %s.", pod, r.Candidates, scope)
	case OutcomeDryRun:
		text = fmt.Sprintf(":see_no_evil: dry run: would have killed %s, 1 of %d candidates in %s.", pod, r.Candidates, scope)
	case OutcomeNoCandidates:
		text = fmt.Sprintf(":zzz: no Running pod to kill in %s.", scope)
	case OutcomeNotFound:
		text = fmt.Sprintf(":ghost: picked %s but it was gone before it could be deleted; nothing was killed.", pod)
	case OutcomeForbidden:
		text = fmt.Sprintf(":no_entry: forbidden to kill %s; nothing was killed. Check macaque's Role.", target)
	default:
		text = fmt.Sprintf(":warning: failed to kill %s; nothing was killed.", target)
	}
	if r.Err != nil {
		text += "\n> " + strings.ReplaceAll(r.Err.Error(), "\n", " ")
	}
	return text
}

// orNone returns s, or fallback when s is empty.
func orNone(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}
