package daemon_test

// Two macaque processes as the manifest's two replicas, each as macaque's ServiceAccount, elect
// a leader on the Lease macaque-leader that macaque.yml's Role grants: only the leader kills,
// the other takes over when it is killed, frozen or cut off from the Lease, and no tick ever
// has two kills.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/faultproxy"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The election's timing, as internal/election has it: a standby takes the lease a
// leaseDuration after it last saw it renewed, trying every retryPeriod stretched by up to 2.2.
const (
	leaseDuration = 15 * time.Second
	retryPeriod   = 2 * time.Second
	tickEvery     = 3 * time.Second
	deleteTimeout = 10 * time.Second // the killer's bound on a DELETE, which the lease must outlast
)

// replica is one of the two macaque processes and its name (POD_NAME, the Lease's holder).
type replica struct {
	*daemon
	name string
}

// startReplica runs macaque as replica name of a two-replica Deployment in ns, with the
// election on, 3 s ticks and the guard off, so that every tick of the leader kills.
func startReplica(t *testing.T, ns, kubeconfig, name string, slack *slackstub.Server) replica {
	t.Helper()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_LEADER_ELECTION=true", "POD_NAME="+name, "POD_NAMESPACE="+ns,
		"MACAQUE_CRONTAB=@every 3s", "MACAQUE_REQUIRE_HEALTHY=false", "MACAQUE_SELECTOR=app=web")
	return replica{d, name}
}

// twoReplicas deploys macaque.yml and a web Deployment of 4 pods, starts replica a, waits until
// it holds the Lease and has killed once, then starts replica b as its standby. With stuck, web
// is a ReplicaSet whose replacements never run (see createStuckReplicaSet), so no verdict comes
// before MACAQUE_RECOVERY_TIMEOUT: every kill stays followed.
func twoReplicas(t *testing.T, slack *slackstub.Server, proxyA, stuck bool) (ns string, a, b replica, watcher *podWatcher, proxy *faultproxy.Proxy) {
	t.Helper()
	ns, kubeconfig := deploy(t)
	if stuck {
		createStuckReplicaSet(t, ns, "web", 6)
	} else {
		createDeployment(t, ns, "web", 4)
		waitReady(t, ns, "web", 4)
	}
	watcher = watchDeletions(t, []string{ns})
	viaA := kubeconfig
	if proxyA {
		proxy, viaA = proxied(t, kubeconfig)
	}
	a = startReplica(t, ns, viaA, "macaque-a", slack)
	waitHolder(t, ns, "macaque-a", 30*time.Second)
	a.waitOutcomes(t, 0, 1, "killed", 30*time.Second)
	b = startReplica(t, ns, kubeconfig, "macaque-b", slack)
	b.waitLog(t, "macaque started", 30*time.Second)
	return ns, a, b, watcher, proxy
}

// createStuckReplicaSet makes a ReplicaSet app of n Running pods whose replacements never
// run: its pods are made bare on the kwok node and adopted, and its own template names no
// node, which no scheduler here assigns, so a replacement stays Pending.
func createStuckReplicaSet(t *testing.T, ns, app string, n int) {
	t.Helper()
	for i := range n {
		createPod(t, ns, fmt.Sprintf("%s-%d", app, i), app, true)
	}
	waitRunning(t, ns, "app="+app, n)
	replicas := int32(n)
	labels := map[string]string{"app": app}
	spec := podSpec()
	spec.NodeName = ""
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: app}, Spec: appsv1.ReplicaSetSpec{Replicas: &replicas,
		Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}}}
	if _, err := testCluster.Clientset.AppsV1().ReplicaSets(ns).Create(t.Context(), rs, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create replicaset %s/%s: %v", ns, app, err)
	}
	cluster.Eventually(t, 30*time.Second, "the ReplicaSet to adopt its pods", func(ctx context.Context) error {
		pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if metav1.GetControllerOf(&p) == nil {
				return fmt.Errorf("%s not adopted yet", p.Name)
			}
		}
		return nil
	})
}

// waitRunning waits until want pods matching selector in ns are Running.
func waitRunning(t *testing.T, ns, selector string, want int) {
	t.Helper()
	cluster.Eventually(t, 90*time.Second, fmt.Sprintf("%d running %s pods in %s", want, selector, ns), func(ctx context.Context) error {
		pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		if running < want {
			return fmt.Errorf("%d of %d pods running", running, len(pods.Items))
		}
		return nil
	})
}

