package daemon_test

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
)

// saMount is where the kubelet mounts a pod's ServiceAccount and client-go looks for it.
const saMount = "/var/run/secrets/kubernetes.io/serviceaccount"

// inPodScript runs macaque ($1) with the ServiceAccount files from $2 at saMount, on a tmpfs
// laid over /run inside the private mount namespace that unshare gave it, so the machine's
// own /run is neither read nor changed. exec keeps one process, so signals reach macaque.
const inPodScript = `set -e
mount -t tmpfs -o mode=0755 macaque-e2e "$(readlink -f /var/run)"
mkdir -p ` + saMount + `
cp "$2/token" "$2/ca.crt" "$2/namespace" ` + saMount + `/
exec "$1"`

// TestRunsInAPodWithTheMountedServiceAccount starts macaque the way it starts in the cluster:
// no kubeconfig and no namespace setting, only what the kubelet provides (the ServiceAccount
// files and KUBERNETES_SERVICE_HOST/PORT). It must find the API server and its namespace
// through client-go's in-cluster config and the mounted namespace file, and kill there.
func TestRunsInAPodWithTheMountedServiceAccount(t *testing.T) {
	if out, err := exec.Command("unshare", "--mount", "true").CombinedOutput(); err != nil {
		t.Skipf("running macaque as in a pod needs root and mount namespaces; unshare --mount: %v: %s", err, out)
	}
	_, hostErr := os.Stat(saMount)
	ns, _ := deploy(t)
	createDeployment(t, ns, "web", 2)
	waitReady(t, ns, "web", 2)
	watcher := watchDeletions(t, []string{ns})

	sa := t.TempDir()
	if err := testCluster.ServiceAccountFiles(t.Context(), ns, "macaque", sa); err != nil {
		t.Fatal(err)
	}
	inCluster, err := testCluster.InClusterEnv()
	if err != nil {
		t.Fatal(err)
	}
	slack := slackstub.New(nil)
	defer slack.Close()
	d := startProcess(t, "unshare", macaqueproc.Options{
		Args: []string{"--mount", "--propagation", "private", "/bin/sh", "-c", inPodScript, "sh", macaqueBin, sa},
		// No KUBECONFIG, MACAQUE_NAMESPACE or POD_NAMESPACE; the election on, as the manifest
		// runs it, its Lease in the mounted ServiceAccount's namespace.
		Env: append(append(macaqueEnv(t, slack), inCluster...), "MACAQUE_LEADER_ELECTION=true"),
	})
	d.waitPosts(t, slack, 2)
	d.stop(t)
	posts := killReports(slack.Posts())

	startedIn := ""
	for _, line := range d.Logs() {
		var l struct{ Msg, Namespace string }
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "macaque started" {
			startedIn = l.Namespace
		}
	}
	if startedIn != ns {
		t.Errorf("macaque started in namespace %q, want %q from the mounted ServiceAccount", startedIn, ns)
	}
	if h, err := holder(t.Context(), ns); err != nil || h != "" {
		t.Errorf("the Lease in %q after a clean stop: holder %q (%v), want released", ns, h, err)
	}
	if !slices.ContainsFunc(d.Logs(), func(l string) bool { return strings.Contains(l, `"msg":"became the leader"`) }) {
		t.Error("macaque never said it became the leader")
	}
	seen := map[string]bool{}
	for _, del := range watcher.waitDeleted(t, len(posts)) {
		seen[del.Name] = true
	}
	for _, p := range posts {
		k := parseKill(t, p)
		if k.namespace != ns || !seen[k.pod] {
			t.Errorf("reported kill of %s/%s; deletions seen in %s: %v", k.namespace, k.pod, ns, seen)
		}
	}
	if _, err := os.Stat(saMount); errors.Is(hostErr, fs.ErrNotExist) && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s appeared on the machine (stat: %v); the mount must stay in macaque's namespace", saMount, err)
	}
}
