package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

var (
	testCluster *cluster.Cluster
	macaqueBin  string // the daemon, built from the repo root by TestMain
)

// repoRoot is where macaque.yml and the daemon's sources are, seen from this package.
const repoRoot = "../.."

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "macaque-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			fmt.Fprintln(os.Stderr, "remove the built macaque:", err)
		}
	}()
	macaqueBin = filepath.Join(dir, "macaque")
	if err := macaqueproc.Build(repoRoot, macaqueBin); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return cluster.RunMain(m, cluster.Options{}, &testCluster)
}

// deploy creates a namespace and applies the shipped macaque.yml in it, as a user would, and
// returns the namespace and a kubeconfig holding only the token of macaque's ServiceAccount.
func deploy(t *testing.T) (string, string) {
	t.Helper()
	return deployFile(t, filepath.Join(repoRoot, "macaque.yml"))
}

// deployFile is deploy with the manifest in file.
func deployFile(t *testing.T, file string) (string, string) {
	t.Helper()
	ns := testCluster.Namespace(t)
	if out, err := testCluster.Kubectl("apply", "-n", ns, "-f", file); err != nil {
		t.Fatalf("kubectl apply -f %s: %v\n%s", file, err, out)
	}
	kubeconfig, err := testCluster.TokenKubeconfig(t.Context(), ns, "macaque")
	if err != nil {
		t.Fatal(err)
	}
	return ns, kubeconfig
}

// deployEvict is deploy with macaque.yml edited for MACAQUE_MODE=evict as its Role's comment
// tells a user to: "delete" removed from the pods rule, the eviction rules uncommented.
func deployEvict(t *testing.T) (string, string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(repoRoot, "macaque.yml"))
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(raw), `verbs: ["list", "delete", "watch"]`, `verbs: ["list", "watch"]`, 1)
	edited = regexp.MustCompile(`(?m)^  # (- apiGroups|  resources|  verbs)`).ReplaceAllString(edited, "  $1")
	if edited == string(raw) || !strings.Contains(edited, "\n    resources: [\"pods/eviction\"]\n") {
		t.Fatal("macaque.yml's Role no longer reads as deployEvict edits it")
	}
	file := filepath.Join(t.TempDir(), "macaque.yml")
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	return deployFile(t, file)
}

// podSpec runs on the kwok node, which plays it as Running and Ready.
func podSpec() corev1.PodSpec {
	return corev1.PodSpec{
		NodeName:   testCluster.NodeName,
		Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}},
	}
}

// createDeployment creates a Deployment of replicas pods labelled app=name.
func createDeployment(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	createDeploymentWith(t, ns, name, replicas, nil)
}

// createDeploymentWith creates a Deployment as createDeployment does, edited by edit first
// (when not nil).
func createDeploymentWith(t *testing.T, ns, name string, replicas int32, edit func(*appsv1.Deployment)) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec()},
		},
	}
	if edit != nil {
		edit(d)
	}
	if _, err := testCluster.Clientset.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
}

// createPod creates a bare pod labelled app=app; nodeless pods stay Pending.
func createPod(t *testing.T, ns, name, app string, onNode bool, finalizers ...string) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}, Finalizers: finalizers},
		Spec:       podSpec(),
	}
	if !onNode {
		p.Spec.NodeName = ""
	}
	p, err := testCluster.Clientset.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return p
}

// waitReady waits until want pods labelled app=app in ns are Running and Ready.
func waitReady(t *testing.T, ns, app string, want int) {
	t.Helper()
	waitReadySelected(t, ns, "app="+app, want, 90*time.Second)
}

// waitReadySelected waits up to timeout until want pods matching selector are ready in ns.
func waitReadySelected(t *testing.T, ns, selector string, want int, timeout time.Duration) {
	t.Helper()
	cluster.Eventually(t, timeout, fmt.Sprintf("%d ready %s pods in %s", want, selector, ns), func(ctx context.Context) error {
		pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		ready := 0
		for _, p := range pods.Items {
			if cluster.PodReady(&p) {
				ready++
			}
		}
		if ready != want {
			return fmt.Errorf("%d of %d ready (%d pods)", ready, want, len(pods.Items))
		}
		return nil
	})
}

// deletion is a pod seen being deleted.
type deletion struct {
	Namespace, Name string
	UID             string
	App             string
	Owner           string // Kind/name of the controller
	Node            string
}

// podWatcher records every pod in the test's namespaces that starts being deleted while it
// runs. Other tests' namespaces are left out: their cleanup deletes pods too.
type podWatcher struct {
	mu         sync.Mutex
	namespaces map[string]bool
	deleted    map[string]deletion // by UID
	ignore     map[string]bool     // UIDs the test deleted itself
}

// watchDeletions starts a podWatcher over namespaces that stops with the test.
func watchDeletions(t *testing.T, namespaces []string, ignore ...*corev1.Pod) *podWatcher {
	t.Helper()
	pw := &podWatcher{namespaces: map[string]bool{}, deleted: map[string]deletion{}, ignore: map[string]bool{}}
	for _, ns := range namespaces {
		pw.namespaces[ns] = true
	}
	for _, p := range ignore {
		pw.ignore[string(p.UID)] = true
	}
	cs := testCluster.Clientset
	list, err := cs.CoreV1().Pods("").List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range list.Items {
		if p.DeletionTimestamp != nil { // terminating before the test began
			pw.ignore[string(p.UID)] = true
		}
	}
	w, err := cs.CoreV1().Pods("").Watch(t.Context(), metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	go func() {
		for ev := range w.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				pw.record(p, ev.Type == watch.Deleted)
			}
		}
	}()
	return pw
}