// holder is who holds the Lease in ns now ("" for nobody or no Lease).
func holder(ctx context.Context, ns string) (string, error) {
	l, err := testCluster.Clientset.CoordinationV1().Leases(ns).Get(ctx, "macaque-leader", metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil || l.Spec.HolderIdentity == nil {
		return "", err
	}
	return *l.Spec.HolderIdentity, nil
}

// waitHolder waits until want holds the Lease in ns.
func waitHolder(t *testing.T, ns, want string, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, want+" to hold the Lease macaque-leader", func(ctx context.Context) error {
		h, err := holder(ctx, ns)
		if err == nil && h != want {
			err = fmt.Errorf("held by %q", h)
		}
		return err
	})
}

// waitLog waits until the process has logged msg, and returns when it did, by the test's clock.
func (d *daemon) waitLog(t *testing.T, msg string, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, fmt.Sprintf("the log line %q", msg), func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		if !slices.ContainsFunc(d.Logs(), func(l string) bool { return strings.Contains(l, `"msg":"`+msg+`"`) }) {
			return fmt.Errorf("not logged; last lines:\n%s", d.Tail(3))
		}
		return nil
	})
}

// checkNoTickKilledTwice checks the API server's deletions, as the watch saw them, against the
// replicas' reports: each was reported by one replica, and no two came within a second of each
// other, which two kills of one tick would (ticks are 3 s apart).
func checkNoTickKilledTwice(t *testing.T, watcher *podWatcher, replicas ...replica) {
	t.Helper()
	var lines []tickLine
	var kills []killLine
	for _, r := range replicas {
		lines = append(lines, r.tickLines()...)
		kills = append(kills, r.killLines(t)...)
	}
	checkReportedAreDeleted(t, lines, watcher)
	slices.SortFunc(kills, func(x, y killLine) int { return x.Deleted.Compare(y.Deleted) })
	for i := 1; i < len(kills); i++ {
		if gap := kills[i].Deleted.Sub(kills[i-1].Deleted); gap < time.Second {
			t.Errorf("two kills %v apart, as in one tick: %s at %s and %s at %s", gap,
				kills[i-1].Pod, kills[i-1].Deleted.Format("15:04:05.000"), kills[i].Pod, kills[i].Deleted.Format("15:04:05.000"))
		}
	}
}

func TestTwoReplicasOnlyTheLeaderKills(t *testing.T) {
	t.Parallel()
	_, a, b, watcher, _ := twoReplicas(t, nil, false, false)
	// 30 s of 3 s ticks, with the standby running beside the leader.
	a.waitOutcomes(t, len(a.tickLines()), 10, "killed", 45*time.Second)
	if lines := b.tickLines(); len(lines) != 0 {
		t.Errorf("the standby reported %d ticks, want none: %s", len(lines), lines[0].raw)
	}
	checkNoTickKilledTwice(t, watcher, a, b)
	if slices.ContainsFunc(b.Logs(), func(l string) bool { return strings.Contains(l, `"msg":"became the leader"`) }) {
		t.Errorf("the standby became the leader while the leader ran:\n%s", b.Tail(10))
	}
	// Both are ready (a standby is ready to take over), and each says whether it leads.
	for _, r := range []struct {
		replica
		leader string
	}{{a, "macaque_leader 1"}, {b, "macaque_leader 0"}} {
		addr := r.httpAddr(t)
		if code, body, err := get(t.Context(), addr, "/readyz"); err != nil || code != http.StatusOK {
			t.Errorf("%s's /readyz = %d %q (%v), want 200", r.name, code, body, err)
		}
		if _, body, err := get(t.Context(), addr, "/metrics"); err != nil || !strings.Contains(body, "\n"+r.leader+"\n") {
			t.Errorf("%s's /metrics has no %q (%v)", r.name, r.leader, err)
		}
	}
}

