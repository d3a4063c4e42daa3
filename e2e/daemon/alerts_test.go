package daemon_test

// The alert gate on a real control plane with a real Alertmanager (Debian's
// prometheus-alertmanager, which .ci/run installs): an alert fired through Alertmanager's own API
// holds the kills, its resolution lets them resume, and an Alertmanager that stops answering
// stops them.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
)

// alertmanagerBin is Debian's Alertmanager.
const alertmanagerBin = "/usr/bin/prometheus-alertmanager"

// alertTimeout bounds each phase of the alert tests: ticks come every 2 seconds.
const alertTimeout = 60 * time.Second

// alertmanagerConfig routes every alert to a receiver that sends nothing.
const alertmanagerConfig = `route:
  receiver: "null"
receivers:
  - name: "null"
`

// alertmanager is a running Alertmanager of the test's own.
type alertmanager struct {
	url  string
	cmd  *exec.Cmd
	done chan struct{}
	mu   sync.Mutex
	log  bytes.Buffer
}

// Write keeps Alertmanager's output, for a failure's message.
func (am *alertmanager) Write(p []byte) (int, error) {
	am.mu.Lock()
	defer am.mu.Unlock()
	return am.log.Write(p)
}

// output is what Alertmanager has written so far.
func (am *alertmanager) output() string {
	am.mu.Lock()
	defer am.mu.Unlock()
	return am.log.String()
}

