package daemon_test

// Kill modes on a real control plane: evictions that PodDisruptionBudgets refuse or allow,
// several victims a tick never two of one controller, the grace period override, and a Role
// without eviction stopping evict mode at start.

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
)

// evictMode is the setting of the evict-mode tests.
const evictMode = "MACAQUE_MODE=evict"

// createPDB creates a PodDisruptionBudget over app=app allowing maxUnavailable, and waits until
// the disruption controller has counted want healthy pods and allows allowed disruptions.
func createPDB(t *testing.T, ns, name, app string, maxUnavailable int32, healthy, allowed int32) {
	t.Helper()
	mu := intstr.FromInt32(maxUnavailable)
	pdb := &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: policyv1.PodDisruptionBudgetSpec{MaxUnavailable: &mu, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
	if _, err := testCluster.Clientset.PolicyV1().PodDisruptionBudgets(ns).Create(t.Context(), pdb, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDB(t, ns, name, healthy, allowed)
}

// waitPDB waits until the PDB's status has caught up with its spec, counts healthy pods and
// allows allowed disruptions.
func waitPDB(t *testing.T, ns, name string, healthy, allowed int32) {
	t.Helper()
	cluster.Eventually(t, 60*time.Second, fmt.Sprintf("PDB %s: %d healthy, %d disruptions allowed", name, healthy, allowed), func(ctx context.Context) error {
		p, err := testCluster.Clientset.PolicyV1().PodDisruptionBudgets(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if s := p.Status; s.ObservedGeneration != p.Generation || s.CurrentHealthy != healthy || s.DisruptionsAllowed != allowed {
			return fmt.Errorf("generation %d, status %+v", p.Generation, s)
		}
		return nil
	})
}

// TestEvictModeRespectsPDBs: in evict mode a PDB of maxUnavailable 0 over a healthy Deployment
// blocks every tick, naming the PDB, and no pod is touched; once the PDB allows one
// disruption, the eviction goes through and is reported as an eviction.
func TestEvictModeRespectsPDBs(t *testing.T) {
	ns, kubeconfig := deployEvict(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	createPDB(t, ns, "web-pdb", "web", 0, 3, 0)

	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, evictMode, "MACAQUE_SELECTOR=app=web")
	lines := d.waitTicks(t, 3, guardTimeout)
	d.stop(t)
	for _, l := range lines {
		if l.Outcome != "blocked" || len(l.Passed) == 0 || l.Err != "" {
			t.Errorf("tick %s, want blocked", l.raw)
		}
		for _, p := range l.Passed {
			if !strings.HasSuffix(p, ": eviction blocked by PodDisruptionBudget web-pdb (needs 3 healthy, has 3)") {
				t.Errorf("passed over %q, want each pick blocked by web-pdb", p)
			}
		}
	}
	for _, p := range slack.Posts() {
		if !strings.HasPrefix(p.Text, ":vertical_traffic_light: blocked: ") || !strings.Contains(p.Text, "PodDisruptionBudget web-pdb") {
			t.Errorf("Slack post %q, want a blocked report naming web-pdb", p.Text)
		}
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Fatalf("deleted %+v under a PDB allowing no disruption", del)
	}

	pdbs := testCluster.Clientset.PolicyV1().PodDisruptionBudgets(ns)
	pdb, err := pdbs.Get(t.Context(), "web-pdb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	one := intstr.FromInt32(1)
	pdb.Spec.MaxUnavailable = &one
	if _, err := pdbs.Update(t.Context(), pdb, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitPDB(t, ns, "web-pdb", 3, 1)
	d = startMacaque(t, kubeconfig, slack, evictMode, "MACAQUE_SELECTOR=app=web")
	killed := d.waitOutcomes(t, 0, 1, "killed", guardTimeout)
	d.stop(t)
	var victim tickLine
	for _, l := range killed {
		if l.Outcome == "killed" {
			victim = l
			break
		}
	}
	var fields struct {
		Mode    string `json:"mode"`
		Evicted string `json:"evicted"`
		Deleted string `json:"deleted"`
	}
	if err := json.Unmarshal([]byte(victim.raw), &fields); err != nil || fields.Mode != "evict" || fields.Evicted == "" || fields.Deleted != "" {
		t.Errorf("kill logged as %s, want mode evict and an evicted time (%v)", victim.raw, err)
	}
	if del := watcher.waitDeleted(t, 1); len(del) != 1 || del[0].Name != victim.Pod || del[0].App != "web" {
		t.Errorf("deleted %+v, want %s only", del, victim.Pod)
	}
	report := ":monkey_face: evicted pod `" + ns + "/" + victim.Pod + "`"
	cluster.Eventually(t, 30*time.Second, "the Slack report of the eviction of "+victim.Pod, func(context.Context) error {
		for _, p := range slack.Posts() {
			if strings.HasPrefix(p.Text, report) && strings.Contains(p.Text, ", evicted at ") {
				return nil
			}
		}
		return fmt.Errorf("none among %d posts starts %q", len(slack.Posts()), report)
	})
}

// TestEvictionOfAPodTwoPDBsCoverIsBlocked: the API server answers the eviction of a pod two
// PodDisruptionBudgets cover with a 500 and touches nothing. macaque passes such picks over as
// blocked, naming both budgets, and evicts the next pick instead of ending the tick in error.
func TestEvictionOfAPodTwoPDBsCoverIsBlocked(t *testing.T) {
	ns, kubeconfig := deployEvict(t)
	createDeployment(t, ns, "web", 2)
	createDeployment(t, ns, "api", 1)
	waitReady(t, ns, "web", 2)
	waitReady(t, ns, "api", 1)
	createPDB(t, ns, "web-a", "web", 1, 2, 1)
	createPDB(t, ns, "web-b", "web", 1, 2, 1)

	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, evictMode, "MACAQUE_KILL_COUNT=3")
	lines := d.waitTicks(t, 1, guardTimeout)
	d.stop(t)
	last := lines[0]
	if last.Outcome != "killed" || !strings.HasPrefix(last.Pod, "api-") || last.Err != "" {
		t.Fatalf("tick %s, want api's pod evicted", last.raw)
	}
	const blocked = ": eviction blocked by PodDisruptionBudgets web-a and web-b (more than one covers the pod, and the eviction API refuses to choose)"
	webs := 0
	for _, p := range last.Passed {
		if strings.Contains(p, "/web-") {
			webs++
			if !strings.HasSuffix(p, blocked) {
				t.Errorf("passed over %q, want it blocked by web-a and web-b", p)
			}
		}
	}
	if webs != 2 {
		t.Errorf("passed %q, want both web pods tried and blocked", last.Passed)
	}
	if del := watcher.waitDeleted(t, 1); len(del) != 1 || del[0].App != "api" {
		t.Errorf("deleted %+v, want api's pod only", del)
	}
}

// TestKillCountKillsOneOfEachController: KILL_COUNT=3 over three healthy Deployments of three
// pods kills one pod of each at a tick, never two of one, seen both in macaque's log and by a
// watch of the deletions.
func TestKillCountKillsOneOfEachController(t *testing.T) {
	ns, kubeconfig := deploy(t)
	apps := []string{"ka", "kb", "kc"}
	for _, app := range apps {
		createDeployment(t, ns, app, 3)
	}
	for _, app := range apps {
		waitReady(t, ns, app, 3)
	}
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_KILL_COUNT=3", "MACAQUE_SELECTOR=app in (ka,kb,kc)")
	full := func() int { // ticks that killed one pod of each Deployment
		n := 0
		for _, kills := range killsByTick(d.tickLines()) {
			if slices.Equal(appsOf(kills), apps) {
				n++
			}
		}
		return n
	}
	cluster.Eventually(t, guardTimeout, "3 ticks killing one pod of each of ka, kb and kc", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		if n := full(); n < 3 {
			return fmt.Errorf("%d such ticks; last log line: %s", n, d.Tail(1))
		}
		return nil
	})
	d.stop(t)
	lines := d.tickLines()
	total := 0
	for tick, kills := range killsByTick(lines) {
		total += len(kills)
		if got := appsOf(kills); len(kills) > 3 || len(slices.Compact(slices.Clone(got))) != len(kills) {
			t.Errorf("tick %s killed %q: want at most one pod of each Deployment", tick, kills)
		}
	}
	byName := map[string]deletion{}
	for _, del := range watcher.waitDeleted(t, total) {
		byName[del.Name] = del
	}
	if len(byName) != total {
		t.Errorf("%d deletions seen, %d kills reported", len(byName), total)
	}
	for tick, kills := range killsByTick(lines) {
		owners := map[string]string{}
		for _, pod := range kills {
			del, ok := byName[pod]
			if !ok {
				t.Errorf("tick %s: %s reported killed, not seen deleted", tick, pod)
				continue
			}
			if other, twice := owners[del.Owner]; twice {
				t.Errorf("tick %s: %s and %s both of %s", tick, other, pod, del.Owner)
			}
			owners[del.Owner] = pod
		}
	}
}

// killsByTick groups the pods reported killed by the tick that killed them.
func killsByTick(lines []tickLine) map[string][]string {
	out := map[string][]string{}
	for _, l := range lines {
		if l.Outcome == "killed" {
			out[l.Tick] = append(out[l.Tick], l.Pod)
		}
	}
	return out
}

// appsOf is the sorted app of each pod ("ka-5d8-x" is ka's).
func appsOf(pods []string) []string {
	var out []string
	for _, p := range pods {
		app, _, _ := strings.Cut(p, "-")
		out = append(out, app)
	}
	slices.Sort(out)
	return out
}

// graceWatcher records, for each pod of a namespace, the deletionGracePeriodSeconds of the
// first event that shows it being deleted: -1 when it went straight to DELETED without ever
// being seen terminating (a grace period of 0 deletes at once).
type graceWatcher struct {
	mu    sync.Mutex
	grace map[string]int64 // by pod name
}

func watchGrace(t *testing.T, ns string) *graceWatcher {
	t.Helper()
	gw := &graceWatcher{grace: map[string]int64{}}
	w, err := testCluster.Clientset.CoreV1().Pods(ns).Watch(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			p, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			gw.mu.Lock()
			if _, seen := gw.grace[p.Name]; !seen {
				switch {
				case p.DeletionTimestamp != nil && p.DeletionGracePeriodSeconds != nil:
					gw.grace[p.Name] = *p.DeletionGracePeriodSeconds
				case ev.Type == watch.Deleted:
					gw.grace[p.Name] = -1
				}
			}
			gw.mu.Unlock()
		}
	}()
	return gw
}

// of is what the watch saw of pod's deletion, and whether it saw it.
func (gw *graceWatcher) of(pod string) (int64, bool) {
	gw.mu.Lock()
	defer gw.mu.Unlock()
	g, ok := gw.grace[pod]
	return g, ok
}

// TestGracePeriodOverride: the victim of a pod whose own grace period is 30s is deleted with
// MACAQUE_GRACE_PERIOD's instead, as its deletionGracePeriodSeconds shows (7s; 0, a hard kill,
// which kube-apiserver records too before it removes the pod), and without the setting the
// pod's own 30s applies.
func TestGracePeriodOverride(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "slow", 3) // terminationGracePeriodSeconds defaults to 30
	waitReady(t, ns, "slow", 3)
	gw := watchGrace(t, ns)
	tests := []struct {
		setting string
		want    int64 // -1: deleted at once
		note    string
	}{
		{setting: "", want: 30},
		{setting: "7s", want: 7, note: "grace period 7s (MACAQUE_GRACE_PERIOD)"},
		{setting: "0", want: 0, note: "grace period 0s (MACAQUE_GRACE_PERIOD): a hard kill"},
	}
	for _, tt := range tests {
		t.Run("grace "+tt.setting, func(t *testing.T) {
			waitReady(t, ns, "slow", 3)
			d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=slow", "MACAQUE_GRACE_PERIOD="+tt.setting)
			killed := d.waitOutcomes(t, 0, 1, "killed", guardTimeout)
			d.stop(t)
			var victim tickLine
			for _, l := range killed {
				if l.Outcome == "killed" {
					victim = l
					break
				}
			}
			if (tt.note == "") != (victim.Note == "") || !strings.Contains(victim.Note, tt.note) {
				t.Errorf("note %q, want %q", victim.Note, tt.note)
			}
			var got int64
			cluster.Eventually(t, 10*time.Second, "the watch to see "+victim.Pod+" deleted", func(context.Context) error {
				var ok bool
				if got, ok = gw.of(victim.Pod); !ok {
					return fmt.Errorf("not yet")
				}
				return nil
			})
			if got != tt.want {
				t.Errorf("%s deleted with grace %d, want %d (-1: at once)", victim.Pod, got, tt.want)
			}
		})
	}
}

// TestShippedRoleStopsEvictModeAtStart: macaque.yml as shipped grants delete mode's verb only,
// so in evict mode the preflight's dry-run eviction stops macaque at once, exit 2, with one line
// naming MACAQUE_MODE and the rule to uncomment; delete mode starts and kills.
func TestShippedRoleStopsEvictModeAtStart(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil, evictMode)
	d.wantRefusedAtStart(t, `macaque: MACAQUE_MODE: evict: cannot evict pods in "`+ns+`"`)
	if logs := d.Logs(); len(logs) == 1 && !strings.Contains(logs[0], "uncomment that rule in macaque.yml's Role") {
		t.Errorf("stderr %q, want it to say which rule to uncomment", logs[0])
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Errorf("deleted %+v", del)
	}
	d = startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=web")
	d.waitOutcomes(t, 0, 1, "killed", guardTimeout)
	d.stop(t)
}
