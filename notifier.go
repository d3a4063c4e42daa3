package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/text"

	"github.com/macaque-chaos/macaque/internal/election"
	"github.com/macaque-chaos/macaque/internal/queue"
	"github.com/macaque-chaos/macaque/internal/recovery"

	"github.com/macaque-chaos/macaque/internal/telemetry"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackutilsx"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// slackAPI is the Slack Web API calls macaque makes; *slack.Client implements it.
type slackAPI interface {
	PostMessageContext(ctx context.Context, channelID string, options ...slack.MsgOption) (string, string, error)
	AuthTestContext(ctx context.Context) (*slack.AuthTestResponse, error)
}

// Notifier reports each tick to Slack, as one message however many pods it killed, and each
// kill's verdict in that message's thread; without Slack configured it only drains them. It
// runs in its own goroutine and queues what it is given, so that a slow or failing Slack never
// delays a kill.
type Notifier struct {
	slack   slackAPI // nil: log only
	channel string
	after   func(time.Duration) <-chan time.Time // the clock's timer, injected so tests never sleep
	backoff wait.Backoff                         // retry delays for failures that say nothing of when to retry
	log     *slog.Logger
	metrics *telemetry.Metrics // counts the reports dropped; nil: none
	// verdicts are the kills' recovery verdicts, each posted in the thread of its kill's
	// message; nil: none. run reads it until it is closed.
	verdicts <-chan recovery.Verdict
	// takeovers are this replica becoming the leader, each said once in the channel; nil:
	// none (one replica). run reads it until it is closed.
	takeovers <-chan election.Takeover
	threads   threads // the ts of each kill's message, for its verdict
	dropped   int     // messages given up on so far, for the log; only run's goroutine uses it
	// cluster is MACAQUE_CLUSTER_NAME, which starts every message when set.
	cluster string
	// webhook gets every tick's reports and every verdict as the intake takes them, for the
	// CloudEvents webhook; nil: none. The intake closes it when it ends.
	webhook *webhookFeed
}

// newSlackPoster builds the Slack client for s, or returns nil when Slack is not configured.
func newSlackPoster(s slackSettings) slackAPI {
	if s.token == "" {
		return nil
	}
	// slack-go's own retries sleep on wall time; Notifier.post retries with the injected clock instead.
	return slack.New(s.token, slack.OptionAPIURL(s.apiURL), slack.OptionHTTPClient(&http.Client{Timeout: slackRequestTimeout}))
}

// slackRequestTimeout bounds one call to Slack, so a hung connection costs a retry, not the report.
const slackRequestTimeout = 10 * time.Second

// slackCheckTimeout bounds the token check at start, so a Slack that never answers delays the
// first tick by seconds rather than by however long the connection hangs.
const slackCheckTimeout = 10 * time.Second

// checkSlack asks Slack whether the token is good (auth.test) before the first tick, so that a
// mistyped or revoked token stops macaque at start with one line naming the variable, instead of
// every report being dropped at run time. Only Slack's own verdict on the token is fatal. An
// unreachable Slack (no connection, timeout, 5xx, 429, or an error Slack calls transient) is
// logged loudly and survived: kills are logged whether or not Slack hears of them, reports are
// retried, a Slack outage at run time is survived too, and a chaos monkey that crash-loops
// whenever Slack has a bad hour would test nothing.
func checkSlack(ctx context.Context, api slackAPI, log *slog.Logger) error {
	checkCtx, cancel := context.WithTimeout(ctx, slackCheckTimeout)
	defer cancel()
	who, err := api.AuthTestContext(checkCtx)
	var refused slack.SlackErrorResponse
	if err == nil {
		if who != nil {
			log.Info("slack token accepted", "team", who.Team, "bot", who.User)
		}
		return nil
	}
	if errors.As(err, &refused) && !slackTransient[refused.Err] {
		return badSetting("SLACK_TOKEN", "Slack rejected the token: %s", refused.Err)
	}
	if ctx.Err() == nil { // after SIGTERM during the check there is nothing to warn about
		log.Warn("slack unreachable at start; starting anyway, reports will be retried", "err", err)
	}
	return nil
}

