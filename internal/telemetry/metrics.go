package telemetry

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Prometheus metrics. Every goroutine records what it alone knows, so data still flows one way:
// the scheduler its ticks, the killer each report where it logs it, the notifier its drops, and
// later the recovery verdicts their durations. Labels are namespace and outcome (or stage) only:
// never a pod, so the number of series stays bounded by the namespaces in scope; and, since with
// MACAQUE_NAMESPACE=* those come and go (preview environments), a namespace's series are dropped
// once it has not been used for namespaceTTL, unless the scope names it.

// Metrics holds macaque's collectors, registered on a registry of its own that NewMetrics makes
// (never the global default one, which is package-level state). A nil *Metrics records nothing,
// so that a goroutine built without it (in tests) needs no stub.
type Metrics struct {
	registry    *prometheus.Registry
	ticks       prometheus.Counter
	kills       *prometheus.CounterVec
	lastKill    *prometheus.GaugeVec
	candidates  prometheus.Gauge
	recovery    *prometheus.HistogramVec
	unrecovered *prometheus.CounterVec
	slackDrops  prometheus.Counter
	hookDrops   prometheus.Counter
	reportDrops prometheus.Counter
	lastSuccess prometheus.Gauge
	lastTick    prometheus.Gauge
	nextTick    prometheus.Gauge
	leader      prometheus.Gauge
	gated       *prometheus.CounterVec

	// mu orders each use of a namespace's series against their deletion, so that a series
	// is never dropped as it is used, and guards the fields below.
	mu     sync.Mutex
	fixed  map[string]bool      // the namespaces the scope names: their series are never dropped
	seen   map[string]time.Time // when each other namespace's series were last used, in tick time
	latest time.Time            // the latest tick time known, to date a recovery verdict's use
}

// namespaceTTL is how long a namespace's series outlive their last use: a namespace unseen for
// that long has most likely gone, and its series would stay in memory and every scrape forever.
// It is no shorter than the longest MACAQUE_RECOVERY_TIMEOUT macaque accepts (24h, the root's
// maxRecoveryTimeout), so a kill's verdict finds its namespace's series still there.
const namespaceTTL = 24 * time.Hour

// Stage is a milestone of a workload's recovery after a kill, as the label stage names it.
type Stage string

// The stages of macaque_recovery_seconds, in the order a recovery reaches them.
const (
	StageCreated      Stage = "created"       // a replacement pod exists
	StageReady        Stage = "ready"         // the replacement is Ready
	StageFullStrength Stage = "full_strength" // the controller reports every desired replica ready
)

// GatedReason is why the alert gate held a tick, as the label reason names it.
type GatedReason string

// The reasons of macaque_ticks_gated_total.
const (
	GatedAlert             GatedReason = "alert"              // alerts held the whole tick: nothing was listed
	GatedNamespaceAlert    GatedReason = "namespace_alert"    // alerts held some namespaces in scope: their pods were passed over
	GatedAlertmanagerError GatedReason = "alertmanager_error" // Alertmanager could not be asked (unreachable, timeout, non-2xx, bad JSON): nothing was killed
)

// newGated is macaque_ticks_gated_total, each reason's series at 0 from the start, so that an
// alert on its increase sees the first.
func newGated() *prometheus.CounterVec {
	gated := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "macaque_ticks_gated_total",
		Help: "Ticks the alert gate (MACAQUE_ALERTMANAGER_URL) held, by reason: alert (blocking alerts held the whole tick), namespace_alert (they held some namespaces in scope, whose pods were passed over), alertmanager_error (Alertmanager could not be asked: nothing was killed).",
	}, []string{"reason"})
	for _, reason := range []GatedReason{GatedAlert, GatedNamespaceAlert, GatedAlertmanagerError} {
		gated.WithLabelValues(string(reason))
	}
	return gated
}

// recoveryBuckets span a replacement created in a fraction of a second to a workload back after
// the default recovery timeout (5m) and beyond.
var recoveryBuckets = []float64{0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600}

