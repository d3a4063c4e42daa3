package daemon_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// recoveredRE matches a recovered verdict: the workload, the victim, the replacement and the
// three durations.
var recoveredRE = regexp.MustCompile("^:white_check_mark: recovered: [a-z]+ `[^/`]+/([^`]+)`: [^ ]+ lost ([^:]+): replacement ([^ ]+) created in ([0-9.]+) s, Ready in ([0-9.]+) s, [^ ]+ back to (\\d+)/(\\d+) in ([0-9.]+) s")

// verdictFor waits for the first verdict post that starts with prefix, and returns it with the
// kill post whose thread it is in, failing if it is in none.
func verdictFor(t *testing.T, d *daemon, slack *slackstub.Server, prefix string, timeout time.Duration) (verdict, kill slackstub.Post) {
	t.Helper()
	cluster.Eventually(t, timeout, "a verdict starting "+prefix, func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		var seen []string
		for _, p := range slack.Posts() {
			if strings.HasPrefix(p.Text, prefix) {
				verdict = p
				return nil
			}
			seen = append(seen, p.Text)
		}
		return fmt.Errorf("posts %q", seen)
	})
	for _, p := range slack.Posts() {
		if p.TS == verdict.ThreadTS && verdict.ThreadTS != "" {
			return verdict, p
		}
	}
	t.Fatalf("verdict %q (thread_ts %q) is in the thread of no kill", verdict.Text, verdict.ThreadTS)
	return verdict, kill
}

// TestRecoveredVerdictOfADeploymentKill kills a pod of a 3-replica Deployment and checks that
// its verdict comes, as a reply in the kill's Slack thread, naming the victim, a replacement of
// the same ReplicaSet, and plausible durations: positive, Ready not before created, the full
// strength not before Ready, all under the timeout; and that the log has it as one line.
func TestRecoveredVerdictOfADeploymentKill(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web", "MACAQUE_CRONTAB=@every 5s", "MACAQUE_RECOVERY_TIMEOUT=60s")
	verdict, killPost := verdictFor(t, d, slack, ":white_check_mark: recovered:", 90*time.Second)
	k := parseKill(t, killPost)
	m := recoveredRE.FindStringSubmatch(verdict.Text)
	if m == nil {
		t.Fatalf("verdict %q does not say what recovered how fast", verdict.Text)
	}
	if m[1] != "web" || m[2] != k.pod || m[3] == k.pod || !strings.HasPrefix(m[3], strings.TrimPrefix(k.owner, "ReplicaSet/")+"-") {
		t.Errorf("verdict %q: want web lost %s, replaced by a pod of %s", verdict.Text, k.pod, k.owner)
	}
	if verdict.Broadcast {
		t.Error("a recovered verdict is broadcast to the channel, want it in the thread only")
	}
	created, _ := strconv.ParseFloat(m[4], 64)
	ready, _ := strconv.ParseFloat(m[5], 64)
	full, _ := strconv.ParseFloat(m[8], 64)
	if !(created > 0 && ready >= created && full >= ready && full < 60) || m[6] != "3" || m[7] != "3" {
		t.Errorf("verdict %q: want 0 < created <= ready <= full < 60s, back to 3/3", verdict.Text)
	}
	line := ""
	for _, l := range d.Logs() {
		if strings.Contains(l, `"msg":"recovery verdict"`) && strings.Contains(l, `"pod":"`+k.pod+`"`) {
			line = l
		}
	}
	if !strings.Contains(line, `"verdict":"recovered"`) || !strings.Contains(line, `"created_seconds":`) || !strings.Contains(line, `"full_strength_seconds":`) {
		t.Errorf("log line %q, want the verdict with its three durations", line)
	}
	waitEvent(t, ns, "ChaosRecovered", "Normal", "Deployment/web")
	d.stop(t)
}

// TestNotRecoveredVerdictSaysWhatIsMissing kills a pod of a Deployment whose replacement a
// ResourceQuota refuses, and checks that after MACAQUE_RECOVERY_TIMEOUT the verdict is not
// recovered, in the kill's thread and broadcast to the channel, saying what is missing and why.
func TestNotRecoveredVerdictSaysWhatIsMissing(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "stuck", 3)
	waitReady(t, ns, "stuck", 3)
	quotaRefusingReplacements(t, ns, 3)
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=stuck", "MACAQUE_CRONTAB=@every 3s", "MACAQUE_RECOVERY_TIMEOUT=10s")
	verdict, killPost := verdictFor(t, d, slack, ":rotating_light: not recovered:", 90*time.Second)
	k := parseKill(t, killPost)
	if !verdict.Broadcast {
		t.Error("a not recovered verdict is not broadcast to the channel")
	}
	for _, want := range []string{"stuck lost " + k.pod, "stuck: 2/3 ready after 10s", "no replacement created", "exceeded quota"} {
		if !strings.Contains(verdict.Text, want) {
			t.Errorf("verdict %q, want it to say %q", verdict.Text, want)
		}
	}
	waitEvent(t, ns, "ChaosNotRecovered", "Warning", "Deployment/stuck")
	d.stop(t)
}