// slackTransient are the errors Slack may answer any Web API call with when the fault is on its
// side: they say nothing about the token.
var slackTransient = map[string]bool{
	"fatal_error": true, "internal_error": true, "service_unavailable": true,
	"request_timeout": true, "ratelimited": true, "team_added_to_org": true,
}

// defaultBackoff spaces retries of failed posts: 1s, 2s, 4s, 8s, 16s, then the report is dropped.
var defaultBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.1, Steps: 5, Cap: time.Minute}

// notice is one thing the notifier posts, in the order it must be posted: a tick's reports,
// a kill's verdict, or this replica taking the lead (exactly one of the three).
type notice struct {
	tick     []Result
	verdict  *recovery.Verdict
	takeover *election.Takeover
}

// run posts every tick's reports and every verdict until results and n.verdicts are both
// closed. Its intake takes each at once into an unbounded queue, so neither the killer nor the
// recovery goroutine ever waits on Slack, and nothing is dropped unless Slack refused it after
// its retries. Once ctx is done it keeps posting for at most grace, so the report of an
// in-flight kill still gets out on SIGTERM; what is left then is logged and counted as dropped.
func (n *Notifier) run(ctx context.Context, results <-chan []Result, grace time.Duration) {
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

	waiting := queue.New[notice]()
	go n.intake(results, waiting)
	for {
		next, ok := waiting.Pop()
		if !ok {
			return
		}
		if n.slack == nil {
			continue // the killer and the recovery goroutine have logged it already
		}
		switch {
		case next.verdict != nil:
			n.verdict(postCtx, *next.verdict)
		case next.takeover != nil:
			n.takeover(postCtx, *next.takeover)
		default:
			n.report(postCtx, next.tick)
		}
	}
}

// intake queues every tick's reports, every verdict and every takeover the moment it comes,
// then closes waiting once results, n.verdicts and n.takeovers are all closed.
func (n *Notifier) intake(results <-chan []Result, waiting *queue.Queue[notice]) {
	defer waiting.Close()
	defer n.webhook.close()
	verdicts, takeovers := n.verdicts, n.takeovers
	for results != nil || verdicts != nil || takeovers != nil {
		select {
		case tick, ok := <-results:
			results = n.takeTick(results, tick, ok, waiting)
		case v, ok := <-verdicts:
			if !ok {
				verdicts = nil
				continue
			}
			// A verdict is sent only once its tick's reports are (the recovery goroutine waits
			// for the tick to hand them on): queue any waiting first, so that the verdict finds
			// its kill's thread.
			for drained := false; !drained && results != nil; {
				select {
				case tick, ok := <-results:
					results = n.takeTick(results, tick, ok, waiting)
				default:
					drained = true
				}
			}
			waiting.Push(notice{verdict: &v})
			n.webhook.verdict(v)
		case t, ok := <-takeovers:
			if !ok {
				takeovers = nil
				continue
			}
			waiting.Push(notice{takeover: &t})
		}
	}
}

// takeTick queues a tick's reports read from results, and returns results, or nil once it is
// closed (ok false).
func (n *Notifier) takeTick(results <-chan []Result, tick []Result, ok bool, waiting *queue.Queue[notice]) <-chan []Result {
	if !ok {
		return nil
	}
	waiting.Push(notice{tick: tick})
	n.webhook.tick(tick)
	return results
}

