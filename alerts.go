package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/alerts"
	"github.com/macaque-chaos/macaque/internal/policy"
	"github.com/macaque-chaos/macaque/internal/telemetry"
)

// The alert gate's settings, start-up check and place in a tick (internal/policy's AlertGate
// holds the kills; internal/alerts asks Alertmanager).

// alertSettings say which Alertmanager to ask and which of its alerts hold the kills; a nil
// url is no gate.
type alertSettings struct {
	url      *url.URL
	matchers alerts.Matchers
}

// checkAlerts reads the alert gate: Alertmanager's URL and the matchers of the blocking alerts,
// which must parse even without a URL, so that a typo is caught before the gate is turned on.
func (c Config) checkAlerts(s *settings) error {
	raw := strings.TrimSpace(c.AlertmanagerURL)
	m, err := alerts.ParseMatchers(c.BlockingAlerts)
	if err != nil && (raw != "" || strings.TrimSpace(c.BlockingAlerts) != "") {
		return badSetting("BLOCKING_ALERTS", "%v", err)
	}
	if raw == "" {
		return nil
	}
	u, err := alerts.ParseURL(raw)
	if err != nil {
		return badSetting("ALERTMANAGER_URL", "%v", err)
	}
	if _, hasPassword := u.User.Password(); hasPassword && u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return badSetting("ALERTMANAGER_URL", "%q would send its password in clear text: use https, or http only to loopback", u.Redacted())
	}
	s.alerts = alertSettings{url: u, matchers: m}
	return nil
}

// alertCheckTimeout bounds the start-up question to Alertmanager.
const alertCheckTimeout = alerts.DefaultTimeout

// startAlertGate builds the gate and asks Alertmanager once. An answer that no retry will
// change (a 4xx, or a 2xx that is no list of alerts: the URL is not Alertmanager's v2 API)
// stops macaque with exit 2, naming MACAQUE_ALERTMANAGER_URL. An Alertmanager that cannot be
// reached or fails (it may start after macaque, or be restarting) only warns: every tick asks it
// again, and kills nothing until it answers, so starting costs no safety and a crash loop
// would add nothing. Nil: no gate.
func startAlertGate(ctx context.Context, s alertSettings, log *slog.Logger) (*policy.AlertGate, error) {
	if s.url == nil {
		return nil, nil
	}
	client := alerts.NewClient(s.url, s.matchers, alerts.DefaultTimeout, nil, time.Now)
	checkCtx, cancel := context.WithTimeout(ctx, alertCheckTimeout)
	defer cancel()
	gate := &policy.AlertGate{Source: client}
	firing, err := client.Firing(checkCtx)
	if err == nil {
		log.Info("alertmanager answered: its blocking alerts hold the kills", "alertmanager", client.Where(),
			"blocking_alerts", s.matchers.String(), "firing", len(firing))
		return gate, nil
	}
	if alerts.Refuses(err) {
		return nil, badSetting("ALERTMANAGER_URL", "not Alertmanager's v2 API: %v", err)
	}
	if ctx.Err() == nil { // after SIGTERM during the check there is nothing to warn about
		log.Warn("alertmanager unreachable at start; starting anyway, and no tick kills until it answers",
			"alertmanager", client.Where(), "err", err)
	}
	return gate, nil
}

// askAlerts asks the gate at the start of a tick whose report so far is r. It returns the rule
// that passes over the pods of the namespaces alerts hold (nil: none), or instead the tick's one
// report when it ends there: held whole (skipped, naming the alerts), or Alertmanager could not
// be asked (error: nothing is killed while it cannot say).
func (k *Killer) askAlerts(ctx context.Context, r Result) (policy.Rule, []Result) {
	hold, err := k.alerts.ForTick(ctx)
	if err != nil {
		k.metrics.Gated(telemetry.GatedAlertmanagerError)
		return nil, []Result{k.report(r, err)}
	}
	whole, rule := hold.For(k.scope.namespaces, k.scope.all)
	if whole != "" {
		k.metrics.Gated(telemetry.GatedAlert)
		r.Outcome, r.Note, r.Gated = OutcomeSkipped, fmt.Sprintf("held by the alert gate: %s", whole), true
		return nil, []Result{k.report(r, nil)}
	}
	if rule != nil {
		k.metrics.Gated(telemetry.GatedNamespaceAlert)
	}
	return rule, nil
}
