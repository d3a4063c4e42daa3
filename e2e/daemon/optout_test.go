package daemon_test

// Opt-outs and Events on a real control plane: the chaos.macaque.dev/exclude annotation added
// at run time protects a Deployment (or a pod) from the next tick on, with the guard on or
// off, while another Deployment in scope keeps being hit; MACAQUE_MIN_POD_AGE spares pods
// until they are old enough; and each kill, and a tick that killed nothing, shows in kubectl
// get events with macaque's reason.

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// killsOf counts the ticks in lines that killed a pod of app (named app-...).
func killsOf(lines []tickLine, app string) int {
	n := 0
	for _, l := range lines {
		if l.Outcome == "killed" && strings.HasPrefix(l.Pod, app+"-") {
			n++
		}
	}
	return n
}

// passedFor counts the picks in lines passed over with a reason containing why.
func passedFor(lines []tickLine, why string) int {
	n := 0
	for _, l := range lines {
		for _, p := range l.Passed {
			if strings.Contains(p, why) {
				n++
			}
		}
	}
	return n
}

// waitTickLines waits until ok accepts the tick reports so far, failing at once if macaque exits.
func (d *daemon) waitTickLines(t *testing.T, what string, ok func([]tickLine) error) []tickLine {
	t.Helper()
	cluster.Eventually(t, guardTimeout, what, func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		return ok(d.tickLines())
	})
	return d.tickLines()
}

// TestExcludeAnnotationAddedAtRunTime runs macaque over two Deployments, kept and hit, until it
// has hit both, then annotates kept (and one pod of hit) with kubectl: from the next tick on,
// neither is hit again, while hit's other pods still are. With the guard on and off.
func TestExcludeAnnotationAddedAtRunTime(t *testing.T) {
	for _, tt := range []struct {
		name string
		env  []string
	}{
		{name: "guard on"},
		{name: "guard off", env: []string{"MACAQUE_REQUIRE_HEALTHY=false"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns, kubeconfig := deploy(t)
			createDeployment(t, ns, "kept", 2)
			createDeployment(t, ns, "hit", 3)
			waitReady(t, ns, "kept", 2)
			waitReady(t, ns, "hit", 3)
			watcher := watchDeletions(t, []string{ns})
			d := startMacaque(t, kubeconfig, nil, append([]string{"MACAQUE_SELECTOR=app in (kept,hit)"}, tt.env...)...)
			d.waitTickLines(t, "kills of both Deployments before the annotation", func(lines []tickLine) error {
				if killsOf(lines, "kept") == 0 || killsOf(lines, "hit") == 0 {
					return fmt.Errorf("%d kills of kept, %d of hit; last: %s", killsOf(lines, "kept"), killsOf(lines, "hit"), d.Tail(1))
				}
				return nil
			})
			waitReady(t, ns, "hit", 3)
			pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=hit"})
			if err != nil {
				t.Fatal(err)
			}
			var shy string // a Running, Ready pod of hit, not being deleted
			for _, p := range pods.Items {
				if p.DeletionTimestamp == nil && p.Status.Phase == "Running" {
					shy = p.Name
				}
			}
			if out, err := testCluster.Kubectl("annotate", "-n", ns, "deployment", "kept", "chaos.macaque.dev/exclude=true"); err != nil {
				t.Fatalf("kubectl annotate deployment: %v\n%s", err, out)
			}
			if out, err := testCluster.Kubectl("annotate", "-n", ns, "pod", shy, "chaos.macaque.dev/exclude=true"); err != nil {
				t.Fatalf("kubectl annotate pod: %v\n%s", err, out)
			}
			// A tick under way when the annotations landed may have read the chain before them.
			cutoff := len(d.tickLines()) + 1
			keptBefore := killsOf(d.tickLines(), "kept")
			d.waitTickLines(t, "kills of hit and both exclusions reported after the annotation", func(lines []tickLine) error {
				after := lines[min(cutoff, len(lines)):]
				if killsOf(after, "hit") < 3 || passedFor(after, "excluded by chaos.macaque.dev/exclude on Deployment/kept") == 0 ||
					passedFor(after, shy+": excluded by chaos.macaque.dev/exclude on the pod") == 0 {
					return fmt.Errorf("after the annotation: %d kills of hit, %d kept pods and %d of %s passed over as excluded; last: %s", killsOf(after, "hit"),
						passedFor(after, "on Deployment/kept"), passedFor(after, shy+": excluded"), shy, d.Tail(1))
				}
				return nil
			})
			d.stop(t)
			lines := d.tickLines()
			after := lines[min(cutoff, len(lines)):]
			for _, l := range after {
				if l.Outcome == "killed" && (strings.HasPrefix(l.Pod, "kept-") || l.Pod == shy) {
					t.Errorf("killed %s after the annotation (tick %s)", l.Pod, l.Tick)
				}
			}
			keptDeleted := 0
			for _, del := range watcher.waitDeleted(t, killsOf(lines, "kept")+killsOf(lines, "hit")) {
				if del.App == "kept" {
					keptDeleted++
				}
				if del.Name == shy {
					t.Errorf("deleted %s, annotated to be excluded", shy)
				}
			}
			if keptDeleted > keptBefore+1 { // the tick under way at the annotation may have been one
				t.Errorf("%d kept pods deleted, %d before the annotation", keptDeleted, keptBefore)
			}
		})
	}
}