// NewMetrics makes the registry with macaque's metrics and the Go and process collectors.
// namespaces are the named namespaces in scope: their macaque_unrecovered_total series start
// at 0, so an alert on its increase sees the first verdict too.
func NewMetrics(namespaces []string) *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry(), fixed: map[string]bool{}, seen: map[string]time.Time{}}
	m.defineTicks()
	m.defineAfterKills()
	m.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.ticks, m.kills, m.lastKill, m.candidates, m.recovery, m.unrecovered, m.slackDrops, m.hookDrops, m.reportDrops, m.lastSuccess, m.lastTick, m.nextTick, m.leader, m.gated)
	for _, ns := range namespaces {
		m.fixed[ns] = true
		m.unrecovered.WithLabelValues(ns)
	}
	return m
}

// defineTicks makes the metrics of the scheduler's and the killer's ticks.
func (m *Metrics) defineTicks() {
	m.gated = newGated()
	m.ticks = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "macaque_ticks_total",
		Help: "Ticks the killer ran (a tick skipped because the previous kill was still running is not one).",
	})
	m.kills = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "macaque_kills_total",
		Help: "Reports of ticks by outcome, one per victim (a tick with no victim has one): namespace is the victim's, or for a tick with no victim the scope's when it has exactly one namespace, else empty.",
	}, []string{"namespace", "outcome"})
	m.lastKill = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "macaque_last_kill_timestamp_seconds",
		Help: "When the API server last accepted a kill (a deletion or eviction) in namespace, by macaque's clock; the dashboard's kill annotations are placed at it.",
	}, []string{"namespace"})
	m.candidates = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "macaque_candidates",
		Help: "Running pods in scope at the last tick that listed them.",
	})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "macaque_last_successful_tick_timestamp_seconds",
		Help: "Scheduled time of the last tick whose every report had a successful outcome (killed, dry-run, no candidates, not found, skipped, blocked, paused; not error, forbidden, denied or unknown).",
	})
	m.lastTick = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "macaque_last_tick_timestamp_seconds",
		Help: "Scheduled time of the last tick the scheduler handed to the killer; above macaque_last_successful_tick_timestamp_seconds while that tick runs, and after it failed.",
	})
	m.nextTick = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "macaque_next_tick_timestamp_seconds",
		Help: "Scheduled time of the next tick (0: none to come); long in the past means the scheduler has stalled.",
	})
}

// defineAfterKills makes the metrics of what follows the kills: verdicts, reports, the election.
func (m *Metrics) defineAfterKills() {
	m.recovery = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "macaque_recovery_seconds",
		Help:    "Seconds from the API server accepting a kill to each stage of the workload's recovery: created (a replacement pod exists), ready (it is Ready), full_strength (its controller has every desired replica ready).",
		Buckets: recoveryBuckets,
	}, []string{"namespace", "stage"})
	m.unrecovered = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "macaque_unrecovered_total",
		Help: "Kills whose workload was not back at full strength within MACAQUE_RECOVERY_TIMEOUT.",
	}, []string{"namespace"})
	m.slackDrops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "macaque_slack_messages_dropped_total",
		Help: "Reports the notifier gave up posting to Slack: Slack refused them, or was unreachable through every retry.",
	})
	m.hookDrops = newWebhookDrops()
	m.reportDrops = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "macaque_reports_dropped_total",
		Help: "Reports and verdicts left unposted at shutdown, the notifier or the webhook sender being behind (Slack or the receiver slow or rate limiting): logged, never posted.",
	})
	m.leader = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "macaque_leader",
		Help: "1 while this replica holds the Lease macaque-leader and kills (always, with MACAQUE_LEADER_ELECTION=false); 0 while it is a standby.",
	})
}

// use records with record, under mu, a use at tick time at of namespace's series; a zero at
// (a recovery verdict, which comes after its kill's tick) dates it to the latest tick.
func (m *Metrics) use(namespace string, at time.Time, record func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if at.After(m.latest) {
		m.latest = at
	}
	if at.IsZero() {
		at = m.latest
	}
	if last, ok := m.seen[namespace]; !m.fixed[namespace] && (!ok || at.After(last)) {
		m.seen[namespace] = at
	}
	record()
}

// forget drops the series of every namespace, but those the scope names, not used for
// namespaceTTL at tick time now.
func (m *Metrics) forget(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.After(m.latest) {
		m.latest = now
	}
	for ns, last := range m.seen {
		if now.Sub(last) < namespaceTTL {
			continue
		}
		delete(m.seen, ns)
		labels := prometheus.Labels{"namespace": ns}
		m.kills.DeletePartialMatch(labels)
		m.lastKill.DeletePartialMatch(labels)
		m.recovery.DeletePartialMatch(labels)
		m.unrecovered.DeletePartialMatch(labels)
	}
}

