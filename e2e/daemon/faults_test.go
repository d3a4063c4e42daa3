package daemon_test

// Issue 9: faults on the real control plane. SIGTERM in the middle of a kill, the RoleBinding
// deleted and restored at run time, the API server answering 429 and 500, the API server gone
// for a while, Slack rate-limiting, failing and hanging. As in truth_test.go, what macaque
// reports is checked against what the API server did (the podWatcher, the pods), through the
// faultproxy where the API server must misbehave.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/faultproxy"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// period is the schedule every test runs macaque with (macaqueEnv's "@every 2s").
const period = 2 * time.Second

// timedTick is a tick report with the tick's scheduled time and when macaque logged it.
type timedTick struct {
	tickLine
	at, logged time.Time
}

// timed reads the scheduled and logged times of tick reports.
func timed(t *testing.T, lines []tickLine) []timedTick {
	t.Helper()
	out := make([]timedTick, 0, len(lines))
	for _, l := range lines {
		var v struct {
			Time time.Time `json:"time"`
			Tick time.Time `json:"tick"`
		}
		if err := json.Unmarshal([]byte(l.raw), &v); err != nil {
			t.Fatalf("tick report %s: %v", l.raw, err)
		}
		out = append(out, timedTick{tickLine: l, at: v.Tick, logged: v.Time})
	}
	return out
}

// ticksAfter waits until macaque has logged n reports of ticks scheduled at or after since, and
// returns those n. A tick starts at its scheduled time, so every request those ticks made came
// after since; and they have been logged, so they are over. It fails at once if macaque exits.
func (d *daemon) ticksAfter(t *testing.T, since time.Time, n int, timeout time.Duration) []timedTick {
	t.Helper()
	var got []timedTick
	cluster.Eventually(t, timeout, fmt.Sprintf("%d ticks scheduled after %s", n, since.Format("15:04:05.000")), func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		got = d.ticksSince(t, since)
		outcomes := make([]string, len(got))
		for i, l := range got {
			outcomes[i] = l.Outcome
		}
		if len(got) < n {
			return fmt.Errorf("%d such ticks (%q); last log line: %s", len(got), outcomes, d.Tail(1))
		}
		return nil
	})
	return got[:n]
}

// ticksSince returns the tick reports logged so far of ticks scheduled at or after since.
func (d *daemon) ticksSince(t *testing.T, since time.Time) []timedTick {
	t.Helper()
	var out []timedTick
	for _, l := range timed(t, d.tickLines()) {
		if !l.at.Before(since) {
			out = append(out, l)
		}
	}
	return out
}

// raws are the log lines of tick reports.
func raws(ticks []timedTick) []string {
	out := make([]string, len(ticks))
	for i, l := range ticks {
		out[i] = l.raw
	}
	return out
}

// timedOut says whether a tick failed because a request to the API server outlasted its
// deadline: the API server was slow, not failing.
func timedOut(l tickLine) bool {
	return l.Outcome == "error" && strings.Contains(l.Err, "context deadline exceeded")
}

// checkKillsAreDeletions compares every tick macaque reported killed with the deletions the API
// server made: each names a pod the API server deleted, and the API server deleted no pod that
// no tick reported killed. Pod names must be unique in the test, as a Deployment's are.
func checkKillsAreDeletions(t *testing.T, d *daemon, watcher *podWatcher) {
	t.Helper()
	checkReportedAreDeleted(t, d.tickLines(), watcher)
}

// checkReportedAreDeleted is checkKillsAreDeletions for the tick reports in lines, of one
// macaque or several.
func checkReportedAreDeleted(t *testing.T, lines []tickLine, watcher *podWatcher) {
	t.Helper()
	killed := map[string]string{} // pod → its tick report
	for _, l := range lines {
		if l.Outcome != "killed" {
			continue
		}
		if prev, dup := killed[l.Pod]; dup {
			t.Errorf("pod %s reported killed twice:\n%s\n%s", l.Pod, prev, l.raw)
		}
		killed[l.Pod] = l.raw
	}
	deleted := map[string]bool{}
	for _, del := range watcher.waitDeleted(t, len(killed)) {
		deleted[del.Name] = true
		if _, ok := killed[del.Name]; !ok {
			t.Errorf("the API server deleted %s/%s, but no tick reported killing it", del.Namespace, del.Name)
		}
	}
	for pod, raw := range killed {
		if !deleted[pod] {
			t.Errorf("reported killed, but the API server never deleted %s: %s", pod, raw)
		}
	}
}