// report posts a tick's reports, but for those only logged (Quiet), as one message (or as
// few as Slack's length limit allows), and remembers each kill's message for its verdict.
func (n *Notifier) report(ctx context.Context, tick []Result) {
	tick = slices.DeleteFunc(slices.Clone(tick), func(r Result) bool { return r.Quiet })
	for _, part := range tickMessages(tick) {
		first := part.reports[0]
		about := first.Pod
		if len(part.reports) > 1 {
			about = fmt.Sprintf("%s and %d more", first.Pod, len(part.reports)-1)
		}
		if ctx.Err() != nil {
			n.drop("slack report dropped", true, ctx.Err(), "namespace", first.Namespace, "pod", about, "outcome", first.Outcome)
			continue
		}
		ts, err := n.postText(ctx, part.text, about)
		if err != nil {
			n.drop("slack report dropped", false, err, "namespace", first.Namespace, "pod", about, "outcome", first.Outcome)
			continue
		}
		for _, r := range part.reports {
			if r.Outcome == OutcomeKilled {
				n.threads.remember(r.uid, ts)
			}
		}
	}
}

// verdict posts v in its kill's thread, or logs and counts it as dropped.
func (n *Notifier) verdict(ctx context.Context, v recovery.Verdict) {
	if ctx.Err() != nil {
		n.drop("slack verdict dropped", true, ctx.Err(), "namespace", v.Namespace, "pod", v.Pod, "verdict", v.Status)
		return
	}
	if err := n.postVerdict(ctx, v); err != nil {
		n.drop("slack verdict dropped", false, err, "namespace", v.Namespace, "pod", v.Pod, "verdict", v.Status)
	}
}

// takeover says in the channel that this replica took the lead, and from whom, or logs and
// counts it as dropped.
func (n *Notifier) takeover(ctx context.Context, t election.Takeover) {
	if ctx.Err() != nil {
		n.drop("slack takeover message dropped", true, ctx.Err(), "identity", t.Identity, "from", t.From)
		return
	}
	if _, err := n.postText(ctx, takeoverMessage(t), t.Identity); err != nil {
		n.drop("slack takeover message dropped", false, err, "identity", t.Identity, "from", t.From)
	}
}

// takeoverMessage renders a takeover for humans: who leads now, from whom, and why the other
// let go. Its first words are fixed (people and the e2e tests match on them).
func takeoverMessage(t election.Takeover) string {
	esc := slackutilsx.EscapeMessage
	var from string
	switch {
	case t.From == "":
		from = "no replica held it"
	case t.From == t.Identity:
		from = "it held it before a restart"
	case t.Expired:
		from = fmt.Sprintf("from `%s`, whose lease ran out (stopped, cut off or frozen)", esc(t.From))
	default:
		from = fmt.Sprintf("from `%s`, which released it", esc(t.From))
	}
	return fmt.Sprintf(":crown: leader: `%s` now holds the Lease %s and kills at each tick; %s (at %s).", esc(t.Identity), election.LeaseName, from,
		t.At.UTC().Format("2006-01-02 15:04:05 MST"))
}

// drop logs msg and counts a message not posted: left unposted when the shutdown grace ran out
// (at shutdown, err the posting context's end), or refused by Slack after its retries.
func (n *Notifier) drop(msg string, atShutdown bool, err error, attrs ...any) {
	n.dropped++
	if atShutdown {
		n.metrics.ReportDropped()
		err = fmt.Errorf("not posted: the shutdown grace ran out: %w", err)
	} else {
		n.metrics.SlackDropped()
	}
	n.log.Error(msg, append(attrs, "dropped_total", n.dropped, "err", err)...)
}

// maxThreads bounds the kills whose message ts the notifier remembers for their verdicts: a
// verdict comes within MACAQUE_RECOVERY_TIMEOUT, after at most this many later kills (ten
// ticks of the most victims a tick may have) unless more are killed in that time; one whose
// kill is forgotten is posted to the channel.
const maxThreads = 10 * maxVictims

// threads maps kills (by victim UID) to the ts of their Slack message, the oldest forgotten
// past maxThreads. Only the notifier goroutine uses it.
type threads struct {
	ts    map[types.UID]string
	order []types.UID
}

