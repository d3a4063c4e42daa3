// Package daemon_test runs the real macaque binary against a real control plane, as the
// ServiceAccount that the shipped macaque.yml creates, so the RBAC we ship is what is tested.
package daemon_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// killedRE matches the Slack report of a kill.
var killedRE = regexp.MustCompile("^:monkey_face: killed pod `([^/`]+)/([^`]+)` \\(([^,]+), node ([^)]+)\\), 1 of (\\d+) candidates")

// kill is a parsed kill report.
type kill struct{ namespace, pod, owner, node string }

func parseKill(t *testing.T, p slackstub.Post) kill {
	t.Helper()
	m := killedRE.FindStringSubmatch(p.Text)
	if m == nil {
		t.Fatalf("Slack post %q is not a kill report", p.Text)
	}
	return kill{namespace: m[1], pod: m[2], owner: m[3], node: m[4]}
}

func TestKillsExactlyOneInScopePodPerTick(t *testing.T) {
	ns, kubeconfig := deploy(t)
	otherNS := testCluster.Namespace(t)
	createDeployment(t, ns, "web", 3)
	createDeployment(t, ns, "api", 2)
	createDeployment(t, otherNS, "web", 2)
	waitReady(t, ns, "web", 3)
	waitReady(t, ns, "api", 2)
	waitReady(t, otherNS, "web", 2)

	watcher := watchDeletions(t, []string{ns, otherNS})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web")
	d.waitPosts(t, slack, 3)
	d.stop(t)
	posts := slack.Posts() // a tick may have fired while we stopped

	var kills []kill
	for _, p := range killReports(posts) {
		if p.Channel != "C0E2E" || p.Token != "xoxb-e2e" {
			t.Errorf("post to channel %q with token %q", p.Channel, p.Token)
		}
		kills = append(kills, parseKill(t, p))
	}
	// Every kill reported is a deletion the API server saw, and there is no other.
	deleted := watcher.waitDeleted(t, len(kills))
	if len(deleted) != len(kills) {
		t.Fatalf("%d pods deleted for %d ticks reported: %+v", len(deleted), len(kills), deleted)
	}
	byName := map[string]deletion{}
	for _, del := range deleted {
		if del.Namespace != ns || del.App != "web" {
			t.Errorf("deleted %s/%s (app=%s), outside namespace %s and selector app=web", del.Namespace, del.Name, del.App, ns)
		}
		byName[del.Name] = del
	}
	for _, k := range kills {
		del, ok := byName[k.pod]
		if !ok {
			t.Errorf("reported killing %s/%s, but the API server saw no such deletion", k.namespace, k.pod)
			continue
		}
		// The report says what really happened to which pod.
		if k.namespace != ns || k.owner != del.Owner || k.node != del.Node {
			t.Errorf("report %+v, but the pod was %s/%s owned by %s on %s", k, del.Namespace, del.Name, del.Owner, del.Node)
		}
		if !strings.HasPrefix(k.owner, "ReplicaSet/web-") {
			t.Errorf("owner %q, want the web ReplicaSet", k.owner)
		}
	}
	waitReady(t, ns, "web", 3) // the Deployment recovers
}

