package daemon_test

// The cluster's name and the CloudEvents webhook, on the real binary against the real control
// plane: every Slack message, the verdict's log line and every Event macaque writes name the
// cluster, and a receiver gets one CloudEvent per kill and one per verdict, with the
// Authorization header read from a file.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
)

// cloudEvent is what the receiver reads of each POST: its headers and the event's attributes and data.
type cloudEvent struct {
	contentType, auth string
	SpecVersion       string         `json:"specversion"`
	ID                string         `json:"id"`
	Source            string         `json:"source"`
	Type              string         `json:"type"`
	Subject           string         `json:"subject"`
	Time              time.Time      `json:"time"`
	DataContentType   string         `json:"datacontenttype"`
	Data              map[string]any `json:"data"`
}

// eventReceiver is a CloudEvents receiver in the test, answering 202 to each POST.
type eventReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []cloudEvent
}

func newEventReceiver(t *testing.T) *eventReceiver {
	rc := &eventReceiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var e cloudEvent
		if err == nil {
			err = json.Unmarshal(body, &e)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		e.contentType, e.auth = r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		rc.mu.Lock()
		rc.events = append(rc.events, e)
		rc.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// Events are the events received so far, of type typ ("" for all).
func (rc *eventReceiver) Events(typ string) []cloudEvent {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []cloudEvent
	for _, e := range rc.events {
		if typ == "" || e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// TestClusterNameAndWebhook runs macaque with MACAQUE_CLUSTER_NAME, MACAQUE_WEBHOOK_URL and
// MACAQUE_WEBHOOK_AUTH_FILE, and Slack, over a 3-replica Deployment, until a kill's verdict:
// each Slack post starts with the name; the receiver got, in structured mode and with the
// header from the file, one dev.macaque.kill per pod the API server deleted and one
// dev.macaque.verdict for it, sourced in the cluster and namespace, about the pod; the verdict's
// log line and the Events' notes name the cluster.
func TestClusterNameAndWebhook(t *testing.T) {
	const name = "e2e-prod"
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	hook := newEventReceiver(t)
	authFile := filepath.Join(t.TempDir(), "authorization")
	if err := os.WriteFile(authFile, []byte("Bearer e2e-webhook-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An hour's cooldown: one kill of web, then skipped ticks (dev.macaque.tick) until stopped.
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web", "MACAQUE_COOLDOWN=1h", "POD_NAMESPACE="+ns,
		"MACAQUE_RECOVERY_TIMEOUT=90s", "MACAQUE_CLUSTER_NAME="+name, "MACAQUE_WEBHOOK_URL="+hook.URL+"/events",
		"MACAQUE_WEBHOOK_AUTH_FILE="+authFile)
	watcher.waitDeleted(t, 1)
	cluster.Eventually(t, 120*time.Second, "a verdict event and its Slack reply", func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		replies := 0
		for _, p := range slack.Posts() {
			if p.ThreadTS != "" {
				replies++
			}
		}
		if got := len(hook.Events("dev.macaque.verdict")); got == 0 || replies == 0 {
			return fmt.Errorf("%d verdict events, %d Slack replies; events so far %d", got, replies, len(hook.Events("")))
		}
		return nil
	})
	d.stop(t)

	checkSlackNamesTheCluster(t, slack.Posts(), name)
	source := "/macaque/clusters/" + name + "/namespaces/" + ns
	deleted := watcher.Deleted()
	kills, verdicts := hook.Events("dev.macaque.kill"), hook.Events("dev.macaque.verdict")
	if len(kills) != len(deleted) || len(verdicts) != len(deleted) {
		t.Fatalf("%d kill and %d verdict events for %d pods deleted %v, want one each per pod", len(kills), len(verdicts), len(deleted), deleted)
	}
	for _, del := range deleted {
		k, v := eventAbout(kills, del.Name), eventAbout(verdicts, del.Name)
		if k == nil || v == nil {
			t.Errorf("pod %s: kill event %v, verdict event %v; want one of each about it", del.Name, k, v)
			continue
		}
		if k.Source != source || k.Data["outcome"] != "killed" || k.Data["cluster"] != name || k.Data["namespace"] != ns || k.Data["deleted"] == nil {
			t.Errorf("kill event %+v, want source %s, outcome killed, cluster %s, namespace %s and when it was deleted", k, source, name, ns)
		}
		if v.Source != source || v.Data["verdict"] != "recovered" || v.Data["uid"] != k.Data["uid"] || v.Data["cluster"] != name {
			t.Errorf("verdict event %+v, want source %s, recovered, about the kill's uid %v", v, source, k.Data["uid"])
		}
	}
	checkEveryEventIsStructured(t, hook.Events(""))
	checkLogAndEventsNameTheCluster(t, d, ns, name)
}

// eventAbout is the one event of events about pod, or nil.
func eventAbout(events []cloudEvent, pod string) *cloudEvent {
	var found *cloudEvent
	for i, e := range events {
		if e.Subject == pod {
			if found != nil {
				return nil // two: not one
			}
			found = &events[i]
		}
	}
	return found
}

// checkSlackNamesTheCluster checks that every post starts with [name].
func checkSlackNamesTheCluster(t *testing.T, posts []slackstub.Post, name string) {
	t.Helper()
	if len(posts) < 2 {
		t.Errorf("%d Slack posts, want the kill and its verdict at least", len(posts))
	}
	for _, p := range posts {
		if !strings.HasPrefix(p.Text, "["+name+"] ") {
			t.Errorf("Slack post %q does not start with [%s]", p.Text, name)
		}
	}
}

// checkEveryEventIsStructured checks each event's attributes: CloudEvents 1.0 in structured
// mode, JSON data, an id of its own, the Authorization header from the file.
func checkEveryEventIsStructured(t *testing.T, events []cloudEvent) {
	t.Helper()
	ids := map[string]bool{}
	for _, e := range events {
		if e.contentType != "application/cloudevents+json" || e.SpecVersion != "1.0" || e.DataContentType != "application/json" ||
			e.ID == "" || ids[e.ID] || e.Time.IsZero() || e.auth != "Bearer e2e-webhook-token" {
			t.Errorf("event %+v: want Content-Type application/cloudevents+json, specversion 1.0, JSON data, a unique id, a time, "+
				"and the Authorization header from the file", e)
		}
		ids[e.ID] = true
		if e.Type != "dev.macaque.kill" && e.Type != "dev.macaque.verdict" && e.Type != "dev.macaque.tick" {
			t.Errorf("event of type %q", e.Type)
		}
	}
}

// checkLogAndEventsNameTheCluster checks the verdict's log line and the notes of the Events
// macaque wrote (the kill's and the verdict's).
func checkLogAndEventsNameTheCluster(t *testing.T, d *daemon, ns, name string) {
	t.Helper()
	verdicts := 0
	for _, line := range d.Logs() {
		if strings.Contains(line, `"msg":"recovery verdict"`) {
			verdicts++
			if !strings.Contains(line, `"cluster":"`+name+`"`) {
				t.Errorf("verdict log line %s does not name the cluster", line)
			}
		}
	}
	if verdicts == 0 {
		t.Error("no recovery verdict line in the log")
	}
	events, err := macaqueEvents(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]bool{}
	for _, e := range events {
		if e.ReportingController == "" || !strings.HasPrefix(e.Reason, "Chaos") {
			continue
		}
		reasons[e.Reason] = true
		if !strings.HasPrefix(e.Note, "["+name+"] ") {
			t.Errorf("%s Event's note %q does not start with [%s]", e.Reason, e.Note, name)
		}
	}
	if !reasons["ChaosKill"] || !reasons["ChaosRecovered"] {
		t.Errorf("Events of reasons %v, want ChaosKill and ChaosRecovered", reasons)
	}
}