// waitDeletedByName waits until the watch has seen pod name deleted.
func waitDeletedByName(t *testing.T, watcher *podWatcher, name string) {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, "the watch to see "+name+" deleted", func(context.Context) error {
		for _, del := range watcher.Deleted() {
			if del.Name == name {
				return nil
			}
		}
		return fmt.Errorf("deletions seen: %+v", watcher.Deleted())
	})
}

// checkAliveByName fails unless pod name exists and is not being deleted, as the API server
// says now.
func checkAliveByName(t *testing.T, ns, name string) {
	t.Helper()
	p, err := testCluster.Clientset.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	switch {
	case err != nil:
		t.Errorf("pod %s: %v", name, err)
	case p.DeletionTimestamp != nil:
		t.Errorf("pod %s is being deleted", name)
	}
}

// lists matches macaque's lists of candidates (not its read-backs of one pod) in ns.
func lists(ns string) faultproxy.Rule {
	return faultproxy.Rule{Method: http.MethodGet, Path: podsPath(ns), Match: func(r *http.Request) bool { return !readsBack("")(r) }}
}

// TestSIGTERMWhileADeleteIsHeld sends SIGTERM while the answer to macaque's DELETE is held (the
// API server has deleted the pod; macaque has not heard). macaque must see the kill through:
// wait out the DELETE's deadline, read the pod back, report it killed, post that to Slack, and
// only then exit 0, within the 30s it promises (the manifest's grace is 40s).
func TestSIGTERMWhileADeleteIsHeld(t *testing.T) {
	ns, kubeconfig := deploy(t)
	pods := createWebPods(t, ns, 2)
	proxy, viaProxy := proxied(t, kubeconfig)
	rule := killDeletes(ns)
	rule.Name, rule.Action, rule.Times = "hold the first DELETE's answer", faultproxy.HoldResponse, 1
	held := proxy.Add(rule)
	later := killDeletes(ns)
	later.Name = "any later DELETE"
	again := proxy.Add(later)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, viaProxy, slack, "MACAQUE_SELECTOR=app=web", allowOrphans)

	d.waitMatched(t, held, "macaque's DELETE at the proxy")
	victim := deletedPod(t, held)
	signalled := time.Now()
	d.Signal(syscall.SIGTERM)
	code := d.wait(t, 40*time.Second)
	t.Logf("macaque exited %d, %.1fs after SIGTERM", code, time.Since(signalled).Seconds())
	if code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}

	lines := d.tickLines()
	if len(lines) != 1 || lines[0].Pod != victim || lines[0].Outcome != "killed" || !strings.Contains(lines[0].Note, "read-back") {
		t.Fatalf("tick reports %+v, want one: %s killed, confirmed by a read-back", lines, victim)
	}
	logs := d.Logs()
	reported, stopped := slices.Index(logs, lines[0].raw), slices.IndexFunc(logs, func(l string) bool {
		return strings.Contains(l, `"msg":"macaque stopped"`)
	})
	if stopped < 0 || reported > stopped {
		t.Errorf("the tick's report (line %d) does not come before a clean stop (line %d)", reported, stopped)
	}
	// The stub has the post now that macaque has exited: it was posted before the exit.
	if post := postAbout(t, slack, ns, victim); !strings.HasPrefix(post.Text, ":monkey_face: killed pod `"+ns+"/"+victim+"`") {
		t.Errorf("Slack post %q, want a kill report", post.Text)
	}
	waitDeletedByName(t, watcher, victim)
	if n := again.Count(); n != 0 {
		t.Errorf("macaque sent %d more DELETEs after the held one: %q", n, again.Requests())
	}
	delete(pods, victim)
	checkAlive(t, ns, pods)
}

