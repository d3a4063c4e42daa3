// Package e2e installs macaque's chart with helm's action package onto the real control plane
// of the e2e harness (github.com/macaque-chaos/macaque/e2e/cluster) and runs the real macaque
// binary with the release's ServiceAccount until it kills. It needs the control plane's binaries
// (make controlplane); make unit does not run it, make e2e does.
package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/charttest"
	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/kube"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/utils/ptr"
)

var (
	testCluster *cluster.Cluster
	macaqueBin  string // the daemon, built from the repository's root by TestMain
)

// repoRoot is the repository's root, seen from this package.
const repoRoot = "../.."

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "macaque-chart-e2e-bin-")
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

// victimLabel opts the victims in, as the chart's default selector asks.
const victimLabel = "chaos.macaque.dev/enabled"

// TestHelmInstallKills installs the chart as `helm install macaque charts/macaque -n NS` would,
// into a namespace that enforces the restricted Pod Security Standard; sees the Deployment's
// pod admitted there (a pod that broke the standard would be refused, and the ReplicaSet say
// why); then runs the real binary with the release's ServiceAccount token and the settings of
// the release's Deployment, as that pod would, until it kills one of the opted-in pods.
func TestHelmInstallKills(t *testing.T) {
	ns := restrictedNamespace(t)
	createVictims(t, ns, "web", 2)
	install(t, ns, "macaque", map[string]any{"logFormat": "json"})
	pod := waitAdmitted(t, ns, "app.kubernetes.io/instance=macaque")

	kubeconfig, err := testCluster.TokenKubeconfig(t.Context(), ns, "macaque")
	if err != nil {
		t.Fatal(err)
	}
	env := append(releaseEnv(t, ns, "macaque"),
		"PATH="+os.Getenv("PATH"), "HOME="+t.TempDir(), "KUBECONFIG="+kubeconfig,
		"POD_NAME="+pod, "POD_NAMESPACE="+ns, // what the downward API gives the pod
		"MACAQUE_CRONTAB=@every 2s", "MACAQUE_ALLOW_FAST_SCHEDULE=true", // not to wait for the hour
		"MACAQUE_HTTP_ADDR=127.0.0.1:0") // :8080 may be taken on the machine
	d, err := macaqueproc.Start(macaqueBin, macaqueproc.Options{Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if code, err := d.Stop(30 * time.Second); err != nil || code != 0 {
			t.Errorf("macaque after SIGTERM: exit %d, %v; last lines:\n%s", code, err, d.Tail(20))
		}
	})
	killed := waitKill(t, d)
	eventually(t, 30*time.Second, "the killed pod "+killed+" gone", func(ctx context.Context) error {
		p, err := testCluster.Clientset.CoreV1().Pods(ns).Get(ctx, killed, metav1.GetOptions{})
		if err == nil && p.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s still there, not being deleted", killed)
		}
		return nil
	})
	t.Logf("macaque, as the release's ServiceAccount, killed %s", killed)
	if !strings.HasPrefix(killed, "web-") {
		t.Errorf("macaque killed %s, want a pod of web, the only opted-in workload", killed)
	}
}

// restrictedNamespace creates a namespace of the test's own that enforces the restricted Pod
// Security Standard.
func restrictedNamespace(t *testing.T) string {
	t.Helper()
	ns := testCluster.Namespace(t)
	labels := fmt.Sprintf(`{"metadata":{"labels":{%q:"restricted",%q:"latest"}}}`,
		"pod-security.kubernetes.io/enforce", "pod-security.kubernetes.io/enforce-version")
	if _, err := testCluster.Clientset.CoreV1().Namespaces().Patch(t.Context(), ns, types.MergePatchType, []byte(labels), metav1.PatchOptions{}); err != nil {
		t.Fatalf("label namespace %s restricted: %v", ns, err)
	}
	return ns
}

// install installs the chart of the repository as release name in ns, with values, through
// helm's action package (what helm install runs), without waiting: no scheduler places pods here.
func install(t *testing.T, ns, name string, values map[string]any) {
	t.Helper()
	ch, err := charttest.Load(filepath.Join(repoRoot, "charts", "macaque"))
	if err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = ptr.To(testCluster.Kubeconfig)
	flags.Namespace = ptr.To(ns)
	cfg := action.NewConfiguration()
	if err := cfg.Init(flags, ns, "secret"); err != nil {
		t.Fatal(err)
	}
	inst := action.NewInstall(cfg)
	inst.ReleaseName, inst.Namespace = name, ns
	inst.WaitStrategy = kube.HookOnlyStrategy
	inst.Timeout = time.Minute
	if _, err := inst.RunWithContext(t.Context(), ch, values); err != nil {
		t.Fatalf("helm install %s: %v", name, err)
	}
	t.Logf("installed release %s in %s", name, ns)
	t.Cleanup(func() {
		uninstall := action.NewUninstall(cfg)
		uninstall.WaitStrategy = kube.HookOnlyStrategy
		if _, err := uninstall.Run(name); err != nil {
			t.Errorf("helm uninstall %s: %v", name, err)
		}
	})
}

