package daemon_test

// Issue 8: every report is true, even when the API server is slow. These tests put a
// faultproxy between macaque and kube-apiserver and make answers late, lost or strange, then
// check macaque's report against what the API server really did (the podWatcher and the pods
// themselves), not against what macaque believes.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/faultproxy"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// tickLine is one tick's report in macaque's JSON log ("tick done" or "kill failed"): the
// lines with both a tick and an outcome (a dropped report's line has no tick).
type tickLine struct {
	Msg        string   `json:"msg"`
	Tick       string   `json:"tick"`
	Outcome    string   `json:"outcome"`
	Namespace  string   `json:"namespace"`
	Candidates int      `json:"candidates"`
	Pod        string   `json:"pod"`
	Note       string   `json:"note"`
	Err        string   `json:"err"`
	Passed     []string `json:"passed"`
	raw        string
}

// tickLines are the tick reports in macaque's log so far, in order.
func (d *daemon) tickLines() []tickLine {
	var out []tickLine
	for _, line := range d.Logs() {
		var l tickLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Outcome != "" && l.Tick != "" {
			l.raw = line
			out = append(out, l)
		}
	}
	return out
}

// waitMatched waits until the proxy has matched at least one request to fault, which is what,
// and fails with macaque's last log line if it has not within 30 seconds.
func (d *daemon) waitMatched(t *testing.T, fault *faultproxy.Fault, what string) {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, what, func(context.Context) error {
		if fault.Count() == 0 {
			return fmt.Errorf("none yet; last log line: %s", d.Tail(1))
		}
		return nil
	})
}

// waitTicks waits until macaque has logged at least n tick reports and returns them all. It
// fails at once if macaque exits first.
func (d *daemon) waitTicks(t *testing.T, n int, timeout time.Duration) []tickLine {
	t.Helper()
	cluster.Eventually(t, timeout, fmt.Sprintf("%d ticks in macaque's log", n), func(context.Context) error {
		got := d.tickLines()
		if len(got) >= n {
			return nil
		}
		if !d.running() {
			t.Fatalf("macaque exited (%v) after %d of %d ticks:\n%s", d.State(), len(got), n, d.Tail(20))
		}
		return fmt.Errorf("%d ticks logged; last log line: %s", len(got), d.Tail(1))
	})
	return d.tickLines()
}

// waitOutcomes waits until macaque has logged n ticks with outcome want after the first skip
// tick reports, and returns every tick report after those skipped.
func (d *daemon) waitOutcomes(t *testing.T, skip, n int, want string, timeout time.Duration) []tickLine {
	t.Helper()
	cluster.Eventually(t, timeout, fmt.Sprintf("%d %q ticks after tick %d", n, want, skip), func(context.Context) error {
		if !d.running() {
			t.Fatalf("macaque exited (%v):\n%s", d.State(), d.Tail(20))
		}
		got := 0
		var seen []string
		for _, l := range d.tickLines()[min(skip, len(d.tickLines())):] {
			seen = append(seen, l.Outcome)
			if l.Outcome == want {
				got++
			}
		}
		if got < n {
			return fmt.Errorf("outcomes after tick %d: %q", skip, seen)
		}
		return nil
	})
	lines := d.tickLines()
	return lines[min(skip, len(lines)):]
}

// postAbout returns the first Slack post naming pod ns/name, failing if there is none.
func postAbout(t *testing.T, slack *slackstub.Server, ns, name string) slackstub.Post {
	t.Helper()
	for _, p := range slack.Posts() {
		if strings.Contains(p.Text, "`"+ns+"/"+name+"`") {
			return p
		}
	}
	t.Fatalf("no Slack post names pod %s/%s; posts: %+v", ns, name, slack.Posts())
	return slackstub.Post{}
}

// waitPostAbout waits for a Slack post naming pod ns/name and returns it.
func (d *daemon) waitPostAbout(t *testing.T, slack *slackstub.Server, ns, name string) slackstub.Post {
	t.Helper()
	cluster.Eventually(t, 30*time.Second, "a Slack post about "+ns+"/"+name, func(context.Context) error {
		for _, p := range slack.Posts() {
			if strings.Contains(p.Text, "`"+ns+"/"+name+"`") {
				return nil
			}
		}
		return fmt.Errorf("posts: %+v", slack.Posts())
	})
	return postAbout(t, slack, ns, name)
}