// TestRoleBindingDeletedAndRestored deletes the RoleBinding of the shipped manifest while
// macaque runs: every tick must then report forbidden (RBAC's refusal of the list, quoted) and
// delete nothing, macaque must keep running, and kills must resume once the same RoleBinding
// is created again.
func TestRoleBindingDeletedAndRestored(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=web")
	d.waitOutcomes(t, 0, 1, "killed", 30*time.Second)

	restore := unbind(t, kubeconfig, ns)
	// A tick in flight when the authorizer changed its mind may still kill; count from the
	// first forbidden one.
	mark := len(d.tickLines())
	lines := d.waitOutcomes(t, mark, 1, "forbidden", 30*time.Second)
	mark += slices.IndexFunc(lines, func(l tickLine) bool { return l.Outcome == "forbidden" })
	killedBefore := 0
	for _, l := range d.tickLines()[:mark] {
		if l.Outcome == "killed" {
			killedBefore++
		}
	}
	watcher.waitDeleted(t, killedBefore)
	for _, l := range d.waitOutcomes(t, mark, 3, "forbidden", 30*time.Second) {
		if l.Outcome != "forbidden" || !strings.Contains(l.Err, `cannot list resource "pods"`) {
			t.Errorf("tick %s, want forbidden quoting RBAC's refusal to list", l.raw)
		}
	}
	if del := watcher.Deleted(); len(del) != killedBefore {
		t.Fatalf("deleted %+v, %d of them with no RoleBinding", del, len(del)-killedBefore)
	}
	if !d.running() {
		t.Fatalf("macaque exited (%v) without its RoleBinding", d.State())
	}

	restore()
	d.waitOutcomes(t, len(d.tickLines()), 1, "killed", 30*time.Second)
	d.stop(t)
	checkKillsAreDeletions(t, d, watcher)
}

// killingThroughProxy deploys the shipped manifest and a 3-replica web Deployment, starts macaque
// through a faultproxy with no fault yet, and returns once it has killed once.
func killingThroughProxy(t *testing.T) (string, *faultproxy.Proxy, *podWatcher, *daemon) {
	t.Helper()
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	proxy, viaProxy := proxied(t, kubeconfig)
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, viaProxy, nil, "MACAQUE_SELECTOR=app=web")
	d.waitOutcomes(t, 0, 1, "killed", 30*time.Second)
	return ns, proxy, watcher, d
}