// createVictims creates a Deployment of replicas pods that opted in, on the kwok node, with a
// pod the restricted standard admits.
func createVictims(t *testing.T, ns, name string, replicas int32) {
	t.Helper()
	labels := map[string]string{"app": name, victimLabel: "true"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
				NodeName: testCluster.NodeName,
				SecurityContext: &corev1.PodSecurityContext{
					RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](65532),
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
				},
				Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1", SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				}}},
			}},
		},
	}
	cs := testCluster.Clientset
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment %s/%s: %v", ns, name, err)
	}
	eventually(t, 60*time.Second, "deployment "+name+" ready", func(ctx context.Context) error {
		got, err := cs.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status.ReadyReplicas != replicas {
			return fmt.Errorf("%d/%d ready; %s", got.Status.ReadyReplicas, replicas, replicaSetTrouble(ctx, ns, "app="+name))
		}
		return nil
	})
}

// waitAdmitted waits for the release's Deployment to have made its pod, which the PodSecurity
// admission plugin let in, and returns its name. No scheduler runs: the pod stays Pending.
func waitAdmitted(t *testing.T, ns, selector string) string {
	t.Helper()
	var name string
	eventually(t, 60*time.Second, "macaque's pod admitted in "+ns+" (enforcing restricted)", func(ctx context.Context) error {
		pods, err := testCluster.Clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return err
		}
		if len(pods.Items) == 0 {
			return fmt.Errorf("no pod; %s", replicaSetTrouble(ctx, ns, selector))
		}
		name = pods.Items[0].Name
		return nil
	})
	t.Logf("pod %s admitted under the restricted standard", name)
	return name
}

// replicaSetTrouble says why the ReplicaSets of selector made no pod: their failure conditions,
// where a PodSecurity refusal shows.
func replicaSetTrouble(ctx context.Context, ns, selector string) string {
	sets, err := testCluster.Clientset.AppsV1().ReplicaSets(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		return "list replicasets: " + err.Error()
	}
	var said []string
	for _, rs := range sets.Items {
		for _, c := range rs.Status.Conditions {
			said = append(said, fmt.Sprintf("replicaset %s %s: %s", rs.Name, c.Type, c.Message))
		}
	}
	if len(said) == 0 {
		return fmt.Sprintf("%d replicasets, no failure reported", len(sets.Items))
	}
	return strings.Join(said, "; ")
}

// releaseEnv returns the literal MACAQUE_* settings of the release's Deployment, as the
// installed pod would run with them.
func releaseEnv(t *testing.T, ns, name string) []string {
	t.Helper()
	d, err := testCluster.Clientset.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("read the release's Deployment: %v", err)
	}
	var env []string
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "MACAQUE_") && e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	if len(env) < 20 {
		t.Fatalf("the release's Deployment sets %d MACAQUE_* variables, want every setting: %q", len(env), env)
	}
	return env
}

// waitKill waits for macaque's first tick that killed, and returns the pod it names.
func waitKill(t *testing.T, d *macaqueproc.Process) string {
	t.Helper()
	var pod string
	eventually(t, 60*time.Second, "a kill by macaque", func(context.Context) error {
		select {
		case <-d.Done():
			return fmt.Errorf("macaque exited: %v", d.State()) // Eventually goes on; the last error says it
		default:
		}
		for _, line := range d.Logs() {
			var l struct{ Msg, Outcome, Pod string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "tick done" && l.Outcome == "killed" {
				pod = l.Pod
				return nil
			}
		}
		return fmt.Errorf("no kill yet; last lines:\n%s", d.Tail(5))
	})
	return pod
}

// eventually calls cond every 200ms until it returns nil, and fails the test after timeout with
// what cond last said. cond's requests run on the test's context, not on one that expires with
// the timeout, so that the last word is what the cluster said rather than a deadline.
func eventually(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond(t.Context())
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen: %v", what, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