// proxied starts a faultproxy in front of the API server and returns it with a copy of
// kubeconfig (a ServiceAccount's, from deploy) that reaches the API server through it: same
// token, the proxy's URL and certificate. The proxy is closed when the test ends, after macaque
// (cleanups run last first, and macaque is started later); if the test failed, its log of
// requests is printed.
func proxied(t *testing.T, kubeconfig string) (*faultproxy.Proxy, string) {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cl := cfg.Clusters[cfg.Contexts[cfg.CurrentContext].Cluster]
	proxy, err := faultproxy.New(cl.Server, cl.CertificateAuthorityData)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := proxy.Close(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			var b strings.Builder
			for _, e := range proxy.Log() {
				fmt.Fprintln(&b, e)
			}
			t.Logf("requests through the proxy:\n%s", b.String())
		}
	})
	cl.Server, cl.CertificateAuthority, cl.CertificateAuthorityData = proxy.URL(), "", proxy.CAPEM()
	out := filepath.Join(t.TempDir(), "macaque-via-proxy.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		t.Fatal(err)
	}
	return proxy, out
}

// podsPath is the collection macaque lists and deletes in.
func podsPath(ns string) string { return "/api/v1/namespaces/" + ns + "/pods" }

// killDeletes matches macaque's DELETE of a pod, not its dry-run preflight.
func killDeletes(ns string) faultproxy.Rule {
	return faultproxy.Rule{Method: http.MethodDelete, PathPrefix: podsPath(ns) + "/", NoQuery: []string{"dryRun"}}
}

// readsBack matches a list of one pod by name (a read-back), whatever other selectors it has:
// of the pod name, or of any pod if name is empty.
func readsBack(name string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		if r.URL.Query().Get("watch") == "true" {
			return false // a watch by name (the recovery verdict's start-up check) reads nothing back
		}
		got, ok := readBackName(r.URL.Query().Get("fieldSelector"))
		return ok && (name == "" || got == name)
	}
}

// readBackName is the pod a read-back's field selector names.
func readBackName(fieldSelector string) (string, bool) {
	for term := range strings.SplitSeq(fieldSelector, ",") {
		if name, ok := strings.CutPrefix(term, "metadata.name="); ok {
			return name, true
		}
	}
	return "", false
}

// readBackOf is the pod read back by a request a rule matched ("GET URI").
func readBackOf(t *testing.T, request string) string {
	t.Helper()
	u, err := url.ParseRequestURI(strings.Fields(request)[1])
	if err != nil {
		t.Fatal(err)
	}
	name, ok := readBackName(u.Query().Get("fieldSelector"))
	if !ok {
		t.Fatalf("%s is not a read-back", request)
	}
	return name
}

// deletedPod is the name in the first DELETE a rule matched.
func deletedPod(t *testing.T, f *faultproxy.Fault) string {
	t.Helper()
	reqs := f.Requests()
	if len(reqs) == 0 {
		t.Fatal("no DELETE matched")
	}
	uri, _, _ := strings.Cut(strings.Fields(reqs[0])[1], "?")
	return path.Base(uri)
}

// allowOrphans lets macaque kill the bare pods of createWebPods and createPod, which its
// steady-state guard skips by default, in the tests about something else.
const allowOrphans = "MACAQUE_ALLOW_ORPHANS=true"

// createWebPods creates n bare Running pods web-0... labelled app=web and waits until they are
// Ready.
func createWebPods(t *testing.T, ns string, n int) map[string]*corev1.Pod {
	t.Helper()
	pods := map[string]*corev1.Pod{}
	for i := range n {
		p := createPod(t, ns, fmt.Sprintf("web-%d", i), "web", true)
		pods[p.Name] = p
	}
	waitReady(t, ns, "web", n)
	return pods
}