// remember records that the kill of uid was posted as ts.
func (t *threads) remember(uid types.UID, ts string) {
	if t.ts == nil {
		t.ts = map[types.UID]string{}
	}
	if len(t.order) == maxThreads {
		delete(t.ts, t.order[0])
		t.order = t.order[1:]
	}
	t.ts[uid] = ts
	t.order = append(t.order, uid)
}

// take returns the ts of uid's kill and forgets it: a kill has one verdict.
func (t *threads) take(uid types.UID) (string, bool) {
	ts, ok := t.ts[uid]
	if ok {
		delete(t.ts, uid)
	}
	return ts, ok
}

// postVerdict posts v as a reply in the thread of its kill's message, and a not recovered one
// to the channel as well (reply_broadcast), since an alarm must not hide in a thread. A kill
// whose message was never posted (dropped, Slack down) gets its verdict in the channel.
func (n *Notifier) postVerdict(ctx context.Context, v recovery.Verdict) error {
	var opts []slack.MsgOption
	if ts, ok := n.threads.take(v.UID); ok {
		opts = append(opts, slack.MsgOptionTS(ts))
		if v.Status == recovery.NotRecovered {
			opts = append(opts, slack.MsgOptionBroadcast())
		}
	}
	_, err := n.postText(ctx, verdictMessage(v), v.Pod, opts...)
	return err
}

// verdictMessage renders a recovery verdict for humans. Its first words are fixed per verdict
// (people and the e2e tests match on them).
func verdictMessage(v recovery.Verdict) string {
	icon := ":white_check_mark:"
	if v.Status == recovery.NotRecovered {
		icon = ":rotating_light:"
	}
	if v.Status == recovery.NotReplaced {
		icon = ":warning:"
	}
	if v.Status == recovery.Unknown {
		icon = ":grey_question:"
	}
	// Names, Events and conditions come from the cluster: escaped, as in message.
	esc := slackutilsx.EscapeMessage
	where := "`" + esc(v.Namespace+"/"+v.Pod) + "`"
	if v.Workload != "" {
		where = fmt.Sprintf("%s `%s/%s`", esc(strings.ToLower(strings.SplitN(v.Workload, "/", 2)[0])), esc(v.Namespace), esc(v.WorkloadName()))
	}
	text := fmt.Sprintf("%s %s: %s: %s.", icon, v.Status, where, esc(v.Summary()))
	if v.Status == recovery.NotRecovered {
		text += fmt.Sprintf(" (MACAQUE_RECOVERY_TIMEOUT %v)", v.Timeout)
	}
	return text + when(Result{Time: v.Time})
}

// post sends one report, retrying rate limits after the Retry-After Slack asked for and
// transient failures with backoff. Errors Slack gives a reason for (bad token, unknown channel)
// are not retried: retrying cannot fix them.
func (n *Notifier) post(ctx context.Context, r Result) error {
	_, err := n.postText(ctx, message(r), r.Pod)
	return err
}

// postText posts text as post does a report, with extra options (a thread), and returns the
// message's ts. pod names it in the log.
func (n *Notifier) postText(ctx context.Context, text, pod string, extra ...slack.MsgOption) (string, error) {
	b := n.backoff
	if n.cluster != "" { // one channel may serve several clusters: each message says whose it is
		text = "[" + slackutilsx.EscapeMessage(n.cluster) + "] " + text
	}
	for {
		opts := append([]slack.MsgOption{slack.MsgOptionText(text, false), slack.MsgOptionDisableLinkUnfurl()}, extra...)
		_, ts, err := n.slack.PostMessageContext(ctx, n.channel, opts...)
		if err == nil {
			return ts, nil
		}
		delay, retry := retryDelay(err, &b)
		if !retry || ctx.Err() != nil {
			return "", fmt.Errorf("post to slack channel %q: %w", n.channel, err)
		}
		// Once an attempt may have been posted, every later one says so, even one that follows
		// a plain rate limit: the channel could otherwise show one kill twice with nothing to
		// tell the two apart.
		if mayHavePosted(err) && !strings.HasSuffix(text, resentNote) {
			text += resentNote
		}
		n.log.Warn("slack post failed, will retry", "pod", pod, "retry_in", delay, "err", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("post to slack channel %q: gave up at shutdown: %w", n.channel, err)
		case <-n.after(delay):
		}
	}
}

