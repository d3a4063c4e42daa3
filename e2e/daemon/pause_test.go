package daemon_test

// The kill switch and excluded days on a real control plane: macaque runs as the pod of the
// Deployment that macaque.yml creates (the pod itself stays Pending: no scheduler runs here, and
// the binary runs beside the cluster as a process under that pod's name), and is paused by an
// annotation on that Deployment.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pauseTimeout bounds each phase of the pause test: ticks come every 2 seconds.
const pauseTimeout = 60 * time.Second

// Slack's phrases for the start and the end of a pause.
const (
	pausedPost  = ":double_vertical_bar: paused: macaque's pause switch is on"
	resumedPost = "\nResumed: the pause"
)

// macaquePod waits for the pods of macaque's Deployment in ns (two replicas) and returns the
// name of the first, as one replica's POD_NAME.
func macaquePod(t *testing.T, ns string) string {
	t.Helper()
	name := ""
	cluster.Eventually(t, 30*time.Second, "the macaque Deployment's pod", func(ctx context.Context) error {
		pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=macaque"})
		if err != nil {
			return err
		}
		if len(pods.Items) != 2 {
			return fmt.Errorf("%d pods, want 2: %s", len(pods.Items), replicaSetTrouble(t, ns, "app.kubernetes.io/name=macaque"))
		}
		name = min(pods.Items[0].Name, pods.Items[1].Name)
		return nil
	})
	return name
}

// annotate runs kubectl annotate on macaque's Deployment in ns, as the README tells people to.
func annotate(t *testing.T, ns, arg string) {
	t.Helper()
	if out, err := testCluster.Kubectl("annotate", "-n", ns, "--overwrite", "deploy", "macaque", arg); err != nil {
		t.Fatalf("kubectl annotate deploy macaque %s: %v\n%s", arg, err, out)
	}
}

// postsWith counts the Slack posts containing s.
func postsWith(slack *slackstub.Server, s string) int {
	n := 0
	for _, p := range slack.Posts() {
		if strings.Contains(p.Text, s) {
			n++
		}
	}
	return n
}

// waitPausePosts waits until Slack has had n posts saying a pause ended, then checks it has had
// exactly n saying one started and n saying one ended: one each per pause, however many ticks
// it lasted.
func waitPausePosts(t *testing.T, slack *slackstub.Server, n int) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, fmt.Sprintf("%d posts saying a pause ended", n), func(context.Context) error {
		if got := postsWith(slack, resumedPost); got < n {
			return fmt.Errorf("%d", got)
		}
		return nil
	})
	if paused, resumed := postsWith(slack, pausedPost), postsWith(slack, resumedPost); paused != n || resumed != n {
		var texts []string
		for _, p := range slack.Posts() {
			texts = append(texts, p.Text)
		}
		t.Errorf("Slack got %d paused and %d resumed posts after %d pauses, want %d each:\n%s", paused, resumed, n, n, strings.Join(texts, "\n---\n"))
	}
}

// startedLine is macaque's "macaque started" log line.
func (d *daemon) startedLine(t *testing.T) map[string]any {
	t.Helper()
	var started map[string]any
	cluster.Eventually(t, 30*time.Second, "the macaque started line", func(context.Context) error {
		for _, line := range d.Logs() {
			var l map[string]any
			if json.Unmarshal([]byte(line), &l) == nil && l["msg"] == "macaque started" {
				started = l
				return nil
			}
		}
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		return fmt.Errorf("not yet; last log line: %s", d.Tail(1))
	})
	return started
}