// checkAlive fails unless every pod still exists with its UID and is not being deleted.
func checkAlive(t *testing.T, ns string, pods map[string]*corev1.Pod) {
	t.Helper()
	for name, want := range pods {
		p, err := testCluster.Clientset.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
		switch {
		case err != nil:
			t.Errorf("pod %s: %v", name, err)
		case p.UID != want.UID:
			t.Errorf("pod %s was replaced (UID %s, was %s)", name, p.UID, want.UID)
		case p.DeletionTimestamp != nil:
			t.Errorf("pod %s is being deleted", name)
		}
	}
}

// TestLostDeleteAnswerIsReadBack makes the answer to macaque's DELETE never arrive, in each way
// it can be lost, with the API server having carried the DELETE out or not. macaque must then
// read the pod back and report what the API server really did: killed (saying a read-back
// confirmed it) only when the pod is gone, and "nothing was killed" only when it is not.
func TestLostDeleteAnswerIsReadBack(t *testing.T) {
	tests := []struct {
		name   string
		rule   faultproxy.Rule
		killed bool // whether the DELETE reaches the API server
	}{
		// The API server commits; macaque's 10s deadline for the DELETE passes with no answer.
		{"answer held past the deadline", faultproxy.Rule{Action: faultproxy.HoldResponse}, true},
		// The API server commits; the stream breaks before the answer gets through.
		{"stream broken after the commit", faultproxy.Rule{Action: faultproxy.Abort, Forward: true}, true},
		// The API server commits; something in between answers 503 instead.
		{"503 after the commit", faultproxy.Rule{Action: faultproxy.Fail, Status: http.StatusServiceUnavailable, Forward: true}, true},
		// The DELETE never reaches the API server, and no answer comes before the deadline.
		{"dropped", faultproxy.Rule{Action: faultproxy.Drop}, false},
		// The DELETE never reaches the API server; the stream breaks.
		{"stream broken before forwarding", faultproxy.Rule{Action: faultproxy.Abort}, false},
		// The DELETE never reaches the API server; something in between answers 503.
		{"503 without forwarding", faultproxy.Rule{Action: faultproxy.Fail, Status: http.StatusServiceUnavailable}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, kubeconfig := deploy(t)
			pods := createWebPods(t, ns, 2)
			proxy, viaProxy := proxied(t, kubeconfig)
			rule := killDeletes(ns)
			rule.Name, rule.Action, rule.Forward, rule.Status = tt.name, tt.rule.Action, tt.rule.Forward, tt.rule.Status
			if tt.killed {
				rule.Times = 1 // later ticks kill normally
			}
			lost := proxy.Add(rule)
			watcher := watchDeletions(t, []string{ns})
			slack := slackstub.New(nil)
			defer slack.Close()
			d := startMacaque(t, viaProxy, slack, "MACAQUE_SELECTOR=app=web", allowOrphans)

			first := d.waitTicks(t, 1, 60*time.Second)[0]
			victim := deletedPod(t, lost)
			if first.Pod != victim {
				t.Fatalf("first tick reported on pod %q, but macaque deleted %q: %s", first.Pod, victim, first.raw)
			}
			post := d.waitPostAbout(t, slack, ns, victim)
			if tt.killed {
				if first.Outcome != "killed" || !strings.Contains(first.Note, "read-back") {
					t.Errorf("first tick %s, want outcome killed with a note that a read-back confirmed it", first.raw)
				}
				if !strings.HasPrefix(post.Text, ":monkey_face: killed pod `"+ns+"/"+victim+"`") || !strings.Contains(post.Text, "read-back") {
					t.Errorf("Slack post %q, want a kill report saying a read-back confirmed it", post.Text)
				}
				cluster.Eventually(t, 10*time.Second, "the watch to see "+victim+" deleted", func(context.Context) error {
					for _, del := range watcher.Deleted() {
						if del.UID == string(pods[victim].UID) {
							return nil
						}
					}
					return fmt.Errorf("deletions seen: %+v", watcher.Deleted())
				})
			} else {
				if first.Outcome != "error" {
					t.Errorf("first tick %s, want outcome error: the DELETE never reached the API server", first.raw)
				}
				if strings.HasPrefix(post.Text, ":monkey_face:") || !strings.Contains(post.Text, "nothing was killed") {
					t.Errorf("Slack post %q, want a failure saying nothing was killed", post.Text)
				}
				if del := watcher.Deleted(); len(del) != 0 {
					t.Errorf("the API server deleted %+v, but every DELETE was lost before it", del)
				}
				checkAlive(t, ns, pods)
			}
			if !d.running() {
				t.Fatalf("macaque exited (%v)", d.State())
			}
			d.stop(t)
		})
	}
}