func TestTheStandbyTakesOverWhenTheLeaderIsKilled(t *testing.T) {
	t.Parallel()
	slack := slackstub.New(nil)
	t.Cleanup(slack.Close)
	ns, a, b, watcher, _ := twoReplicas(t, slack, false, true)
	// The leader writes the kills it follows on the Lease at each renewal: wait for a's first.
	first := a.killLines(t)[0].Pod
	cluster.Eventually(t, 5*time.Second, "a's kill on the Lease", func(ctx context.Context) error {
		l, err := testCluster.Clientset.CoordinationV1().Leases(ns).Get(ctx, "macaque-leader", metav1.GetOptions{})
		if err == nil && !strings.Contains(l.Annotations["chaos.macaque.dev/following"], `"pod":"`+first+`"`) {
			err = fmt.Errorf("annotations %v", l.Annotations)
		}
		return err
	})
	killedAt := time.Now()
	a.Signal(syscall.SIGKILL)
	<-a.Done()
	b.waitOutcomes(t, 0, 1, "killed", leaseDuration+3*retryPeriod+2*tickEvery)
	kills := b.killLines(t)
	took := kills[0].Deleted.Sub(killedAt)
	// The standby saw the last renewal up to 2.2 retry periods after it was made (its tries
	// are jittered as client-go's), takes the lease a leaseDuration after that, and kills at
	// its next tick.
	if bound := leaseDuration + 11*retryPeriod/5 + tickEvery + time.Second; took > bound {
		t.Errorf("the standby's first kill came %v after the leader was killed, want within %v", took, bound)
	}
	t.Logf("the standby's first kill came %v after SIGKILL of the leader", took.Round(time.Millisecond))
	waitHolder(t, ns, "macaque-b", 5*time.Second)
	checkNoTickKilledTwice(t, watcher, a, b)
	// a's kills were all still followed (their replacements never run): those on the Lease at its
	// last renewal end unknown, each said once by b, in the channel.
	killedByA := map[string]bool{}
	for _, k := range a.killLines(t) {
		killedByA[k.Pod] = true
	}
	cluster.Eventually(t, 10*time.Second, "b's verdicts on a's kills", func(context.Context) error {
		said := map[string]int{}
		for _, p := range slack.Posts() {
			if strings.HasPrefix(p.Text, ":grey_question: unknown: replicaset `"+ns+"/web`") && strings.Contains(p.Text, "leadership moved: macaque-a, which followed this kill, lost the lease before its verdict") {
				for pod := range killedByA {
					if strings.Contains(p.Text, pod) {
						said[pod]++
					}
				}
			}
		}
		if len(said) == 0 {
			return fmt.Errorf("none yet, of a's %d kills", len(killedByA))
		}
		for pod, n := range said {
			if n != 1 {
				t.Errorf("a's kill of %s has %d unknown verdicts, want 1", pod, n)
			}
		}
		if len(said) < len(killedByA)-1 { // the last may have come after a's last renewal
			return fmt.Errorf("verdicts on %d of a's %d kills", len(said), len(killedByA))
		}
		return nil
	})
	cluster.Eventually(t, 10*time.Second, "the takeover said in Slack", func(context.Context) error {
		for _, p := range slack.Posts() {
			if strings.HasPrefix(p.Text, ":crown: leader: `macaque-b` now holds the Lease macaque-leader") &&
				strings.Contains(p.Text, "from `macaque-a`, whose lease ran out") {
				return nil
			}
		}
		return fmt.Errorf("no takeover post among %d", len(slack.Posts()))
	})
}

func TestAFrozenLeaderNeverKillsBesideTheNewOne(t *testing.T) {
	t.Parallel()
	ns, a, b, watcher, _ := twoReplicas(t, nil, false, false)
	stoppedAt := time.Now()
	a.Signal(syscall.SIGSTOP)
	b.waitOutcomes(t, 0, 1, "killed", leaseDuration+3*retryPeriod+2*tickEvery)
	if frozen := time.Since(stoppedAt); frozen < 20*time.Second {
		time.Sleep(20*time.Second - frozen) // the 20 s freeze, whatever the takeover took
	}
	a.Signal(syscall.SIGCONT)
	resumed := time.Now()
	// Three of b's ticks with a awake beside it.
	b.waitOutcomes(t, len(b.tickLines()), 3, "killed", 5*tickEvery)
	a.waitLog(t, "lost the leadership: killing nothing until the lease is won again", 10*time.Second)
	for _, k := range a.killLines(t) {
		if k.Deleted.After(stoppedAt) {
			t.Errorf("the frozen leader killed %s at %s, after its SIGSTOP at %s", k.Pod, k.Deleted.Format("15:04:05.000"), stoppedAt.Format("15:04:05.000"))
		}
	}
	for _, l := range timed(t, a.tickLines()) {
		if !l.at.Before(stoppedAt) {
			t.Errorf("the frozen replica reported a tick due after its SIGSTOP (%s), want none: %s", l.Outcome, l.raw)
		}
	}
	waitHolder(t, ns, "macaque-b", time.Second)
	checkNoTickKilledTwice(t, watcher, a, b)
	t.Logf("SIGCONT at %s", resumed.Format("15:04:05.000"))
}