func TestNeverTouchesOwnTerminatingOrPendingPods(t *testing.T) {
	ns, kubeconfig := deploy(t)
	self := createPod(t, ns, "macaque-self", "web", true)
	held := createPod(t, ns, "held", "web", true, "e2e.macaque/hold")
	createPod(t, ns, "pending", "web", false)
	waitReady(t, ns, "web", 2)
	if err := testCluster.Clientset.CoreV1().Pods(ns).Delete(t.Context(), "held", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() { // let the namespace go
		patch := []byte(`{"metadata":{"finalizers":null}}`)
		_, _ = testCluster.Clientset.CoreV1().Pods(ns).Patch(context.Background(), "held", types.MergePatchType, patch, metav1.PatchOptions{})
	}()
	waitReady(t, ns, "web", 1) // held is Terminating, only macaque-self is Ready

	watcher := watchDeletions(t, []string{ns}, held)
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web", "POD_NAME="+self.Name, allowOrphans)
	for _, p := range d.waitPosts(t, slack, 2) {
		if !strings.HasPrefix(p.Text, ":zzz: no Running pod to kill in namespace `"+ns+"` matching `app=web`") {
			t.Errorf("post %q, want a no-candidates report", p.Text)
		}
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Fatalf("deleted %+v with no candidate in scope", del)
	}

	// One real candidate appears: it is the one killed, and the rest stay.
	victim := createPod(t, ns, "victim", "web", true)
	cluster.Eventually(t, 30*time.Second, "victim killed", func(context.Context) error {
		for _, p := range slack.Posts() {
			if strings.HasPrefix(p.Text, ":monkey_face: killed pod `"+ns+"/victim`") {
				return nil
			}
		}
		return fmt.Errorf("no kill report for victim")
	})
	d.stop(t)
	for _, del := range watcher.Deleted() {
		if del.UID != string(victim.UID) {
			t.Errorf("deleted %s/%s, want only the victim", del.Namespace, del.Name)
		}
	}
	for _, name := range []string{"macaque-self", "held", "pending"} {
		p, err := testCluster.Clientset.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("pod %s: %v", name, err)
		} else if name != "held" && p.DeletionTimestamp != nil {
			t.Errorf("pod %s is being deleted", name)
		}
	}
}

func TestDryRunDeletesNothing(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_DRY_RUN=true", "MACAQUE_SELECTOR=app=web")
	posts := d.waitPosts(t, slack, 2)
	d.stop(t)
	for _, p := range posts {
		if !strings.HasPrefix(p.Text, ":see_no_evil: dry run: would have killed pod `"+ns+"/web-") {
			t.Errorf("post %q, want a dry-run report", p.Text)
		}
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Errorf("dry run deleted %+v", del)
	}
}

// TestForbiddenDeleteIsReportedAndSurvived tightens macaque's Role while it runs: each tick
// must then report forbidden (RBAC's own refusal, quoted) and kill nothing, macaque must keep
// running, and kills must resume once the Role is restored. (A Role without delete at start
// stops macaque instead: TestRoleWithoutDeleteStopsMacaqueAtStart.)
func TestForbiddenDeleteIsReportedAndSurvived(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack)
	d.waitOutcomes(t, 0, 1, "killed", 30*time.Second) // the shipped Role kills

	setRoleVerbs(t, ns, "list") // someone tightened the Role: macaque may look but not kill
	waitCanI(t, kubeconfig, "delete", "pods", ns, "no")
	// A tick in flight when the authorizer changed its mind may still kill; count from the
	// first forbidden one.
	mark := len(d.tickLines())
	lines := d.waitOutcomes(t, mark, 2, "forbidden", 30*time.Second)
	first := slices.IndexFunc(lines, func(l tickLine) bool { return l.Outcome == "forbidden" })
	mark += first
	deletedBefore := len(watcher.Deleted())
	for _, l := range d.waitOutcomes(t, mark, 3, "forbidden", 30*time.Second) {
		if l.Outcome != "forbidden" || !strings.Contains(l.Err, `cannot delete resource "pods"`) {
			t.Errorf("tick %s, want forbidden quoting RBAC's refusal", l.raw)
		}
	}
	if del := watcher.Deleted(); len(del) != deletedBefore {
		t.Fatalf("deleted %+v without permission (%d deletions before the first forbidden tick)", del, deletedBefore)
	}
	forbidden := 0
	for _, p := range slack.Posts() {
		if strings.HasPrefix(p.Text, ":no_entry: forbidden to kill pod `"+ns+"/web-") {
			forbidden++
			if !strings.Contains(p.Text, "nothing was killed") {
				t.Errorf("post %q, want it to say nothing was killed", p.Text)
			}
		}
	}
	if forbidden == 0 {
		t.Errorf("no forbidden report in Slack posts %+v", slack.Posts())
	}
	if !d.running() {
		t.Fatal("macaque exited on Forbidden")
	}

	setRoleVerbs(t, ns, "list", "delete") // fixed: kills resume
	waitCanI(t, kubeconfig, "delete", "pods", ns, "yes")
	mark = len(d.tickLines())
	d.waitOutcomes(t, mark, 1, "killed", 30*time.Second)
	cluster.Eventually(t, 10*time.Second, "the watch to see the kill once the Role allows it", func(context.Context) error {
		if n := len(watcher.Deleted()); n <= deletedBefore {
			return fmt.Errorf("%d deletions, as many as while forbidden", n)
		}
		return nil
	})
	d.stop(t)
}