// TestUnknownWhenTheReadBackFailsToo loses the DELETE's answer (the API server does delete the
// pod) and then fails every read-back of the pod: macaque cannot know what happened and must
// say so, neither "killed" nor "nothing was killed".
func TestUnknownWhenTheReadBackFailsToo(t *testing.T) {
	ns, kubeconfig := deploy(t)
	pods := createWebPods(t, ns, 2)
	proxy, viaProxy := proxied(t, kubeconfig)
	rule := killDeletes(ns)
	rule.Name, rule.Action = "hold every DELETE's answer", faultproxy.HoldResponse
	held := proxy.Add(rule)
	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, viaProxy, slack, "MACAQUE_SELECTOR=app=web", allowOrphans)

	// The DELETE's answer is held for macaque's 10s deadline: fail the read-backs from now on.
	d.waitMatched(t, held, "macaque's DELETE")
	victim := deletedPod(t, held)
	readBack := proxy.Add(faultproxy.Rule{Name: "fail read-backs of " + victim, Method: http.MethodGet, Path: podsPath(ns),
		Match: readsBack(victim), Action: faultproxy.Fail, Status: http.StatusServiceUnavailable})

	first := d.waitTicks(t, 1, 60*time.Second)[0]
	if first.Outcome != "unknown" || first.Pod != victim {
		t.Errorf("first tick %s, want outcome unknown for pod %s", first.raw, victim)
	}
	if readBack.Count() == 0 {
		t.Errorf("macaque never read %s back", victim)
	}
	post := d.waitPostAbout(t, slack, ns, victim)
	if !strings.HasPrefix(post.Text, ":question:") || strings.Contains(post.Text, "nothing was killed") {
		t.Errorf("Slack post %q, want an unknown result (:question:) that does not claim nothing was killed", post.Text)
	}
	// The report was right not to say "nothing was killed": the API server did delete it.
	cluster.Eventually(t, 10*time.Second, "the watch to see "+victim+" deleted", func(context.Context) error {
		for _, del := range watcher.Deleted() {
			if del.UID == string(pods[victim].UID) {
				return nil
			}
		}
		return fmt.Errorf("deletions seen: %+v", watcher.Deleted())
	})
	if !d.running() {
		t.Fatalf("macaque exited (%v)", d.State())
	}
	d.stop(t)
}