// TestMinPodAge starts macaque over a Deployment created just before, with
// MACAQUE_MIN_POD_AGE=20s: its pods are passed over as too young until they are 20s old, then
// killed, and their replacements are spared in turn until they are old enough.
func TestMinPodAge(t *testing.T) {
	const minAge = 20 * time.Second
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "young", 2)
	var mu sync.Mutex
	created := map[string]time.Time{} // pod name -> creationTimestamp, recorded while the pods live
	record := func(ctx context.Context) error {
		pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=young"})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, p := range pods.Items {
			created[p.Name] = p.CreationTimestamp.Time
		}
		return nil
	}
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=young", "MACAQUE_MIN_POD_AGE=20s")
	d.waitTickLines(t, "3 kills of young pods, after ticks passing them over as too young", func(lines []tickLine) error {
		if err := record(t.Context()); err != nil {
			return err
		}
		if killsOf(lines, "young") < 3 || passedFor(lines, "younger than MACAQUE_MIN_POD_AGE (20s)") == 0 {
			return fmt.Errorf("%d kills, %d picks passed over as too young; last: %s", killsOf(lines, "young"), passedFor(lines, "younger than MACAQUE_MIN_POD_AGE"), d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	mu.Lock()
	defer mu.Unlock()
	for _, l := range d.killLines(t) {
		born, ok := created[l.Pod]
		if !ok {
			t.Errorf("killed %s, which the test never saw", l.Pod)
			continue
		}
		// The API server keeps creationTimestamp to the second, as macaque reads it.
		if age := l.Deleted.Sub(born); age < minAge {
			t.Errorf("killed %s at %s, %v after its creation, want at least %v", l.Pod, l.Deleted, age, minAge)
		}
	}
}

// killLine is a killed tick's report with the time the API server accepted the delete.
type killLine struct {
	Pod     string    `json:"pod"`
	Outcome string    `json:"outcome"`
	Deleted time.Time `json:"deleted"`
}

// killLines are the killed ticks in macaque's log so far.
func (d *daemon) killLines(t *testing.T) []killLine {
	t.Helper()
	var out []killLine
	for _, line := range d.Logs() {
		var l killLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Outcome == "killed" {
			if l.Deleted.IsZero() {
				t.Fatalf("kill report without its deleted time: %s", line)
			}
			out = append(out, l)
		}
	}
	return out
}

// eventItem is the part of an events.k8s.io/v1 Event the test reads.
type eventItem struct {
	Reason              string `json:"reason"`
	Action              string `json:"action"`
	Type                string `json:"type"`
	Note                string `json:"note"`
	ReportingController string `json:"reportingController"`
	ReportingInstance   string `json:"reportingInstance"`
	Regarding           struct {
		Kind, Name, UID string
	} `json:"regarding"`
	Related *struct {
		Kind, Name string
	} `json:"related"`
}

// macaqueEvents lists the events.k8s.io/v1 Events in ns with kubectl, as a user would.
func macaqueEvents(ctx context.Context, ns string) ([]eventItem, error) {
	out, err := testCluster.KubectlContext(ctx, "get", "events.v1.events.k8s.io", "-n", ns, "-o", "json")
	if err != nil {
		return nil, fmt.Errorf("kubectl get events: %w\n%s", err, out)
	}
	var list struct {
		Items []eventItem `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		return nil, fmt.Errorf("decode kubectl's events: %w", err)
	}
	return list.Items, nil
}

// findEvent is the first Event with reason about kind/name, or nil.
func findEvent(events []eventItem, reason, kind, name string) *eventItem {
	for i, e := range events {
		if e.Reason == reason && e.Regarding.Kind == kind && e.Regarding.Name == name {
			return &events[i]
		}
	}
	return nil
}

// TestEventsAreVisibleWithKubectl runs macaque over a Deployment whose pods are excluded by an
// annotation, until a tick is skipped, then over a healthy one until a pod is killed: kubectl
// get events shows a ChaosSkipped Event on the excluded Deployment, and ChaosKill Events on
// the killed pod and on its Deployment, each related to the other, reported by macaque; and
// kubectl describe deployment shows the kill.
func TestEventsAreVisibleWithKubectl(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeploymentWith(t, ns, "shy", 1, func(d *appsv1.Deployment) {
		d.Annotations = map[string]string{"chaos.macaque.dev/exclude": "true"}
	})
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "shy", 1)
	waitReady(t, ns, "web", 2)

	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=shy")
	d.waitOutcomes(t, 0, 1, "skipped", guardTimeout)
	d.stop(t)
	d = startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=web")
	killed := d.waitOutcomes(t, 0, 1, "killed", guardTimeout)
	d.stop(t)
	for _, line := range d.Logs() {
		if strings.Contains(line, "could not write an event") || strings.Contains(line, "may not write Events") {
			t.Errorf("macaque warned about Events: %s", line)
		}
	}
	victim := killed[0].Pod

	var events []eventItem
	cluster.Eventually(t, 30*time.Second, "macaque's Events in kubectl get events", func(ctx context.Context) error {
		var err error
		if events, err = macaqueEvents(ctx, ns); err != nil {
			return err
		}
		if findEvent(events, "ChaosKill", "Pod", victim) == nil || findEvent(events, "ChaosKill", "Deployment", "web") == nil ||
			findEvent(events, "ChaosSkipped", "Deployment", "shy") == nil {
			return fmt.Errorf("%d Events: %+v", len(events), events)
		}
		return nil
	})
	for _, want := range []struct {
		reason, kind, name, relatedKind, relatedName, note string
	}{
		{"ChaosKill", "Pod", victim, "Deployment", "web", "mode delete"},
		{"ChaosKill", "Deployment", "web", "Pod", victim, "killed its pod " + victim},
		{"ChaosSkipped", "Deployment", "shy", "Pod", "shy-", "excluded by chaos.macaque.dev/exclude on Deployment/shy"},
	} {
		e := findEvent(events, want.reason, want.kind, want.name)
		if e.ReportingController != "macaque" || e.ReportingInstance != "macaque-e2e" || e.Type != "Normal" || !strings.Contains(e.Note, want.note) {
			t.Errorf("%s Event on %s/%s: %+v, want reported by macaque/macaque-e2e, Normal, a note saying %q", want.reason, want.kind, want.name, e, want.note)
		}
		if e.Related == nil || e.Related.Kind != want.relatedKind || !strings.HasPrefix(e.Related.Name, want.relatedName) {
			t.Errorf("%s Event on %s/%s related to %+v, want %s/%s", want.reason, want.kind, want.name, e.Related, want.relatedKind, want.relatedName)
		}
	}
	for _, e := range events {
		if e.Reason == "Killing" && e.ReportingController == "macaque" {
			t.Errorf("macaque wrote the kubelet's reason: %+v", e)
		}
	}
	out, err := testCluster.Kubectl("get", "events", "-n", ns, "--field-selector", "reason=ChaosKill")
	if err != nil || !strings.Contains(out, "deployment/web") || !strings.Contains(out, "pod/"+victim) {
		t.Errorf("kubectl get events --field-selector reason=ChaosKill: %v\n%s\nwant the pod and the Deployment", err, out)
	}
	out, err = testCluster.Kubectl("describe", "deployment", "-n", ns, "web")
	if err != nil || !strings.Contains(out, "ChaosKill") || !strings.Contains(out, "killed its pod "+victim) {
		t.Errorf("kubectl describe deployment web: %v\n%s\nwant the ChaosKill Event", err, out)
	}
}