// resentNote ends a report sent again after an attempt that may have reached Slack with only its
// answer lost, so that a reader who sees the report twice knows it is one event, not two.
const resentNote = "\n_(resent after a failed attempt; this may repeat an earlier message)_"

// mayHavePosted says whether a failed post may still have reached the channel. A rate limit or a
// Slack error is Slack's answer that it did not post, and a connection that was never made sent
// nothing; after a timeout, a reset or a 5xx, the request may have been acted on.
func mayHavePosted(err error) bool {
	var limited *slack.RateLimitedError
	var refused slack.SlackErrorResponse
	var status slack.StatusCodeError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	if errors.As(err, &limited) || errors.As(err, &refused) || errors.As(err, &dnsErr) {
		return false
	}
	if errors.As(err, &status) && status.Code == http.StatusTooManyRequests {
		return false
	}
	if errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return false
	}
	return true
}

// retryDelay says whether err is worth another try and after how long; b counts the tries left.
func retryDelay(err error, b *wait.Backoff) (time.Duration, bool) {
	if b.Steps <= 0 {
		return 0, false
	}
	var limited *slack.RateLimitedError
	var slackErr slack.SlackErrorResponse
	var status slack.StatusCodeError
	if errors.As(err, &limited) {
		b.Step() // a rate limit spends a try too, so a stuck limit cannot hold a report forever
		return max(limited.RetryAfter, time.Second), true
	}
	if errors.As(err, &slackErr) || (errors.As(err, &status) && !status.Retryable()) {
		return 0, false // Slack's own refusal, or a 4xx: sending it again gets the same answer
	}
	return b.Step(), true // 5xx, connection refused, timeouts
}

// maxText bounds the text of one Slack message, in bytes (never fewer than its characters):
// Slack cuts a message's text past 40,000 characters.
const maxText = 35000

// tickMessage is one Slack message of a tick, and the reports it tells of.
type tickMessage struct {
	text    string
	reports []Result
}

// tickMessages renders a tick's reports as its Slack messages: a single report as message has
// it; several (MACAQUE_KILL_COUNT) as one message that lists every victim, the picks passed
// over and the failure that ended the tick, if any, split into as few parts as Slack's length
// limit allows. Slack takes about one message a second in a channel: a message per victim
// would hold a hundred verdicts back by minutes.
func tickMessages(tick []Result) []tickMessage {
	if len(tick) <= 1 {
		if len(tick) == 0 {
			return nil
		}
		return []tickMessage{{text: text.Truncate(message(tick[0]), maxText), reports: tick}}
	}
	safe := make([]Result, len(tick))
	items := make([]string, len(tick))
	for i, r := range tick {
		safe[i] = escapeResult(r)
		items[i] = text.Truncate(listed(safe[i]), maxText/2)
	}
	budget := maxText - len(tickHead(safe, " (part 100 of 100)"))
	var parts [][2]int // the items of each message: [from, to)
	size := 0
	for i, item := range items {
		if len(parts) == 0 || size+len("\n")+len(item) > budget {
			parts = append(parts, [2]int{i, i})
			size = 0
		}
		parts[len(parts)-1][1] = i + 1
		size += len("\n") + len(item)
	}
	out := make([]tickMessage, 0, len(parts))
	for i, p := range parts {
		label := ""
		if len(parts) > 1 {
			label = fmt.Sprintf(" (part %d of %d)", i+1, len(parts))
		}
		text := tickHead(safe, label) + "\n" + strings.Join(items[p[0]:p[1]], "\n")
		out = append(out, tickMessage{text: text, reports: tick[p[0]:p[1]]})
	}
	return out
}