// TestRoleWithoutDeleteStopsMacaqueAtStart starts macaque with a Role that lets it list but not
// delete: its preflight (a server-side dry-run delete) must stop it at once, exit 2, with one
// line naming the setting and the missing verb, rather than report forbidden at every tick.
func TestRoleWithoutDeleteStopsMacaqueAtStart(t *testing.T) {
	ns, kubeconfig := deploy(t)
	bystander := createPod(t, ns, "bystander", "web", true)
	setRoleVerbs(t, ns, "list")
	waitCanI(t, kubeconfig, "delete", "pods", ns, "no")
	watcher := watchDeletions(t, []string{ns})
	d := startMacaque(t, kubeconfig, nil)
	d.wantRefusedAtStart(t, `macaque: MACAQUE_NAMESPACE: cannot delete pods in "`+ns+`"`)
	if del := watcher.Deleted(); len(del) != 0 {
		t.Errorf("deleted %+v", del)
	}
	if p, err := testCluster.Clientset.CoreV1().Pods(ns).Get(t.Context(), "bystander", metav1.GetOptions{}); err != nil ||
		p.UID != bystander.UID || p.DeletionTimestamp != nil {
		t.Errorf("bystander: %v, %+v", err, p.ObjectMeta)
	}
}

// waitCanI polls kubectl auth can-i as kubeconfig's user until the authorizer answers want
// ("yes" or "no"): RBAC sees a changed Role a moment after the update returns.
func waitCanI(t *testing.T, kubeconfig, verb, resource, ns, want string) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, fmt.Sprintf("can-i %s %s -n %s to be %q", verb, resource, ns, want), func(ctx context.Context) error {
		out, err := testCluster.KubectlAs(ctx, kubeconfig, "auth", "can-i", verb, resource, "-n", ns)
		got := strings.TrimSpace(out)
		switch {
		case got == want:
		case err != nil:
			return fmt.Errorf("%q (%w)", got, err)
		default:
			return fmt.Errorf("%q (<nil>)", got)
		}
		return nil
	})
}