// TestAPIErrorsToListsAndDeletes answers macaque's lists and deletes with 429 (Retry-After: 1)
// and 500 for a few ticks each. A failed list is an error, not "no candidates", and deletes
// nothing; a DELETE refused with 429 before the API server saw it is an error, the pod lives,
// and it is never resent, though client-go would resend it after the Retry-After unless told
// not to; a 500 after the API server deleted is a kill, found by the read-back. Kills resume
// once the faults are gone, and no tick reports a kill the API server did not make.
func TestAPIErrorsToListsAndDeletes(t *testing.T) {
	ns, proxy, watcher, d := killingThroughProxy(t)

	// Lists: a 429 is resent by client-go after each Retry-After until the tick's 10s for the
	// pick run out (one tick); a 500 without Retry-After fails at once.
	for _, tt := range []struct {
		status, ticks int
	}{{http.StatusTooManyRequests, 1}, {http.StatusInternalServerError, 2}} {
		rule := lists(ns)
		rule.Name, rule.Action, rule.Status = fmt.Sprintf("%d to every list", tt.status), faultproxy.Fail, tt.status
		if tt.status == http.StatusTooManyRequests {
			rule.RetryAfter = 1
		}
		since := time.Now()
		f := proxy.Add(rule)
		ticks := d.ticksAfter(t, since, tt.ticks, 40*time.Second)
		f.Remove()
		for _, l := range ticks {
			if l.Outcome != "error" || l.Pod != "" {
				t.Errorf("%s: tick %s, want outcome error and no pod", rule.Name, l.raw)
			}
		}
		t.Logf("%s: %d lists failed in %d ticks", rule.Name, f.Count(), len(ticks))
	}

	// A DELETE refused before the API server: an error each time, and sent once.
	rule := killDeletes(ns)
	rule.Name, rule.Action, rule.Status, rule.RetryAfter = "429 to every DELETE", faultproxy.Fail, http.StatusTooManyRequests, 1
	since := time.Now()
	limited := proxy.Add(rule)
	// The ticks that got as far as a DELETE: those with a pod.
	deleting := func() []timedTick {
		return slices.DeleteFunc(d.ticksSince(t, since), func(l timedTick) bool { return l.Pod == "" })
	}
	cluster.Eventually(t, 40*time.Second, "2 ticks with a DELETE refused", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		if n := len(deleting()); n < 2 {
			return fmt.Errorf("%d so far; last log line: %s", n, d.Tail(1))
		}
		return nil
	})
	for _, l := range d.ticksSince(t, since) {
		if l.Outcome != "error" {
			t.Errorf("tick %s while every DELETE is refused, want outcome error", l.raw)
		}
	}
	for _, l := range deleting() {
		if !strings.Contains(l.Err, rule.Name) {
			t.Errorf("tick %s, want the 429 reported", l.raw)
		}
		checkAliveByName(t, ns, l.Pod)
	}
	removed := time.Now()
	limited.Remove()
	// Never resent: at most one DELETE per tick that was under way while the rule was there
	// (once a tick after it is logged, they all are), counting a tick scheduled before the
	// rule came only if its report names the 429.
	d.ticksAfter(t, removed, 1, 30*time.Second)
	ticks := 0
	for _, l := range timed(t, d.tickLines()) {
		if (l.Pod != "" && !l.at.Before(since) && l.at.Before(removed)) || (l.at.Before(since) && strings.Contains(l.Err, rule.Name)) {
			ticks++
		}
	}
	if n := limited.Count(); n > ticks {
		t.Errorf("%d DELETEs refused with 429 for %d ticks that may have sent one: a DELETE was resent: %q", n, ticks, limited.Requests())
	}

	// A DELETE that the API server carries out, answered 500: killed, by the read-back.
	rule = killDeletes(ns)
	rule.Name, rule.Action, rule.Status, rule.Forward, rule.Times = "500 after the DELETE", faultproxy.Fail, http.StatusInternalServerError, true, 1
	mark := len(d.tickLines()) // the pod may have lived through a 429 above: its report is later
	lost := proxy.Add(rule)
	d.waitMatched(t, lost, "a DELETE answered 500")
	victim := deletedPod(t, lost)
	var report tickLine
	cluster.Eventually(t, 30*time.Second, "the tick report on "+victim, func(context.Context) error {
		lines := d.tickLines()[mark:]
		i := slices.IndexFunc(lines, func(l tickLine) bool { return l.Pod == victim })
		if i < 0 {
			return fmt.Errorf("none yet; last log line: %s", d.Tail(1))
		}
		report = lines[i]
		return nil
	})
	if report.Outcome != "killed" || !strings.Contains(report.Note, "read-back") {
		t.Errorf("tick %s, want killed, confirmed by a read-back", report.raw)
	}
	waitDeletedByName(t, watcher, victim)

	// No fault left: kills resume.
	d.waitOutcomes(t, len(d.tickLines()), 1, "killed", 30*time.Second)
	d.stop(t)
	checkKillsAreDeletions(t, d, watcher)
}

// sentDelete is a DELETE the proxy passed on, and when.
type sentDelete struct {
	pod string
	at  time.Time
}