// startAlertmanager runs Alertmanager on a free loopback port with its own configuration and
// storage, no cluster, until the test ends, and waits until it is ready.
func startAlertmanager(t *testing.T) *alertmanager {
	t.Helper()
	if _, err := os.Stat(alertmanagerBin); err != nil {
		t.Fatalf("the alert gate's e2e tests need a real Alertmanager: %v (apt-get install prometheus-alertmanager, as .ci/run does)", err)
	}
	dir := t.TempDir()
	config := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(config, []byte(alertmanagerConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	am := &alertmanager{url: "http://" + addr, done: make(chan struct{})}
	am.cmd = exec.Command(alertmanagerBin, "--config.file="+config, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	am.cmd.Stdout, am.cmd.Stderr = am, am
	if err := am.cmd.Start(); err != nil {
		t.Fatalf("start Alertmanager: %v", err)
	}
	go func() {
		_ = am.cmd.Wait() // its exit is what done says; the log says why
		close(am.done)
	}()
	t.Cleanup(func() {
		am.stop(t)
		if t.Failed() {
			t.Logf("Alertmanager's log:\n%s", am.output())
		}
	})
	cluster.Eventually(t, 30*time.Second, "Alertmanager ready", func(ctx context.Context) error {
		select {
		case <-am.done:
			t.Fatalf("Alertmanager exited (%v):\n%s", am.cmd.ProcessState, am.output())
		default:
		}
		return am.call(ctx, http.MethodGet, "/-/ready", nil)
	})
	return am
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// stop kills Alertmanager, if it still runs, and waits for it to exit.
func (am *alertmanager) stop(t *testing.T) {
	t.Helper()
	select {
	case <-am.done:
		return
	default:
	}
	_ = am.cmd.Process.Signal(syscall.SIGKILL) // it may have exited since: then done is closed
	select {
	case <-am.done:
	case <-time.After(10 * time.Second):
		t.Errorf("Alertmanager (pid %d) still running 10s after SIGKILL", am.cmd.Process.Pid)
	}
}

// call sends method path with body (JSON, or nil) and wants a 2xx answer.
func (am *alertmanager) call(ctx context.Context, method, path string, body any) error {
	var payload bytes.Buffer
	if body != nil {
		if err := json.NewEncoder(&payload).Encode(body); err != nil {
			return err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, am.url+path, &payload)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

// fire posts an alert with labels through Alertmanager's API, as Prometheus does, firing until
// endsAt: a time past resolves it.
func (am *alertmanager) fire(t *testing.T, labels map[string]string, endsAt time.Time) {
	t.Helper()
	startsAt := time.Now().Add(-time.Minute)
	if endsAt.Before(startsAt) {
		startsAt = endsAt.Add(-time.Minute)
	}
	alert := []map[string]any{{"labels": labels, "startsAt": startsAt.UTC().Format(time.RFC3339), "endsAt": endsAt.UTC().Format(time.RFC3339)}}
	if err := am.call(t.Context(), http.MethodPost, "/api/v2/alerts", alert); err != nil {
		t.Fatalf("fire %v: %v", labels, err)
	}
}

// TestAlertGateWithARealAlertmanager: a critical alert labelled with the namespace in scope holds
// every kill, and macaque's log and Slack name it; once resolved, kills resume; once Alertmanager
// is stopped, nothing is killed and each tick says that Alertmanager could not be asked.
func TestAlertGateWithARealAlertmanager(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 3)
	waitReady(t, ns, "web", 3)
	am := startAlertmanager(t)
	alert := map[string]string{"alertname": "ChaosE2EHeld", "severity": "critical", "namespace": ns}
	am.fire(t, alert, time.Now().Add(time.Hour))
	// A warning in the same namespace selects nothing: the default matchers want critical.
	am.fire(t, map[string]string{"alertname": "ChaosE2EWarning", "severity": "warning", "namespace": ns}, time.Now().Add(time.Hour))
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web", "MACAQUE_ALERTMANAGER_URL="+am.url)

	// Held: every tick skipped, naming the alert, and nothing deleted.
	held := d.waitOutcomes(t, 0, 3, "skipped", alertTimeout)
	for _, l := range held {
		if l.Outcome != "skipped" || !strings.Contains(l.Note, "alert ChaosE2EHeld (namespace "+ns+") firing in Alertmanager") ||
			strings.Contains(l.Note, "ChaosE2EWarning") {
			t.Fatalf("a tick while the alert fires: %s; want skipped, naming ChaosE2EHeld only", l.raw)
		}
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Fatalf("deleted %+v while a critical alert fired in %s", del, ns)
	}
	posts := d.waitPosts(t, slack, 1)
	if !strings.Contains(posts[0].Text, ":rotating_light: gated: alerts firing in Alertmanager hold the kills") || !strings.Contains(posts[0].Text, "ChaosE2EHeld") {
		t.Errorf("Slack's first post %q, want it gated, naming the alert", posts[0].Text)
	}

	// Resolved: kills resume.
	am.fire(t, alert, time.Now().Add(-time.Second))
	resumed := len(d.tickLines())
	d.waitOutcomes(t, resumed, 1, "killed", alertTimeout)
	watcher.waitDeleted(t, 1)

	// Alertmanager gone: every tick fails safe.
	am.stop(t)
	stopped := len(d.tickLines())
	after := d.waitOutcomes(t, stopped, 3, "error", alertTimeout)
	first := -1
	for i, l := range after {
		if l.Outcome == "error" && first < 0 {
			first = i
		}
		if first >= 0 && (l.Outcome != "error" || !strings.Contains(l.Err, "nothing is killed while Alertmanager cannot say which alerts fire") ||
			!strings.Contains(l.Err, "connection refused")) {
			t.Errorf("a tick once Alertmanager stopped: %s; want an error saying it could not be asked", l.raw)
		}
	}
	// Every deletion is a reported kill, none after the first tick that could not ask.
	killed := 0
	for _, l := range d.tickLines() {
		if l.Outcome == "killed" {
			killed++
		}
	}
	if del := watcher.waitDeleted(t, killed); len(del) != killed {
		t.Errorf("%d pods deleted, %d kills reported: %+v", len(del), killed, del)
	}
	d.stop(t)
}

// TestAlertmanagerURLOfNoAlertmanagerStopsMacaque: a URL at which Alertmanager's v2 API is not
// (a wrong route prefix, answering 404) is a bad setting: one line, exit 2, before any tick.
func TestAlertmanagerURLOfNoAlertmanagerStopsMacaque(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	am := startAlertmanager(t)
	d := startMacaque(t, kubeconfig, nil, "MACAQUE_SELECTOR=app=web", "MACAQUE_ALERTMANAGER_URL="+am.url+"/no-such-prefix")
	d.wantRefusedAtStart(t, "macaque: MACAQUE_ALERTMANAGER_URL: not Alertmanager's v2 API: ask "+am.url+"/no-such-prefix for its alerts: HTTP 404 Not Found")
}