// setRoleVerbs replaces the verbs of macaque's Role on pods, keeping its other rules (the
// unbind deletes macaque's RoleBinding in ns and waits until the authorizer no longer lets
// macaque list pods there; the func it returns puts the same binding back and waits until it does.
func unbind(t *testing.T, kubeconfig, ns string) (restore func()) {
	t.Helper()
	bindings := testCluster.Clientset.RbacV1().RoleBindings(ns)
	rb, err := bindings.Get(t.Context(), "macaque", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := bindings.Delete(t.Context(), rb.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitCanI(t, kubeconfig, "list", "pods", ns, "no")
	return func() {
		t.Helper()
		restored := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: rb.Name, Labels: rb.Labels, Annotations: rb.Annotations},
			RoleRef:    rb.RoleRef,
			Subjects:   rb.Subjects,
		}
		if _, err := bindings.Create(t.Context(), restored, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitCanI(t, kubeconfig, "list", "pods", ns, "yes")
	}
}

// guard's get on workloads).
func setRoleVerbs(t *testing.T, ns string, verbs ...string) {
	t.Helper()
	roles := testCluster.Clientset.RbacV1().Roles(ns)
	role, err := roles.Get(t.Context(), "macaque", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rules := []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: verbs}}
	for _, r := range role.Rules {
		if !slices.Contains(r.Resources, "pods") {
			rules = append(rules, r)
		}
	}
	role.Rules = rules
	if _, err := roles.Update(t.Context(), role, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestServiceAccountIsConfinedToItsNamespace(t *testing.T) {
	ns, kubeconfig := deploy(t)
	otherNS := testCluster.Namespace(t)
	createPod(t, otherNS, "bystander", "web", true)
	tests := []struct {
		verb, namespace, want string
	}{
		{"list", ns, "yes"},
		{"delete", ns, "yes"},
		{"watch", ns, "yes"}, // the recovery verdict follows the replacement
		{"watch", otherNS, "no"},
		{"get", ns, "no"}, // macaque reads its victim back through list
		{"create", ns, "no"},
		{"list", otherNS, "no"},
		{"delete", otherNS, "no"},
	}
	for _, tt := range tests {
		t.Run(tt.verb+" pods in "+tt.namespace, func(t *testing.T) {
			out, _ := testCluster.KubectlAs(t.Context(), kubeconfig, "auth", "can-i", tt.verb, "pods", "-n", tt.namespace)
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("can-i %s pods -n %s = %q, want %q", tt.verb, tt.namespace, got, tt.want)
			}
		})
	}
	// The steady-state guard reads the workloads above a pod: get on those kinds, nothing more.
	for _, tt := range []struct{ verb, resource, namespace, want string }{
		{"get", "replicasets.apps", ns, "yes"}, {"get", "deployments.apps", ns, "yes"}, {"get", "statefulsets.apps", ns, "yes"},
		{"get", "daemonsets.apps", ns, "yes"}, {"get", "replicationcontrollers", ns, "yes"},
		{"watch", "replicasets.apps", ns, "yes"}, {"watch", "deployments.apps", ns, "yes"}, // the recovery verdict's watches
		{"list", "deployments.apps", ns, "no"}, {"watch", "replicasets.apps", otherNS, "no"}, {"update", "deployments.apps", ns, "no"},
		{"delete", "statefulsets.apps", ns, "no"}, {"get", "jobs.batch", ns, "no"}, {"get", "deployments.apps", otherNS, "no"},
	} {
		t.Run(tt.verb+" "+tt.resource+" in "+tt.namespace, func(t *testing.T) {
			out, _ := testCluster.KubectlAs(t.Context(), kubeconfig, "auth", "can-i", tt.verb, tt.resource, "-n", tt.namespace)
			if got := strings.TrimSpace(out); got != tt.want {
				t.Errorf("can-i %s %s -n %s = %q, want %q", tt.verb, tt.resource, tt.namespace, got, tt.want)
			}
		})
	}
	out, err := testCluster.KubectlAs(t.Context(), kubeconfig, "delete", "pod", "bystander", "-n", otherNS)
	if err == nil || !strings.Contains(err.Error()+out, `cannot delete resource "pods"`) {
		t.Errorf("deleting a pod in %s as macaque: %v, %q; want Forbidden", otherNS, err, out)
	}

	// Pointed at a namespace its Role does not cover, macaque stops at start with one clear line.
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_NAMESPACE="+otherNS)
	d.wantRefusedAtStart(t, `macaque: MACAQUE_NAMESPACE: cannot list pods in "`+otherNS+`"`)
}

func TestSIGTERMMidRunExitsZero(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	notify := make(chan slackstub.Post, 16)
	slack := slackstub.New(notify)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_CRONTAB=@every 1s")
	select {
	case <-notify:
	case <-time.After(30 * time.Second):
		t.Fatal("no report within 30s")
	}
	d.Signal(syscall.SIGTERM)
	if code := d.wait(t, 25*time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	logs := strings.Join(d.Logs(), "\n")
	if !strings.Contains(logs, `"msg":"macaque stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}
}
