package daemon_test

import (
	"slices"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/slackstub"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A token Slack rejects is a bad setting: macaque checks it with auth.test before the first
// tick and stops with one line naming the variable, rather than kill with nobody told.
func TestSlackRejectedTokenStopsMacaqueAtStart(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	before := podUIDs(t, ns)

	slack := slackstub.New(nil)
	defer slack.Close()
	// Every second, so a tick would come at once if the check let macaque start.
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SLACK_TOKEN="+slackstub.RevokedToken, "MACAQUE_CRONTAB=@every 1s")
	if code := d.wait(t, 30*time.Second); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	logs := d.Logs()
	want := "macaque: MACAQUE_SLACK_TOKEN: Slack rejected the token: invalid_auth"
	if len(logs) != 1 || logs[0] != want {
		t.Errorf("stderr %q, want the one line %q", logs, want)
	}
	if posts := slack.Posts(); len(posts) != 0 {
		t.Errorf("posted %+v with a rejected token", posts)
	}
	// The API server's own view, not a watch that may lag: the same pods, none terminating.
	if after := podUIDs(t, ns); !slices.Equal(after, before) {
		t.Errorf("pods %v after macaque exited, want %v untouched", after, before)
	}
}

// podUIDs lists the UIDs of the app=web pods in ns that are not terminating, sorted.
func podUIDs(t *testing.T, ns string) []string {
	t.Helper()
	pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			uids = append(uids, string(p.UID))
		}
	}
	slices.Sort(uids)
	return uids
}