// isVictim says whether r is the report of a pod killed (or, in a dry run, picked to be).
func isVictim(r Result) bool {
	return r.Outcome == OutcomeKilled || r.Outcome == OutcomeDryRun
}

// tickHead is the first line of a tick of several reports, already escaped: how many pods it
// killed among how many candidates, where, and whether a failure ended it; label says which
// part of the tick's messages it heads, if there are several.
func tickHead(tick []Result, label string) string {
	first := tick[0]
	killed := "killed"
	if first.Mode == modeEvict {
		killed = "evicted"
	}
	var kills, dry, others int
	for _, r := range tick {
		switch r.Outcome {
		case OutcomeKilled:
			kills++
		case OutcomeDryRun:
			dry++
		default:
			others++
		}
	}
	pods := func(n int) string {
		if n == 1 {
			return "1 pod"
		}
		return fmt.Sprintf("%d pods", n)
	}
	var says []string
	if kills > 0 {
		says = append(says, fmt.Sprintf(":monkey_face: %s %s", killed, pods(kills)))
	}
	if dry > 0 {
		says = append(says, fmt.Sprintf(":see_no_evil: dry run: would have %s %s", killed, pods(dry)))
	}
	if len(says) == 0 {
		says = append(says, fmt.Sprintf(":warning: %d reports", others))
	}
	head := fmt.Sprintf("%s of %d candidates in %s", strings.Join(says, "; "), first.Candidates, selected(first))
	if others > 0 && kills+dry > 0 {
		head += "; a failure ended the tick"
	}
	head += label + "." + when(Result{Time: first.Time})
	if first.Resumed != "" {
		head += "\nResumed: " + first.Resumed
	}
	return head
}

// listed is one report of a tick of several, already escaped: a victim's line, with its notes
// and the picks passed over before it, or any other report in full, as message has it.
func listed(r Result) string {
	if !isVictim(r) {
		r.Resumed = "" // the tick's head says it
		return render(r)
	}
	text := "• " + podText(r) + acceptedAt(r)
	if r.Note != "" {
		text += "\n    Note: " + strings.ReplaceAll(r.Note, "\n", " ")
	}
	if len(r.Passed) > 0 {
		text += "\n    " + passed(r)
	}
	return text
}

// podText names r's pod, its owner and node.
func podText(r Result) string {
	return fmt.Sprintf("pod `%s/%s` (%s, node %s)", r.Namespace, r.Pod, cmp.Or(r.Owner, "no owner"), cmp.Or(r.Node, "unscheduled"))
}

// selected is where the tick looked, with the selector if there is one.
func selected(r Result) string {
	scope := scopeText(r)
	if r.Selector != "" {
		scope += fmt.Sprintf(" matching `%s`", r.Selector)
	}
	return scope
}

// escapeResult escapes, as Slack asks (& < >), every text of r that comes from the cluster or
// from the settings, so that an annotation, a name or an API server's message can neither
// mention (<!channel>) nor link (<https://...|...>): Slack shows them as written.
func escapeResult(r Result) Result {
	esc := slackutilsx.EscapeMessage
	r.Scope, r.Namespace, r.Selector, r.Pod, r.Owner, r.Node = esc(r.Scope), esc(r.Namespace), esc(r.Selector), esc(r.Pod), esc(r.Owner), esc(r.Node)
	r.Note, r.Resumed = esc(r.Note), esc(r.Resumed)
	r.Passed = slices.Clone(r.Passed)
	for i, p := range r.Passed {
		r.Passed[i] = esc(p)
	}
	if r.Err != nil {
		r.Err = errors.New(esc(r.Err.Error())) // only its text is read from here on
	}
	return r
}

