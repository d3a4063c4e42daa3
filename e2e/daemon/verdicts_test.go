package daemon_test

// Reports and verdicts that hold at scale and through change, on a real control plane: a tick
// of a hundred victims is one Slack message naming each, with every victim's verdict in its
// thread; a workload rolled out right after its kill is recovered, through the new ReplicaSet.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// TestRecoveredThroughARollout: the Deployment is rolled out right after its pod is killed, so
// the pod that brings it back comes from a new ReplicaSet, not the victim's; the verdict is
// recovered all the same, saying it got there through the rollout.
func TestRecoveredThroughARollout(t *testing.T) {
	ns, kubeconfig := deploy(t)
	// kwok has a replacement Ready within milliseconds: minReadySeconds holds the Deployment
	// short of full strength long enough for the rollout to start during the follow.
	createDeploymentWith(t, ns, "web", 3, func(d *appsv1.Deployment) { d.Spec.MinReadySeconds = 5 })
	waitReady(t, ns, "web", 3)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web", "MACAQUE_COOLDOWN=1h", "POD_NAMESPACE="+ns, "MACAQUE_RECOVERY_TIMEOUT=90s")
	watcher.waitDeleted(t, 1)
	patch := fmt.Sprintf(`{"spec":{"template":{"metadata":{"annotations":{"e2e.macaque.dev/rolled":"%d"}}}}}`, time.Now().UnixNano())
	if _, err := testCluster.Clientset.AppsV1().Deployments(ns).Patch(t.Context(), "web", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	verdict, killPost := verdictFor(t, d, slack, ":white_check_mark: recovered:", 120*time.Second)
	d.stop(t)
	k := parseKill(t, killPost)
	if !strings.HasPrefix(verdict.Text, ":white_check_mark: recovered:") || !strings.Contains(verdict.Text, "web lost "+k.pod) ||
		!strings.Contains(verdict.Text, "web back to 3/3") || !strings.Contains(verdict.Text, "through a rollout to web-") {
		t.Errorf("verdict %q, want web recovered to 3/3 through the rollout", verdict.Text)
	}
	if strings.Contains(verdict.Text, "through a rollout to "+strings.TrimPrefix(k.owner, "ReplicaSet/")+",") {
		t.Errorf("verdict %q names the victim's own ReplicaSet %s as the rollout's", verdict.Text, k.owner)
	}
}

// TestEveryVictimOfAHundredIsReportedWithItsVerdict: MACAQUE_KILL_COUNT=100 over 110 one-replica
// Deployments (with an hour's cooldown, so a second tick takes the last 10). Every pod the API
// server deleted is named in Slack in its tick's one message, and gets one verdict in that
// message's thread: none is dropped, although Slack hears of 110 kills within seconds.
func TestEveryVictimOfAHundredIsReportedWithItsVerdict(t *testing.T) {
	const fleet = 110
	ns, kubeconfig := deploy(t)
	for i := range fleet {
		createDeploymentWith(t, ns, fmt.Sprintf("app-%03d", i), 1, func(d *appsv1.Deployment) {
			d.Spec.Template.Labels["fleet"] = "yes"
		})
	}
	waitReadySelected(t, ns, "fleet=yes", fleet, 3*time.Minute)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=fleet=yes", "MACAQUE_KILL_COUNT=100", "MACAQUE_COOLDOWN=1h",
		"POD_NAMESPACE="+ns, "MACAQUE_CRONTAB=@every 5s", "MACAQUE_RECOVERY_TIMEOUT=120s")
	var deleted []deletion
	cluster.Eventually(t, 4*time.Minute, fmt.Sprintf("%d pods deleted and as many verdicts posted", fleet), func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		deleted = watcher.Deleted()
		verdicts := 0
		for _, p := range slack.Posts() {
			if verdictText.MatchString(p.Text) {
				verdicts++
			}
		}
		if len(deleted) < fleet || verdicts < fleet {
			return fmt.Errorf("%d pods deleted, %d verdicts posted", len(deleted), verdicts)
		}
		return nil
	})
	d.stop(t)
	checkEveryVictimReported(t, ns, deleted, slack.Posts())
}

// checkEveryVictimReported checks that each deleted pod is named by exactly one tick message and
// has exactly one verdict, a reply in that message's thread; and that the kills came in a few
// tick messages, not one message per victim.
func checkEveryVictimReported(t *testing.T, ns string, deleted []deletion, posts []slackstub.Post) {
	t.Helper()
	ticks := killReports(posts)
	withVictims := 0
	for _, p := range ticks {
		if strings.Contains(p.Text, "pod `"+ns+"/app-") {
			withVictims++
		}
	}
	if withVictims > 4 {
		t.Errorf("%d tick messages name victims, want one per tick (2 ticks kill)", withVictims)
	}
	for _, del := range deleted {
		name := "pod `" + ns + "/" + del.Name + "`"
		var tick slackstub.Post
		n := 0
		for _, p := range ticks {
			if strings.Contains(p.Text, name) {
				tick, n = p, n+1
			}
		}
		if n != 1 {
			t.Errorf("%s is named by %d tick messages, want 1", name, n)
			continue
		}
		replies := 0
		for _, p := range posts {
			if p.ThreadTS == tick.TS && verdictText.MatchString(p.Text) && strings.Contains(p.Text, " lost "+del.Name) {
				replies++
			}
		}
		if replies != 1 {
			t.Errorf("%s has %d verdicts in its tick's thread, want 1", del.Name, replies)
		}
	}
}