// seconds is t as a Prometheus timestamp gauge holds it.
func seconds(t time.Time) float64 {
	return float64(t.UnixNano()) / 1e9
}

// Scheduled records, from the scheduler, the tick it handed to the killer.
func (m *Metrics) Scheduled(at time.Time) {
	if m == nil {
		return
	}
	m.lastTick.Set(seconds(at))
}

// Upcoming records, from the scheduler, the next tick it waits for; zero: none.
func (m *Metrics) Upcoming(next time.Time) {
	if m == nil {
		return
	}
	if next.IsZero() {
		m.nextTick.Set(0)
		return
	}
	m.nextTick.Set(seconds(next))
}

// Listed records, from the killer, how many candidates a tick's list found.
func (m *Metrics) Listed(n int) {
	if m == nil {
		return
	}
	m.candidates.Set(float64(n))
}

// Reported records, from the killer, one report of the tick at: its namespace and outcome.
func (m *Metrics) Reported(at time.Time, namespace, outcome string) {
	if m == nil {
		return
	}
	m.use(namespace, at, func() { m.kills.WithLabelValues(namespace, outcome).Inc() })
}

// Killed records, from the killer, a kill in namespace that the API server accepted at deleted,
// in the tick at. Only the time is kept, not a count: macaque_kills_total counts; this places
// each kill on a dashboard's time axis exactly, even the first kill in a namespace, whose counter
// series is born at 1 and so never shows an increase.
func (m *Metrics) Killed(at time.Time, namespace string, deleted time.Time) {
	if m == nil {
		return
	}
	m.use(namespace, at, func() { m.lastKill.WithLabelValues(namespace).Set(seconds(deleted)) })
}

// Ticked records, from the killer, a tick it ran and whether it succeeded (the killer judges
// that from its outcomes: telemetry only counts). It drops the series of the namespaces not
// used for namespaceTTL.
func (m *Metrics) Ticked(at time.Time, succeeded bool) {
	if m == nil {
		return
	}
	m.ticks.Inc()
	m.forget(at)
	if succeeded {
		m.lastSuccess.Set(seconds(at))
	}
}

// Leading records, from the election, whether this replica leads.
func (m *Metrics) Leading(leading bool) {
	if m == nil {
		return
	}
	m.leader.Set(map[bool]float64{true: 1}[leading])
}

// Gated records, from the killer, a tick the alert gate held, and why.
func (m *Metrics) Gated(reason GatedReason) {
	if m == nil {
		return
	}
	m.gated.WithLabelValues(string(reason)).Inc()
}

// ReportDropped records, from the notifier, a message it had no time left to try at shutdown.
func (m *Metrics) ReportDropped() {
	if m == nil {
		return
	}
	m.reportDrops.Inc()
}

// SlackDropped records, from the notifier, a report it gave up posting.
func (m *Metrics) SlackDropped() {
	if m == nil {
		return
	}
	m.slackDrops.Inc()
}

// newWebhookDrops is macaque_webhook_events_dropped_total, Slack's drops' sibling for the
// webhook (outside NewMetrics, which would otherwise outgrow funlen).
func newWebhookDrops() prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{
		Name: "macaque_webhook_events_dropped_total",
		Help: "Reports and verdicts the webhook sender gave up posting to MACAQUE_WEBHOOK_URL: the receiver refused them, or was unreachable through every retry.",
	})
}

// WebhookDropped records, from the webhook sender, an event it gave up posting.
func (m *Metrics) WebhookDropped() {
	if m == nil {
		return
	}
	m.hookDrops.Inc()
}

// Recovered records, from a recovery verdict, how long the workload of a kill in namespace took
// to reach stage. A verdict calls it once per stage it saw reached.
func (m *Metrics) Recovered(namespace string, stage Stage, took time.Duration) {
	if m == nil {
		return
	}
	m.use(namespace, time.Time{}, func() { m.recovery.WithLabelValues(namespace, string(stage)).Observe(took.Seconds()) })
}

// NotRecovered records, from a recovery verdict, a kill in namespace whose workload was not back
// at full strength in time.
func (m *Metrics) NotRecovered(namespace string) {
	if m == nil {
		return
	}
	m.use(namespace, time.Time{}, func() { m.unrecovered.WithLabelValues(namespace).Inc() })
}