func TestALeaderCutOffFromTheLeaseStopsKillingBeforeItRunsOut(t *testing.T) {
	t.Parallel()
	ns, a, b, watcher, proxy := twoReplicas(t, nil, true, false)
	cut := proxy.Add(faultproxy.Rule{Name: "fail every Lease request", PathPrefix: "/apis/coordination.k8s.io/",
		Action: faultproxy.Fail, Status: http.StatusServiceUnavailable})
	cutAt := time.Now()
	a.waitMatched(t, cut, "a renewal of the Lease")
	// a still lists and kills through the proxy; only the Lease is cut.
	a.waitLog(t, "lost the leadership: killing nothing until the lease is won again", 20*time.Second)
	b.waitOutcomes(t, 0, 1, "killed", leaseDuration+3*retryPeriod+2*tickEvery)
	waitHolder(t, ns, "macaque-b", time.Second)
	// The lease runs from the start of a's last successful renewal, before the cut, so a kill
	// that started after cut + leaseDuration - deleteTimeout could outlive it: none may.
	last := cutAt.Add(leaseDuration - deleteTimeout)
	for _, k := range a.killLines(t) {
		if k.Deleted.After(last) {
			t.Errorf("the cut-off leader killed %s at %s, later than %s (the cut at %s)", k.Pod,
				k.Deleted.Format("15:04:05.000"), last.Format("15:04:05.000"), cutAt.Format("15:04:05.000"))
		}
	}
	firstB := b.killLines(t)[0].Deleted
	if firstB.Before(cutAt.Add(leaseDuration - retryPeriod)) {
		t.Errorf("the standby killed at %s, within the cut-off leader's lease (cut at %s)", firstB.Format("15:04:05.000"), cutAt.Format("15:04:05.000"))
	}
	refused := 0
	for _, l := range a.tickLines() {
		if l.Outcome == "error" && strings.Contains(l.Err, "not the leader") {
			refused++
		}
	}
	t.Logf("the cut-off leader refused %d kills before it stopped leading; the standby's first kill %v after the cut",
		refused, firstB.Sub(cutAt).Round(time.Millisecond))
	checkNoTickKilledTwice(t, watcher, a, b)
	cut.Remove()
}

// TestARoleWithoutTheLeaseStopsMacaqueAtStart: with the election on and the shipped Role on the
// Lease deleted, macaque stops at start, exit 2, with one line naming MACAQUE_LEADER_ELECTION
// and what the Role must grant, instead of waiting as a standby for ever.
func TestARoleWithoutTheLeaseStopsMacaqueAtStart(t *testing.T) {
	t.Parallel()
	ns, kubeconfig := deploy(t)
	if out, err := testCluster.Kubectl("delete", "-n", ns, "role", "macaque-election"); err != nil {
		t.Fatalf("kubectl delete role macaque-election: %v\n%s", err, out)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	as, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "macaque's ServiceAccount to be refused the Lease", func(ctx context.Context) error {
		_, err := as.CoordinationV1().Leases(ns).Get(ctx, "macaque-leader", metav1.GetOptions{})
		if !apierrors.IsForbidden(err) {
			return fmt.Errorf("get the Lease as macaque: %w", err)
		}
		return nil
	})
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_LEADER_ELECTION=true", "POD_NAMESPACE="+ns)
	d.wantRefusedAtStart(t, `macaque: MACAQUE_LEADER_ELECTION: cannot get the Lease macaque-leader in "`+ns+`", macaque's own namespace: its Role there must grant get, create and update on leases`)
}