// message renders r for humans; it never claims a kill that did not happen. Its first line
// starts with a fixed phrase per outcome (people and the e2e tests match on it) and ends with the
// tick's own time, so that a report delivered late, after retries, is not read as a fresh kill.
// Text from the cluster in it is escaped (escapeResult).
func message(r Result) string {
	return render(escapeResult(r))
}

// render is message of a report already escaped.
func render(r Result) string {
	scope := selected(r)
	pod := podText(r)
	target := "in " + scope
	if r.Pod != "" {
		target = pod
	}
	// In evict mode every line says evict: an eviction is not a delete (a PDB may refuse it).
	kill, killed, killing, request := "kill", "killed", "killing", "delete"
	if r.Mode == modeEvict {
		kill, killed, killing, request = "evict", "evicted", "evicting", "eviction"
	}
	nothing := "nothing was " + killed
	if r.KilledBefore > 0 { // MACAQUE_KILL_COUNT: this tick's earlier victims have reports of their own
		nothing = fmt.Sprintf("it was not %s (%d earlier in this tick were)", killed, r.KilledBefore)
	}
	var text string
	switch r.Outcome {
	case OutcomeKilled:
		text = fmt.Sprintf(":monkey_face: %s %s, 1 of %d candidates in %s.", killed, pod, r.Candidates, scope)
	case OutcomeDryRun:
		text = fmt.Sprintf(":see_no_evil: dry run: would have %s %s, 1 of %d candidates in %s.", killed, pod, r.Candidates, scope)
	case OutcomeNoCandidates:
		text = fmt.Sprintf(":zzz: no Running pod to %s in %s.", kill, scope)
	case OutcomeNotFound:
		if r.Pod == "" {
			text = fmt.Sprintf(":ghost: every pick in %s was gone or changed before it could be %s; nothing was %s.", scope, r.Mode.pastTense(), killed)
		} else {
			text = fmt.Sprintf(":ghost: picked %s but it was gone before it could be %s; nothing was %s.", pod, r.Mode.pastTense(), killed)
		}
	case OutcomeSkipped:
		text = skippedText(r, scope, killed)
	case OutcomeBlocked:
		// The PDBs' doing, not a failure: Passed names the budget that refused each pick.
		text = fmt.Sprintf(":vertical_traffic_light: blocked: PodDisruptionBudgets refused to let any pick among %d candidates in %s be evicted; nothing was evicted.", r.Candidates, scope)
	case OutcomePaused:
		// Posted once per pause (r.Quiet after that); the note says until when and how to lift it.
		text = fmt.Sprintf(":double_vertical_bar: paused: macaque's pause switch is on, nothing is killed in %s.", scope)
	case OutcomeForbidden:
		text = fmt.Sprintf(":no_entry: forbidden to %s %s; %s. Check macaque's Role.", kill, target, nothing)
	case OutcomeDenied:
		// Not the Role: an admission webhook or policy said no, so the hint would mislead.
		text = fmt.Sprintf(":no_entry: the API server denied %s %s; %s.", killing, target, nothing)
	case OutcomeUnknown:
		// The request went out and its answer did not come back: either way may be true.
		text = fmt.Sprintf(":question: sent the %s of %s, 1 of %d candidates in %s, but its result is unknown: the pod may or may not have been %s.", request, target, r.Candidates, scope, killed)
	default:
		text = fmt.Sprintf(":warning: failed to %s %s; %s.", kill, target, nothing)
	}
	return text + when(r) + details(r)
}

// skippedText is the first line of a skipped tick's report, in scope: the rules' doing, or the
// alert gate's.
func skippedText(r Result, scope, killed string) string {
	if r.Gated { // Alertmanager's doing, before any list: the note names the alerts
		return fmt.Sprintf(":rotating_light: gated: alerts firing in Alertmanager hold the kills in %s; nothing was %s.", scope, killed)
	}
	// The guard's doing, not a failure: each pick was unhealthy, mid-rollout or unowned.
	return fmt.Sprintf(":shield: skipped: no pick among %d candidates in %s was safe to kill (steady-state guard); nothing was %s.", r.Candidates, scope, killed)
}

