package main

import (
	"log/slog"
	"time"

	"github.com/macaque-chaos/macaque/internal/recovery"
	"github.com/macaque-chaos/macaque/internal/telemetry"
	"github.com/macaque-chaos/macaque/internal/webhook"
)

// webhookFeed turns what the notifier takes in, each tick's reports and each verdict, into
// CloudEvents for the webhook sender, which it hands them to on out. The sender's intake
// empties out at once into its queue, so the notifier's intake never waits on the receiver.
// A nil *webhookFeed sends nothing.
type webhookFeed struct {
	cluster string
	out     chan webhook.Event
	now     func() time.Time // an event's time, but for a kill's: when the API server accepted it
	newID   func() string
}

// newWebhook builds the feed and the sender of s's webhook, or nils when there is none.
func newWebhook(s settings, log *slog.Logger, stats *telemetry.Metrics) (*webhookFeed, *webhook.Sender) {
	if s.webhook.url == "" {
		return nil, nil
	}
	sender := &webhook.Sender{URL: s.webhook.url, Client: webhook.Client(), After: time.After, Now: time.Now,
		Backoff: defaultBackoff, Log: log, Metrics: stats}
	if s.webhook.authFile != "" {
		sender.Auth = webhook.AuthFile(s.webhook.authFile)
	}
	return &webhookFeed{cluster: s.cluster, out: make(chan webhook.Event, reportBuffer), now: time.Now, newID: webhook.NewID}, sender
}

// tick sends an event for each report of a tick but those only logged (Quiet), as Slack
// posts them: a kill for each pod killed, a tick event for every other report.
func (f *webhookFeed) tick(tick []Result) {
	if f == nil {
		return
	}
	for _, r := range tick {
		if !r.Quiet {
			f.out <- f.reportEvent(r)
		}
	}
}

// verdict sends v's event.
func (f *webhookFeed) verdict(v recovery.Verdict) {
	if f == nil {
		return
	}
	f.out <- f.verdictEvent(v)
}

// close says nothing more comes: the sender sends what it has, then returns.
func (f *webhookFeed) close() {
	if f != nil {
		close(f.out)
	}
}

// reportEvent is r as an event: dev.macaque.kill only for a kill the API server accepted (a
// receiver counting kills counts no dry run nor failure), dev.macaque.tick for any other.
func (f *webhookFeed) reportEvent(r Result) webhook.Event {
	typ, at := webhook.TypeTick, f.now()
	var deleted *time.Time
	if r.Outcome == OutcomeKilled {
		typ = webhook.TypeKill
		if !r.Deleted.IsZero() {
			at, deleted = r.Deleted, &r.Deleted
		}
	}
	var why string
	if r.Err != nil {
		why = r.Err.Error()
	}
	data := webhook.Report{
		Cluster: f.cluster, Outcome: string(r.Outcome), Mode: string(r.Mode), Scope: r.Scope, Namespace: r.Namespace,
		Selector: r.Selector, Pod: r.Pod, UID: string(r.uid), Owner: r.Owner, Node: r.Node, Candidates: r.Candidates,
		Tick: r.Time, Deleted: deleted, Note: r.Note, Passed: append([]string{}, r.Passed...), KilledBefore: r.KilledBefore,
		Resumed: r.Resumed, Error: why,
	}
	return webhook.New(f.newID(), typ, webhook.Source(f.cluster, r.Namespace), r.Pod, at, data)
}

// verdictEvent is v as an event, at the time it was given.
func (f *webhookFeed) verdictEvent(v recovery.Verdict) webhook.Event {
	seconds := func(m recovery.Milestone) *float64 {
		if !m.Reached {
			return nil
		}
		s := m.After.Seconds()
		return &s
	}
	data := webhook.Verdict{
		Cluster: f.cluster, Verdict: string(v.Status), Namespace: v.Namespace, Pod: v.Pod, UID: string(v.UID),
		Workload: v.Workload, Replacement: v.Replacement, Tick: v.Time, CreatedSeconds: seconds(v.Created),
		ReadySeconds: seconds(v.Ready), FullStrengthSeconds: seconds(v.Full), Strength: v.Strength, Through: v.Through,
		Why: v.Why, TimeoutSeconds: v.Timeout.Seconds(), Summary: v.Summary(),
	}
	return webhook.New(f.newID(), webhook.TypeVerdict, webhook.Source(f.cluster, v.Namespace), v.Pod, f.now(), data)
}