// record notes p if it is being deleted, in scope and not on the ignore list.
func (pw *podWatcher) record(p *corev1.Pod, gone bool) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	uid := string(p.UID)
	if !pw.namespaces[p.Namespace] || pw.ignore[uid] || (!gone && p.DeletionTimestamp == nil) {
		return
	}
	d := deletion{Namespace: p.Namespace, Name: p.Name, UID: uid, App: p.Labels["app"], Node: p.Spec.NodeName}
	if ref := metav1.GetControllerOf(p); ref != nil {
		d.Owner = ref.Kind + "/" + ref.Name
	}
	pw.deleted[uid] = d
}

// waitDeleted waits until the watch has seen at least n deletions (it lags the API server's
// answers a little) and returns all it has seen.
func (pw *podWatcher) waitDeleted(t *testing.T, n int) []deletion {
	t.Helper()
	cluster.Eventually(t, 10*time.Second, "the watch to see every reported kill", func(context.Context) error {
		if seen := len(pw.Deleted()); seen < n {
			return fmt.Errorf("%d deletions seen, %d kills reported", seen, n)
		}
		return nil
	})
	return pw.Deleted()
}

// Deleted returns the deletions seen so far.
func (pw *podWatcher) Deleted() []deletion {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	out := make([]deletion, 0, len(pw.deleted))
	for _, d := range pw.deleted {
		out = append(out, d)
	}
	return out
}

// daemon is a running macaque with the checks the tests make of it.
type daemon struct{ *macaqueproc.Process }

// startMacaque runs the daemon out of cluster with kubeconfig and env (on top of macaqueEnv).
// It is stopped when the test ends.
func startMacaque(t *testing.T, kubeconfig string, slack *slackstub.Server, env ...string) *daemon {
	t.Helper()
	all := append(macaqueEnv(t, slack), "KUBECONFIG="+kubeconfig)
	return startProcess(t, macaqueBin, macaqueproc.Options{Env: append(all, env...)})
}

// macaqueEnv is what every test runs macaque with: a schedule of every 2 seconds, JSON logs,
// and the Slack stub if given. Later entries of an environment win, so tests can override these.
func macaqueEnv(t *testing.T, slack *slackstub.Server) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"MACAQUE_CRONTAB=@every 2s", "MACAQUE_ALLOW_FAST_SCHEDULE=true", "MACAQUE_LOG_FORMAT=json", "POD_NAME=macaque-e2e",
		"MACAQUE_HTTP_ADDR=127.0.0.1:0", // a free port: daemons of tests run at once must not fight over :8080
		// One replica, as most tests run: leader_test.go runs two with the election on.
		"MACAQUE_LEADER_ELECTION=false",
	}
	if slack != nil {
		env = append(env, "MACAQUE_SLACK_TOKEN=xoxb-e2e", "MACAQUE_SLACK_CHANNEL=C0E2E", "MACAQUE_SLACK_API_URL="+slack.APIURL())
	}
	return env
}

// startProcess starts binary (macaque, or a wrapper that execs it) and kills it when the test
// ends, printing its log if the test failed.
func startProcess(t *testing.T, binary string, opts macaqueproc.Options) *daemon {
	t.Helper()
	p, err := macaqueproc.Start(binary, opts)
	if err != nil {
		t.Fatalf("start macaque: %v", err)
	}
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		<-p.Done()
		if t.Failed() {
			t.Logf("macaque's log:\n%s", strings.Join(p.Logs(), "\n"))
		}
	})
	return &daemon{p}
}

// running reports whether the process is still alive.
func (d *daemon) running() bool {
	select {
	case <-d.Done():
		return false
	default:
		return true
	}
}

// wait waits for the process to exit and returns its exit code.
func (d *daemon) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	code, err := d.Wait(timeout)
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// stop sends SIGTERM and checks macaque exits 0 within its grace period.
// wantRefusedAtStart checks that macaque stopped at start with exit 2 and one line on stderr,
// starting with prefix (the variable to fix and why).
func (d *daemon) wantRefusedAtStart(t *testing.T, prefix string) {
	t.Helper()
	if code := d.wait(t, 30*time.Second); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if logs := d.Logs(); len(logs) != 1 || !strings.HasPrefix(logs[0], prefix) {
		t.Errorf("stderr %q, want one line starting %q", logs, prefix)
	}
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	code, err := d.Stop(25 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		t.Errorf("macaque exited %d after SIGTERM, want 0", code)
	}
}

// verdictText is how a recovery verdict's Slack message starts (notifier.go's verdictMessage).
var verdictText = regexp.MustCompile(`^:(white_check_mark|rotating_light|warning|grey_question): (recovered|not recovered|not replaced|unknown)`)

// killReports are the posts that report ticks: not the recovery verdicts, which reply in the
// thread of their kill (or, when that post never went out, go to the channel), nor a replica's
// word that it took the lead.
func killReports(posts []slackstub.Post) []slackstub.Post {
	return slices.DeleteFunc(slices.Clone(posts), func(p slackstub.Post) bool {
		return p.ThreadTS != "" || verdictText.MatchString(p.Text) || strings.HasPrefix(p.Text, ":crown: leader: ")
	})
}

// waitPosts waits until the stub has at least n posts and returns them. It fails at once if
// macaque exits first (a bad setting, a refused start) rather than at the timeout.
func (d *daemon) waitPosts(t *testing.T, slack *slackstub.Server, n int) []slackstub.Post {
	t.Helper()
	cluster.Eventually(t, 60*time.Second, fmt.Sprintf("%d Slack posts", n), func(context.Context) error {
		if got := len(slack.Posts()); got < n {
			if !d.running() {
				t.Fatalf("macaque exited (%v) after %d of %d Slack posts", d.State(), got, n)
			}
			return fmt.Errorf("%d posts", got)
		}
		return nil
	})
	return slack.Posts()
}
