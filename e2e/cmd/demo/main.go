// Command demo shows macaque at work with nothing but this repository: it starts a local
// control plane (etcd, kube-apiserver, kube-controller-manager, kwok as the kubelet), deploys a
// 3-replica sample app and the shipped macaque.yml, runs macaque against it on a fast schedule
// with a local Slack stand-in, and prints each kill, the app coming back and macaque's recovery
// verdict on it (a reply in the kill's thread) until Ctrl-C.
//
//	make demo                      # from the repository root
//	go run ./cmd/demo -every 3s    # from e2e/, after make build
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
	"github.com/macaque-chaos/macaque/e2e/slackstub"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// options are the demo's flags.
type options struct {
	every    time.Duration // macaque's schedule
	duration time.Duration // stop by itself after this long; 0 waits for Ctrl-C
	binary   string        // the macaque binary
	manifest string        // the shipped macaque.yml
}

func main() {
	var o options
	flag.DurationVar(&o.every, "every", 5*time.Second, "how often macaque kills")
	flag.DurationVar(&o.duration, "for", 0, "stop after this long (default: run until Ctrl-C)")
	flag.StringVar(&o.binary, "macaque", "../bin/macaque", "the macaque binary (make build)")
	flag.StringVar(&o.manifest, "manifest", "../macaque.yml", "the manifest to apply")
	flag.Parse()
	if err := runUntilSignal(o); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// runUntilSignal runs the demo until Ctrl-C or SIGTERM; main's os.Exit comes after its defer.
func runUntilSignal(o options) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx, os.Stdout, o)
}

// namespace and app are what the demo deploys; the app carries the label that the shipped
// manifest's sample MACAQUE_SELECTOR asks for, so macaque.yml is applied unmodified.
const (
	namespace = "demo"
	app       = "web"
	replicas  = 3
	optIn     = "chaos.macaque.dev/enabled"
)

// run is the whole demo; it returns when ctx is done (or o.duration has passed) and
// everything it started is stopped.
func run(ctx context.Context, out io.Writer, o options) error {
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	p := &printer{w: out}
	if _, err := os.Stat(o.binary); err != nil {
		return fmt.Errorf("macaque binary: %w (run make build first)", err)
	}
	p.say("starting a local control plane (the first run builds it: ~12 minutes)")
	c, err := cluster.Start(ctx, cluster.Options{})
	if err != nil {
		return err
	}
	defer func() {
		p.say("stopping the control plane")
		_ = c.Stop()
	}()
	p.say("control plane up at %s; kwok plays node %s", c.Server, c.NodeName)

	if err := deployApp(ctx, c); err != nil {
		return err
	}
	applied, err := c.KubectlContext(ctx, "apply", "-n", namespace, "-f", o.manifest)
	if err != nil {
		return fmt.Errorf("kubectl apply -f %s: %w\n%s", o.manifest, err, applied)
	}
	p.say("kubectl apply -n %s -f macaque.yml:\n%s", namespace, strings.TrimSpace(applied))
	kubeconfig, err := c.TokenKubeconfig(ctx, namespace, "macaque")
	if err != nil {
		return err
	}

	posts := make(chan slackstub.Post, 16)
	slack := slackstub.New(posts)
	defer slack.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { watchApp(ctx, c, p) })
	wg.Go(func() { relaySlack(ctx, posts, p) })

	env, err := manifestEnv(ctx, c)
	if err != nil {
		return err
	}
	p.say("running macaque as ServiceAccount %s/macaque, every %v, with the manifest's settings; Ctrl-C to stop", namespace, o.every)
	return runMacaque(ctx, p, o, kubeconfig, slack.APIURL(), env)
}

// relaySlack prints each message macaque posts to the Slack stub, a recovery verdict as a reply
// to the kill of its pod, until ctx is done.
func relaySlack(ctx context.Context, posts <-chan slackstub.Post, p *printer) {
	kills := map[string]string{} // the ts of each kill's message -> the pod it killed
	for {
		select {
		case post := <-posts:
			if m := killedPod.FindStringSubmatch(post.Text); m != nil {
				kills[post.TS] = m[1]
			}
			if victim, ok := kills[post.ThreadTS]; ok {
				// A recovery verdict, a reply in the thread of its kill: shown beside it.
				p.say("slack #chaos, reply to the kill of %s: %s", victim, post.Text)
				continue
			}
			p.say("slack #chaos: %s", post.Text)
		case <-ctx.Done():
			return
		}
	}
}

// killedPod finds the victim in a kill's Slack message.
var killedPod = regexp.MustCompile("^:monkey_face: killed pod `[^/`]+/([^`]+)`")