// TestPauseByAnnotation pauses macaque with kubectl annotate on its own Deployment: from the
// next tick on nothing is deleted and each tick is logged paused, Slack hears once that the
// pause started and once that it ended, and kills resume when the annotation is removed; then
// a pause until a time a few seconds ahead ends by itself.
func TestPauseByAnnotation(t *testing.T) {
	ns, kubeconfig := deploy(t)
	self := macaquePod(t, ns)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "POD_NAME="+self, "POD_NAMESPACE="+ns, "MACAQUE_SELECTOR=app=web")
	if got, want := d.startedLine(t)["pause_switch"], "annotation chaos.macaque.dev/paused on deployment "+ns+"/macaque"; got != want {
		t.Fatalf("started with pause_switch %q, want %q", got, want)
	}
	d.waitOutcomes(t, 0, 1, "killed", pauseTimeout)

	// Paused until removed.
	annotate(t, ns, "chaos.macaque.dev/paused=true")
	start := len(d.tickLines())
	lines := d.waitOutcomes(t, start, 4, "paused", pauseTimeout)
	first := slices.IndexFunc(lines, func(l tickLine) bool { return l.Outcome == "paused" })
	kills := 0
	for _, l := range d.tickLines()[:start+first] {
		if l.Outcome == "killed" {
			kills++
		}
	}
	watcher.waitDeleted(t, kills)
	for _, l := range lines[first:] {
		if l.Outcome != "paused" || !strings.Contains(l.Note, "paused until the annotation chaos.macaque.dev/paused is removed") {
			t.Errorf("tick during the pause: %s, want outcome paused saying until when", l.raw)
		}
	}
	if deleted := len(watcher.Deleted()); deleted != kills {
		t.Errorf("%d pods deleted, %d kills reported before the pause: deletions while paused", deleted, kills)
	}

	annotate(t, ns, "chaos.macaque.dev/paused-")
	resumedAt := len(d.tickLines())
	d.waitOutcomes(t, resumedAt, 2, "killed", pauseTimeout)
	waitPausePosts(t, slack, 1)

	// Paused until a time a few seconds ahead: it ends by itself.
	until := time.Now().Add(8 * time.Second).UTC().Truncate(time.Second)
	annotate(t, ns, "chaos.macaque.dev/paused="+until.Format(time.RFC3339))
	start = len(d.tickLines())
	lines = d.waitOutcomes(t, start, 1, "paused", pauseTimeout)
	first = slices.IndexFunc(lines, func(l tickLine) bool { return l.Outcome == "paused" })
	if !strings.Contains(lines[first].Note, "paused until "+until.Format(time.RFC3339)) {
		t.Errorf("paused tick %s, want it to say until %s", lines[first].raw, until.Format(time.RFC3339))
	}
	lines = d.waitOutcomes(t, start+first, 1, "killed", pauseTimeout)
	resumed := slices.IndexFunc(lines, func(l tickLine) bool { return l.Outcome != "paused" })
	at, err := time.Parse(time.RFC3339Nano, lines[resumed].Tick)
	if err != nil {
		t.Fatalf("tick time of %s: %v", lines[resumed].raw, err)
	}
	if at.Before(until) || !strings.Contains(lines[resumed].raw, "the pause until "+until.Format(time.RFC3339)+" is over") {
		t.Errorf("first tick after the pause until %v: %s; want it at or after then, saying the pause is over", until, lines[resumed].raw)
	}
	waitPausePosts(t, slack, 2)
	d.stop(t)
}

// TestExcludedDaysKillNothing excludes yesterday, today and tomorrow (in MACAQUE_TIMEZONE, so
// the test holds across midnight): no tick fires and nothing is deleted, and the log says why.
func TestExcludedDaysKillNothing(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	watcher := watchDeletions(t, []string{ns})
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(tokyo)
	excluded := []string{now.AddDate(0, 0, -1).Format(time.DateOnly), now.Format(time.DateOnly), now.AddDate(0, 0, 1).Format(time.DateOnly)}
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_TIMEZONE=Asia/Tokyo", "MACAQUE_EXCLUDED_DAYS="+strings.Join(excluded, ","), "POD_NAMESPACE="+ns)
	// POD_NAME is macaque-e2e, which names no pod: macaque starts without the pause switch, and says so.
	if got, want := fmt.Sprint(d.startedLine(t)["pause_switch"]), `unavailable: no pod "macaque-e2e" in "`+ns+`"`; !strings.HasPrefix(got, want) {
		t.Errorf("started with pause_switch %q, want %q...", got, want)
	}
	if !slices.ContainsFunc(d.Logs(), func(l string) bool { return strings.Contains(l, `"level":"WARN","msg":"pause switch unavailable`) }) {
		t.Errorf("no warning that the pause switch is unavailable:\n%s", strings.Join(d.Logs(), "\n"))
	}

	var said []string
	cluster.Eventually(t, 30*time.Second, "the log to say which days are passed over", func(context.Context) error {
		for _, line := range d.Logs() {
			var l struct {
				Msg  string
				Days []string
			}
			if json.Unmarshal([]byte(line), &l) == nil && strings.HasPrefix(l.Msg, "passing over excluded days") {
				said = l.Days
				return nil
			}
		}
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		return fmt.Errorf("not yet; last log line: %s", d.Tail(1))
	})
	if len(said) == 0 || slices.ContainsFunc(said, func(day string) bool { return !slices.Contains(excluded, day) }) {
		t.Errorf("the log passes over %q, want some of %q", said, excluded)
	}
	// Five activations of @every 2s go by: none may fire.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if ticks := d.tickLines(); len(ticks) > 0 {
			t.Fatalf("a tick on an excluded day: %s", ticks[0].raw)
		}
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		time.Sleep(200 * time.Millisecond)
	}
	d.stop(t)
	if deleted := watcher.Deleted(); len(deleted) > 0 {
		t.Errorf("deleted %v on an excluded day", deleted)
	}
}