// TestAPIServerOutage breaks every request to the API server for a few ticks, as when it is
// stopped and started again (the harness cannot restart kube-apiserver alone, so the proxy
// stands in: each stream is reset). macaque must not crash, must report each tick of the
// outage as an error, and when the API server is back must kill at the next tick and only one
// pod per tick, each for its own tick, with no burst making up for the ticks missed.
func TestAPIServerOutage(t *testing.T) {
	ns, proxy, watcher, d := killingThroughProxy(t)

	down := time.Now()
	outage := proxy.Add(faultproxy.Rule{Name: "API server down", Action: faultproxy.Abort})
	for _, l := range d.ticksAfter(t, down, 3, 30*time.Second) {
		if l.Outcome != "error" {
			t.Errorf("tick %s during the outage, want outcome error", l.raw)
		}
	}
	// The DELETEs passed on once the API server is back, with their times (the outage rule
	// comes first, so none is recorded while it holds).
	var mu sync.Mutex
	var sent []sentDelete
	record := killDeletes(ns)
	record.Name, record.Match = "note the time of each DELETE", func(r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		sent = append(sent, sentDelete{pod: path.Base(r.URL.Path), at: time.Now()})
		return true
	}
	proxy.Add(record)
	up := time.Now()
	outage.Remove()
	t.Logf("outage: %d requests broken in %.1fs", outage.Count(), up.Sub(down).Seconds())

	// The first tick after the outage kills. (Under a heavy load, kube-apiserver itself has
	// been seen to take over 10s to answer a list; such a tick, failed by its deadline, is not
	// the outage's doing, and the next one must kill instead.)
	after := d.ticksAfter(t, up, 3, 30*time.Second)
	if i := slices.IndexFunc(after, func(l timedTick) bool { return !timedOut(l.tickLine) }); i < 0 || after[i].Outcome != "killed" {
		t.Errorf("ticks after the outage %q, want the first to kill", raws(after))
	}
	d.stop(t)
	checkKillsAreDeletions(t, d, watcher)

	// Each DELETE since the outage was sent for its own tick, within a period of it, and
	// the ticks that killed were a period apart: no burst.
	ticks := map[string]timedTick{} // killed tick by pod
	var kills []time.Time
	for _, l := range timed(t, d.tickLines()) {
		if l.Outcome == "killed" && !l.at.Before(up) {
			ticks[l.Pod] = l
			kills = append(kills, l.at)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, s := range sent {
		l, ok := ticks[s.pod]
		switch {
		case !ok:
			t.Errorf("DELETE of %s at %s, which no tick since the outage reported killed", s.pod, s.at.Format("15:04:05.000"))
		case s.at.Before(l.at) || s.at.Sub(l.at) >= period:
			t.Errorf("DELETE of %s at %s for the tick of %s: a stale tick's kill", s.pod, s.at.Format("15:04:05.000"), l.at.Format("15:04:05.000"))
		}
	}
	if len(sent) != len(ticks) {
		t.Errorf("%d DELETEs sent since the outage for %d killed ticks: %+v", len(sent), len(ticks), sent)
	}
	for i := 1; i < len(kills); i++ {
		if kills[i].Sub(kills[i-1]) < period/2 {
			t.Errorf("kills for ticks at %s and %s: more than one kill per tick", kills[i-1].Format("15:04:05.000"), kills[i].Format("15:04:05.000"))
		}
	}
}

// dropLine is the log line of a report the notifier gave up on.
type dropLine struct {
	Msg string `json:"msg"`
	Pod string `json:"pod"`
}

// drops are the pods of the reports macaque logged as dropped.
func (d *daemon) drops() []string {
	var out []string
	for _, line := range d.Logs() {
		var l dropLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "slack report dropped" {
			out = append(out, l.Pod)
		}
	}
	return out
}

// unaccounted lists the tick reports that Slack has not got and that macaque has not logged as
// dropped, and those accounted for twice: by pod, and by count (a report with no pod, such as
// a failed list's, is only counted).
func unaccounted(d *daemon, slack *slackstub.Server, ns string) []string {
	var out []string
	drops := d.drops()
	posts := killReports(slack.Posts())
	lines := d.tickLines()
	for _, l := range lines {
		if l.Pod == "" {
			continue
		}
		delivered := slices.ContainsFunc(posts, func(p slackstub.Post) bool { return strings.Contains(p.Text, "`"+ns+"/"+l.Pod+"`") })
		dropped := slices.Contains(drops, l.Pod)
		switch {
		case delivered && dropped:
			out = append(out, "both delivered and dropped: "+l.raw)
		case !delivered && !dropped:
			out = append(out, "neither delivered nor dropped: "+l.raw)
		}
	}
	if len(posts)+len(drops) != len(lines) {
		out = append(out, fmt.Sprintf("%d posts and %d drops for %d ticks", len(posts), len(drops), len(lines)))
	}
	return out
}

// TestSlackFaultsDoNotDelayKills has Slack answer macaque's posts with 429s, a 500 and a call
// that hangs past macaque's 10s client timeout, and rate-limit one report past its retries.
// Kills must stay on schedule all the while: every tick starts (its list reaches the API
// server) within a period of its time, ticks go on while the call hangs, and every kill is a
// deletion. Every report must be delivered or logged as dropped. A plain proxy times the
// lists; the API server's own slowness under load makes a tick's end a poor measure.
func TestSlackFaultsDoNotDelayKills(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	proxy, viaProxy := proxied(t, kubeconfig)
	var mu sync.Mutex
	var listed []time.Time
	timing := lists(ns)
	timing.Name, timing.Match = "note the time of each list", func(r *http.Request) bool {
		if readsBack("")(r) {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		listed = append(listed, time.Now())
		return true
	}
	proxy.Add(timing)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	limited := slackstub.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1}
	slack.FailPosts(
		limited, slackstub.Fault{Status: http.StatusInternalServerError}, slackstub.Fault{}, // delivered at the 3rd try
		slackstub.Fault{Hang: time.Minute}, slackstub.Fault{}, // macaque gives up on the hung call, then delivers
		limited, limited, limited, limited, limited, limited, // rate-limited past its 5 retries: dropped
	)
	d := startMacaque(t, viaProxy, slack, "MACAQUE_SELECTOR=app=web")

	cluster.Eventually(t, 60*time.Second, "every Slack fault used, and every report delivered or dropped", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		if n := slack.PendingFaults(); n > 0 {
			return fmt.Errorf("%d faults to go, %d ticks so far", n, len(d.tickLines()))
		}
		if u := unaccounted(d, slack, ns); len(u) > 0 {
			return fmt.Errorf("%d reports unaccounted for: %q", len(u), u)
		}
		return nil
	})
	d.stop(t)

	for _, u := range unaccounted(d, slack, ns) {
		t.Error(u)
	}
	if len(d.drops()) == 0 {
		t.Error("no report logged as dropped, though one was rate-limited past its retries")
	}
	attempts := slack.Attempts()
	hung := slices.IndexFunc(attempts, func(a slackstub.Attempt) bool { return a.Fault.Hang > 0 })
	if hung < 0 || attempts[hung].Posted {
		t.Fatalf("the hung call was not made, or was posted: %+v", attempts)
	}

	// Each tick started on time: the first list after its scheduled time came within a period.
	// (The preflight's list comes before any tick.)
	mu.Lock()
	defer mu.Unlock()
	ticks := timed(t, d.tickLines())
	for _, l := range ticks {
		i := slices.IndexFunc(listed, func(at time.Time) bool { return !at.Before(l.at) })
		if i < 0 || listed[i].After(l.logged) {
			t.Errorf("no list for tick %s", l.raw)
		} else if late := listed[i].Sub(l.at); late > period {
			t.Errorf("tick %s started %v after its time", l.raw, late)
		}
	}
	// And ticks went on while Slack hung (10s, macaque's Slack timeout).
	hangFrom, hangTo := attempts[hung].At.Add(time.Second), attempts[hung].At.Add(9*time.Second)
	during := slices.IndexFunc(listed, func(at time.Time) bool { return at.After(hangFrom) && at.Before(hangTo) })
	if during < 0 {
		t.Errorf("no tick started between %s and %s, while Slack hung", hangFrom.Format("15:04:05.000"), hangTo.Format("15:04:05.000"))
	}
	t.Logf("%d ticks, %d posts, %d drops, %d calls to chat.postMessage", len(ticks), len(slack.Posts()), len(d.drops()), len(attempts))
	checkKillsAreDeletions(t, d, watcher)
}