// details are the lines under a report's first: how a pause ended, the picks passed over, the
// note and the error, each when there is one.
func details(r Result) string {
	text := ""
	if r.Resumed != "" {
		text += "\nResumed: " + r.Resumed
	}
	if len(r.Passed) > 0 {
		text += "\n" + passed(r)
	}
	if r.Note != "" {
		text += "\nNote: " + strings.ReplaceAll(r.Note, "\n", " ")
	}
	if r.Err != nil {
		text += "\n> " + strings.ReplaceAll(r.Err.Error(), "\n", " ")
	}
	return text
}

// scopeText names where the tick looked for candidates: one namespace, several, or all but some.
func scopeText(r Result) string {
	sc := cmp.Or(r.Scope, r.Namespace)
	if all, except, _ := strings.Cut(sc, " except "); all == "*" || strings.HasPrefix(all, "* labelled ") {
		out := "every namespace"
		if sel, ok := strings.CutPrefix(all, "* labelled "); ok { // MACAQUE_NAMESPACE_SELECTOR
			out = fmt.Sprintf("every namespace labelled `%s`", sel)
		}
		if except != "" {
			out += fmt.Sprintf(" except `%s`", except)
		}
		return out
	}
	if strings.Contains(sc, ",") {
		return fmt.Sprintf("namespaces `%s`", sc)
	}
	return fmt.Sprintf("namespace `%s`", sc)
}

// when is the end of a report's first line: the tick it belongs to and, for a kill, when the
// API server accepted the delete, both on the schedule's clock.
func when(r Result) string {
	if r.Time.IsZero() {
		return ""
	}
	layout := "2006-01-02 15:04 MST"
	if r.Time.Second() != 0 || r.Time.Nanosecond() != 0 { // a sub-minute schedule (@every 30s)
		layout = "2006-01-02 15:04:05 MST"
	}
	return " (tick " + r.Time.Format(layout) + acceptedAt(r) + ")"
}

// acceptedAt says, for a kill, when the API server accepted it, on the tick's clock (with the
// date when it is not the tick's): ", deleted at 09:00:00.12 UTC".
func acceptedAt(r Result) string {
	if r.Outcome != OutcomeKilled || r.Deleted.IsZero() {
		return ""
	}
	d := r.Deleted.In(r.Time.Location())
	layout := "15:04:05.00 MST"
	if d.Format(time.DateOnly) != r.Time.Format(time.DateOnly) {
		layout = "2006-01-02 " + layout
	}
	return ", " + r.Mode.pastTense() + " at " + d.Format(layout)
}

// maxPassed bounds how many rejected picks a report lists, so that it stays a short message.
const maxPassed = 5

// passed lists the picks rejected before r's own ("pod: why" each), briefly.
func passed(r Result) string {
	items := make([]string, 0, min(len(r.Passed), maxPassed))
	for _, p := range r.Passed[:min(len(r.Passed), maxPassed)] {
		if name, why, ok := strings.Cut(p, ": "); ok {
			p = fmt.Sprintf("`%s` (%s)", name, why)
		}
		items = append(items, strings.ReplaceAll(p, "\n", " "))
	}
	if more := len(r.Passed) - maxPassed; more > 0 {
		items = append(items, fmt.Sprintf("and %d more", more))
	}
	head := "Passed over first: "
	if r.Outcome == OutcomeSkipped || r.Outcome == OutcomeBlocked {
		head = "Picks passed over: "
	}
	if r.Outcome == OutcomeNotFound {
		head = "Earlier picks, also passed over: "
		if r.Pod == "" {
			head = "Picks passed over: "
		}
	}
	return head + strings.Join(items, ", ")
}