// TestRelabelledPickIsNotKilled relabels macaque's pick out of the selector between the list
// and the delete: the proxy holds macaque's read-back of its first pick while the test
// relabels that pod, then lets it go. macaque must notice at the read-back and leave the pod
// alone; with another candidate it kills that one in the same tick, with none it reports
// "not found".
func TestRelabelledPickIsNotKilled(t *testing.T) {
	tests := []struct {
		name  string
		pods  int
		want  string // the tick's outcome
		kills int    // deletions the tick makes
	}{
		{"the only candidate", 1, "not found", 0},
		{"another candidate is killed instead", 2, "killed", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ns, kubeconfig := deploy(t)
			pods := createWebPods(t, ns, tt.pods)
			proxy, viaProxy := proxied(t, kubeconfig)
			hold := proxy.Add(faultproxy.Rule{Name: "hold the first read-back", Method: http.MethodGet, Path: podsPath(ns),
				Match: readsBack(""), Action: faultproxy.HoldRequest, Times: 1})
			watcher := watchDeletions(t, []string{ns})
			slack := slackstub.New(nil)
			defer slack.Close()
			d := startMacaque(t, viaProxy, slack, "MACAQUE_SELECTOR=app=web", allowOrphans)

			d.waitMatched(t, hold, "macaque's read-back of its pick")
			moved := readBackOf(t, hold.Requests()[0])
			patch := []byte(`{"metadata":{"labels":{"app":"moved"}}}`)
			if _, err := testCluster.Clientset.CoreV1().Pods(ns).Patch(t.Context(), moved, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			hold.Release()

			first := d.waitTicks(t, 1, 30*time.Second)[0]
			if first.Outcome != tt.want {
				t.Errorf("first tick %s, want outcome %s", first.raw, tt.want)
			}
			if !slices.ContainsFunc(first.Passed, func(s string) bool { return strings.HasPrefix(s, ns+"/"+moved+":") }) {
				t.Errorf("first tick %s does not say %s was passed over", first.raw, moved)
			}
			for _, e := range proxy.Log() {
				if e.Method == http.MethodDelete && strings.HasPrefix(e.URI, podsPath(ns)+"/"+moved) {
					t.Errorf("macaque sent %s %s for a pod out of its selector", e.Method, e.URI)
				}
			}
			deleted := watcher.waitDeleted(t, tt.kills)
			if len(deleted) != tt.kills {
				t.Errorf("deleted %+v, want %d", deleted, tt.kills)
			}
			for _, del := range deleted {
				if del.Name != first.Pod || del.Name == moved {
					t.Errorf("deleted %s; the tick reported %s and %s had left the selector", del.Name, first.Pod, moved)
				}
			}
			checkAlive(t, ns, map[string]*corev1.Pod{moved: pods[moved]})
			if !d.running() {
				t.Fatalf("macaque exited (%v)", d.State())
			}
			d.stop(t)
		})
	}
}

// TestListThatIsNotATableStopsMacaque puts a proxy that drops macaque's Accept header (so the
// API server answers a PodList, not the Table asked for) between macaque and the API server:
// macaque must stop at start saying so, not report "no candidates" at every tick.
func TestListThatIsNotATableStopsMacaque(t *testing.T) {
	ns, kubeconfig := deploy(t)
	createWebPods(t, ns, 1)
	proxy, viaProxy := proxied(t, kubeconfig)
	rewrite := proxy.Add(faultproxy.Rule{Name: "Accept: application/json", Method: http.MethodGet, Path: podsPath(ns), Accept: "application/json"})
	d := startMacaque(t, viaProxy, nil)
	if code := d.wait(t, 30*time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if rewrite.Count() == 0 {
		t.Fatal("macaque exited before listing any pods")
	}
	logs := d.Logs()
	if len(logs) == 0 || !strings.HasPrefix(logs[len(logs)-1], "macaque: ") || !strings.Contains(logs[len(logs)-1], "Table") {
		t.Errorf("stderr %q, want a last line saying the answer was not a pod Table", logs)
	}
	if slices.ContainsFunc(logs, func(l string) bool { return strings.Contains(l, `"outcome"`) }) {
		t.Errorf("macaque ticked with a list it cannot read: %q", logs)
	}
}

// denyingWebhook is an admission webhook that denies every DELETE made by macaque's
// ServiceAccount in one namespace, as a policy engine would, and allows everything else.
type denyingWebhook struct {
	*httptest.Server
	user    string
	message string

	mu     sync.Mutex
	denied int
}

func (w *denyingWebhook) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
		http.Error(rw, fmt.Sprintf("bad AdmissionReview: %v", err), http.StatusBadRequest)
		return
	}
	resp := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	if review.Request.Operation == admissionv1.Delete && review.Request.UserInfo.Username == w.user {
		resp.Allowed = false
		resp.Result = &metav1.Status{Code: http.StatusForbidden, Message: w.message}
		w.mu.Lock()
		w.denied++
		w.mu.Unlock()
	}
	review.Response, review.Request = resp, nil
	rw.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(rw).Encode(review)
}

func (w *denyingWebhook) deniedCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.denied
}