// deployApp creates the demo namespace and a Deployment of replicas pods on the kwok node.
func deployApp(ctx context.Context, c *cluster.Cluster) error {
	cs := c.Clientset
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", namespace, err)
	}
	labels := map[string]string{"app": app, optIn: "true"}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: app},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(replicas)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					NodeName:   c.NodeName, // no scheduler runs
					Containers: []corev1.Container{{Name: app, Image: "example.invalid/web:1"}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(namespace).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create deployment %s: %w", app, err)
	}
	return nil
}

// manifestEnv returns the literal MACAQUE_* settings of the Deployment that macaque.yml created,
// so the demo runs with what a user would deploy (the schedule and Slack are overridden later).
func manifestEnv(ctx context.Context, c *cluster.Cluster) ([]string, error) {
	d, err := c.Clientset.AppsV1().Deployments(namespace).Get(ctx, "macaque", metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("read macaque's Deployment: %w", err)
	}
	var env []string
	for _, e := range d.Spec.Template.Spec.Containers[0].Env {
		if strings.HasPrefix(e.Name, "MACAQUE_") && e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	return env, nil
}

// watchApp prints pods of the app appearing and disappearing, and the Deployment's readiness.
func watchApp(ctx context.Context, c *cluster.Cluster, p *printer) {
	pods, err := c.Clientset.CoreV1().Pods(namespace).Watch(ctx, metav1.ListOptions{LabelSelector: "app=" + app})
	if err != nil {
		p.say("watch pods: %v", err)
		return
	}
	defer pods.Stop()
	deploys, err := c.Clientset.AppsV1().Deployments(namespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + app})
	if err != nil {
		p.say("watch deployment: %v", err)
		return
	}
	defer deploys.Stop()

	terminating := map[string]bool{}
	lastReady := int32(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-pods.ResultChan():
			if !ok {
				return
			}
			if pod, isPod := ev.Object.(*corev1.Pod); isPod {
				sayPodEvent(p, ev.Type, pod, terminating)
			}
		case ev, ok := <-deploys.ResultChan():
			if !ok {
				return
			}
			if d, isDeploy := ev.Object.(*appsv1.Deployment); isDeploy && d.Status.ReadyReplicas != lastReady {
				lastReady = d.Status.ReadyReplicas
				p.say("deployment %s: %d/%d ready", app, lastReady, replicas)
			}
		}
	}
}

// sayPodEvent prints a pod's creation, its end, and the first event that shows it terminating;
// terminating holds the pods already said to be.
func sayPodEvent(p *printer, typ watch.EventType, pod *corev1.Pod, terminating map[string]bool) {
	switch {
	case typ == watch.Added:
		p.say("pod %s created", pod.Name)
	case typ == watch.Deleted:
		p.say("pod %s gone", pod.Name)
		delete(terminating, pod.Name)
	case pod.DeletionTimestamp != nil && !terminating[pod.Name]:
		terminating[pod.Name] = true
		p.say("pod %s terminating", pod.Name)
	}
}

// runMacaque runs the real binary out of cluster with the ServiceAccount's token, relaying its
// log, until ctx is done; then it sends SIGTERM and waits for a clean exit.
func runMacaque(ctx context.Context, p *printer, o options, kubeconfig, slackURL string, manifestEnv []string) error {
	bin, err := filepath.Abs(o.binary)
	if err != nil {
		return err
	}
	env := slices.Concat(manifestEnv, []string{ // later entries win
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "KUBECONFIG=" + kubeconfig,
		"MACAQUE_CRONTAB=@every " + o.every.String(), "MACAQUE_ALLOW_FAST_SCHEDULE=true",
		"MACAQUE_SLACK_TOKEN=xoxb-demo", "MACAQUE_SLACK_CHANNEL=C0DEMO", "MACAQUE_SLACK_API_URL=" + slackURL,
		"POD_NAME=macaque-demo",
		"POD_NAMESPACE=" + namespace,    // as the downward API says in a pod: where its Lease is
		"MACAQUE_HTTP_ADDR=127.0.0.1:0", // its log says which port: :8080 may be taken on a laptop
	})
	m, err := macaqueproc.Start(bin, macaqueproc.Options{Env: env, OnLine: func(line string) { p.say("macaque: %s", line) }})
	if err != nil {
		return fmt.Errorf("start macaque: %w", err)
	}

	select {
	case <-m.Done():
		return fmt.Errorf("macaque exited early: %v", m.State())
	case <-ctx.Done():
	}
	p.say("stopping macaque (SIGTERM)")
	code, err := m.Stop(30 * time.Second)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("macaque exited %d after SIGTERM", code)
	}
	p.say("macaque stopped cleanly")
	return nil
}

// printer writes timestamped lines from several goroutines without interleaving them.
type printer struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *printer) say(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