// TestStatefulSetKillIsMatchedToItsSameNameReplacement kills a pod of a StatefulSet and checks
// that the verdict names the pod of the same name, recreated, as its replacement.
func TestStatefulSetKillIsMatchedToItsSameNameReplacement(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createStatefulSet(t, ns, "db", 3)
	waitReady(t, ns, "db", 3)
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=db", "MACAQUE_CRONTAB=@every 5s", "MACAQUE_RECOVERY_TIMEOUT=60s")
	verdict, killPost := verdictFor(t, d, slack, ":white_check_mark: recovered:", 90*time.Second)
	k := parseKill(t, killPost)
	m := recoveredRE.FindStringSubmatch(verdict.Text)
	if m == nil || m[1] != "db" || m[2] != k.pod || m[3] != k.pod {
		t.Errorf("verdict %q: want db lost %s, replaced by %s (the same name)", verdict.Text, k.pod, k.pod)
	}
	d.stop(t)
}

// TestNotRecoveredStatefulSetQuotesItsLatestEvent kills a pod of a StatefulSet whose
// replacement a ResourceQuota refuses, with the Role's optional list on events granted (as
// macaque.yml's comment says to), and checks that the not recovered verdict quotes the
// StatefulSet's latest Event: a StatefulSet has no condition that says it could not create a
// pod, so only its Events can say why. It proves the Events are found by the field selector
// regarding.uid on a real API server.
func TestNotRecoveredStatefulSetQuotesItsLatestEvent(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createStatefulSet(t, ns, "db", 3)
	waitReady(t, ns, "db", 3)
	quotaRefusingReplacements(t, ns, 3)
	roles := testCluster.Clientset.RbacV1().Roles(ns)
	role, err := roles.Get(t.Context(), "macaque", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	granted := false
	for i, r := range role.Rules {
		if slices.Contains(r.APIGroups, "events.k8s.io") && slices.Contains(r.Resources, "events") {
			role.Rules[i].Verbs = append(role.Rules[i].Verbs, "list")
			granted = true
		}
	}
	if !granted {
		t.Fatalf("macaque.yml's Role has no rule on events.k8s.io events to add list to: %+v", role.Rules)
	}
	if _, err := roles.Update(t.Context(), role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCanI(t, kubeconfig, "list", "events.events.k8s.io", ns, "yes")
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=db", "MACAQUE_CRONTAB=@every 3s", "MACAQUE_RECOVERY_TIMEOUT=10s")
	verdict, killPost := verdictFor(t, d, slack, ":rotating_light: not recovered:", 90*time.Second)
	k := parseKill(t, killPost)
	for _, want := range []string{"db lost " + k.pod, "db: 2/3 ready after 10s", "no replacement created",
		"StatefulSet db's latest event: Warning FailedCreate", "exceeded quota"} { // not macaque's own ChaosSkipped
		if !strings.Contains(verdict.Text, want) {
			t.Errorf("verdict %q, want it to say %q", verdict.Text, want)
		}
	}
	d.stop(t)
}

// createStatefulSet creates a StatefulSet of replicas pods labelled app=name, started in
// parallel.
func createStatefulSet(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.StatefulSetSpec{
			Replicas: &replicas, ServiceName: name, Selector: &metav1.LabelSelector{MatchLabels: labels},
			PodManagementPolicy: appsv1.ParallelPodManagement,
			Template:            corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()},
		},
	}
	if _, err := testCluster.Clientset.AppsV1().StatefulSets(ns).Create(t.Context(), sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// quotaRefusingReplacements makes, once the running pods of ns are counted, a quota of one
// BestEffort pod fewer: it leaves them be, but refuses the replacement of any of them.
func quotaRefusingReplacements(t *testing.T, ns string, running int64) {
	t.Helper()
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "one-pod-short"},
		Spec: corev1.ResourceQuotaSpec{
			Hard:   corev1.ResourceList{corev1.ResourcePods: *resource.NewQuantity(running-1, resource.DecimalSI)},
			Scopes: []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort},
		},
	}
	if _, err := testCluster.Clientset.CoreV1().ResourceQuotas(ns).Create(t.Context(), quota, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, fmt.Sprintf("the quota controller to count the %d pods", running), func(ctx context.Context) error {
		q, err := testCluster.Clientset.CoreV1().ResourceQuotas(ns).Get(ctx, quota.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if used := q.Status.Used[corev1.ResourcePods]; used.Value() != running {
			return fmt.Errorf("status %+v", q.Status)
		}
		return nil
	})
}

// waitEvent waits for an Event of reason and type on the workload regarding ("Kind/name") in ns.
func waitEvent(t *testing.T, ns, reason, typ, regarding string) {
	t.Helper()
	cluster.Eventually(t, 20*time.Second, fmt.Sprintf("a %s Event %s on %s", typ, reason, regarding), func(ctx context.Context) error {
		events, err := testCluster.Clientset.EventsV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		var seen []string
		for _, e := range events.Items {
			on := e.Regarding.Kind + "/" + e.Regarding.Name
			if e.Reason == reason && e.Type == typ && on == regarding {
				return nil
			}
			seen = append(seen, e.Type+" "+e.Reason+" on "+on)
		}
		return fmt.Errorf("events %q", seen)
	})
}