// startDenyingWebhook serves the webhook over TLS on 127.0.0.1 and registers it with the API
// server for DELETEs of pods in ns only. Both are removed when the test ends, the
// registration first.
func startDenyingWebhook(t *testing.T, ns, message string) *denyingWebhook {
	t.Helper()
	w := &denyingWebhook{user: "system:serviceaccount:" + ns + ":macaque", message: message}
	w.Server = httptest.NewUnstartedServer(w)
	w.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	w.StartTLS()
	t.Cleanup(w.Close)
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.Certificate().Raw})

	hookURL := w.URL + "/validate"
	none := admissionregistrationv1.SideEffectClassNone
	// Ignore: the webhook answers for the whole test, and must not hold up the namespace's
	// deletion if the registration outlives the server by a moment at cleanup.
	ignore := admissionregistrationv1.Ignore
	scope := admissionregistrationv1.NamespacedScope
	timeout := int32(5)
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-deny-macaque-" + ns},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         "deny-macaque.e2e.macaque.dev",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &hookURL, CABundle: caBundle},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Delete},
				Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}, Scope: &scope},
			}},
			NamespaceSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": ns}},
			SideEffects:             &none,
			FailurePolicy:           &ignore,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
	hooks := testCluster.Clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := hooks.Create(t.Context(), cfg, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ValidatingWebhookConfiguration: %v", err)
	}
	t.Cleanup(func() {
		if err := hooks.Delete(context.Background(), cfg.Name, metav1.DeleteOptions{}); err != nil {
			t.Errorf("delete ValidatingWebhookConfiguration %s: %v", cfg.Name, err)
		}
	})
	return w
}

// TestWebhookDenialIsNotBlamedOnTheRole has an admission webhook refuse macaque's deletes with
// a 403 of its own. That is not RBAC: macaque must report it as denied, quoting the webhook,
// without sending anyone to fix its Role, and keep running.
func TestWebhookDenialIsNotBlamedOnTheRole(t *testing.T) {
	ns, kubeconfig := deploy(t)
	pods := createWebPods(t, ns, 2)
	const message = "pods in this namespace are protected by the e2e change freeze"
	hook := startDenyingWebhook(t, ns, message)

	// The API server picks up the registration a moment later: wait until a dry-run delete as
	// macaque is refused by the webhook. (Not kubectl delete, which reads the pod first with a
	// get that macaque's Role does not grant.)
	restCfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	asMacaque, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	cluster.Eventually(t, 30*time.Second, "the webhook to deny macaque's deletes", func(ctx context.Context) error {
		err := asMacaque.CoreV1().Pods(ns).Delete(ctx, "web-0", metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		if err == nil {
			return errors.New("dry-run delete as macaque: <nil>")
		}
		if !strings.Contains(err.Error(), message) {
			return fmt.Errorf("dry-run delete as macaque: %w", err)
		}
		return nil
	})
	probes := hook.deniedCount()

	watcher := watchDeletions(t, []string{ns})
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startMacaque(t, kubeconfig, slack, "MACAQUE_SELECTOR=app=web", allowOrphans)
	for _, l := range d.waitTicks(t, 2, 60*time.Second) {
		if l.Outcome != "denied" || !strings.Contains(l.Err, message) {
			t.Errorf("tick %s, want outcome denied quoting the webhook", l.raw)
		}
	}
	for _, p := range slack.Posts() {
		if !strings.Contains(p.Text, message) || strings.Contains(p.Text, "Role") || strings.HasPrefix(p.Text, ":monkey_face:") {
			t.Errorf("Slack post %q, want the webhook's message quoted and no word of the Role", p.Text)
		}
	}
	if len(slack.Posts()) == 0 {
		t.Error("no Slack post")
	}
	if n := hook.deniedCount() - probes; n < 2 {
		t.Errorf("the webhook denied %d of macaque's deletes, want one per tick", n)
	}
	if del := watcher.Deleted(); len(del) != 0 {
		t.Errorf("deleted %+v past the webhook", del)
	}
	checkAlive(t, ns, pods)
	if !d.running() {
		t.Fatalf("macaque exited (%v)", d.State())
	}
	d.stop(t)
}
