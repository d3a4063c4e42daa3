package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"sync"
	"sync/atomic"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
)

// The ways bench can fill the namespace.
const (
	// createPods creates bare pods bound to the kwok node from many concurrent clients: the API
	// server is the only limit. Pods macaque kills are not replaced; the next size tops up.
	createPods = "pods"
	// createDeployment scales one Deployment: the ReplicaSet controller creates the pods (at most
	// kube-controller-manager's --kube-api-qps per second) and replaces the ones macaque kills.
	createDeployment = "deployment"
	// createCluster spreads the pods over many namespaces, one Deployment in each (the
	// cluster-wide case, -cluster).
	createCluster = "cluster"
)

// Scope of the benchmark: macaque is run with this selector (the sample one in macaque.yml), and
// every bench pod carries it.
const (
	scopeLabel    = "chaos.macaque.dev/enabled"
	scopeSelector = scopeLabel + "=true"
	appName       = "web"
	// instanceLabel tells apart the Deployments of one namespace (-workloads, -many).
	instanceLabel = "app.kubernetes.io/instance"
)

// podLabels are a typical workload's labels plus the opt-in label macaque selects on.
func podLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":    appName,
		instanceLabel:               "shop",
		"app.kubernetes.io/version": "1.4.2",
		scopeLabel:                  "true",
	}
}

// podTemplate is a small but ordinary pod: one container with requests, typical labels and one
// annotation, bound to the kwok node because the control plane runs no scheduler.
func podTemplate(node string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      podLabels(),
			Annotations: map[string]string{"kubectl.kubernetes.io/default-container": "app"},
		},
		Spec: corev1.PodSpec{
			NodeName: node,
			Containers: []corev1.Container{{
				Name:  "app",
				Image: "registry.example.invalid/shop/web:1.4.2",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("10m"),
					corev1.ResourceMemory: resource.MustParse("16Mi"),
				}},
			}},
		},
	}
}

// setupResult says how a size's pods were made and how long that took.
type setupResult struct {
	method  string
	created int           // pods bench (or the ReplicaSet controller) created for this size
	create  time.Duration // until the last create returned (bare pods) or replicas were set
	running time.Duration // until the namespace held the size's number of Running pods
	// namespaces the pods were spread over (createCluster only).
	namespaces int
	// deployments the namespace's pods are spread over (createDeployment; 0 or 1: one).
	deployments int
	minReady    int32 // their minReadySeconds
}

// population fills one namespace with Running pods in scope and grows it size by size.
type population struct {
	admin    kubernetes.Interface // for the Deployment and the Running count
	fast     kubernetes.Interface // unthrottled, protobuf: for bulk creates
	ns, node string
	method   string
	creators int
	// workloads is how many Deployments the namespace's pods are spread over (createDeployment;
	// 0 or 1: the one Deployment named appName).
	workloads int
	minReady  int32 // the workloads' minReadySeconds (workloads > 1)
	next      int   // index of the next bare pod's name, so names never repeat
	log       *log.Logger
}

// newPopulation builds the clients: the bulk client has no client-side rate limit (the admin
// user is exempt from the API server's priority and fairness too) and speaks protobuf, which
// costs the API server less to decode than JSON.
func newPopulation(c *cluster.Cluster, ns, method string, creators int, logger *log.Logger) (*population, error) {
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.QPS = -1 // no client-side limiter
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	fast, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("build bulk client: %w", err)
	}
	return &population{admin: c.Clientset, fast: fast, ns: ns, node: c.NodeName, method: method,
		creators: creators, log: logger}, nil
}

// growTo makes the namespace hold want Running pods in scope and says how long that took.
func (p *population) growTo(ctx context.Context, want int) (setupResult, error) {
	began := time.Now()
	have, err := countRunning(ctx, p.admin.CoreV1().RESTClient(), p.ns, scopeSelector)
	if err != nil {
		return setupResult{}, err
	}
	res := setupResult{method: p.method, created: max(0, want-have)}
	p.log.Printf("%d pods: %d Running, making %d more (%s)", want, have, res.created, p.method)
	switch {
	case p.method == createDeployment && p.workloads > 1:
		res.deployments, res.minReady = p.workloads, p.minReady
		err = p.scaleDeployments(ctx, want)
	case p.method == createDeployment:
		err = p.scaleDeployment(ctx, deploymentOf(appName, int32(want), p.node))
	default:
		err = p.createBare(ctx, res.created)
	}
	if err != nil {
		return res, err
	}
	res.create = time.Since(began)
	if p.workloads > 1 {
		// The guard passes over a Deployment short of a pod: wait for all of them, not for a count.
		err = p.waitSpread(ctx, want, p.workloads)
	} else {
		err = p.waitRunning(ctx, want)
	}
	if err != nil {
		return res, err
	}
	res.running = time.Since(began)
	p.log.Printf("%d pods Running after %s (creates done after %s)", want,
		res.running.Round(100*time.Millisecond), res.create.Round(100*time.Millisecond))
	return res, nil
}

// createBare creates n bare pods with p.creators concurrent workers, logging progress.
func (p *population) createBare(ctx context.Context, n int) error {
	if n == 0 {
		return nil
	}
	first := p.next
	p.next += n
	tmpl := podTemplate(p.node)
	return p.forEach(ctx, "created", "pods", n, func(ctx context.Context, i int) error {
		pod := &corev1.Pod{ObjectMeta: *tmpl.ObjectMeta.DeepCopy(), Spec: *tmpl.Spec.DeepCopy()}
		pod.Name = fmt.Sprintf("%s-%06d", appName, first+i)
		return p.createPod(ctx, pod)
	})
}

// forEach runs do for 0..n-1 with p.creators concurrent workers, logging progress as "what
// done of n things", and returns the first error, which stops the rest.
func (p *population) forEach(ctx context.Context, what, things string, n int, do func(context.Context, int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var done atomic.Int64
	stopProgress := p.logProgress(ctx, what, things, n, &done)
	defer stopProgress()
	workqueue.ParallelizeUntil(ctx, p.creators, n, func(i int) {
		if err := do(ctx, i); err != nil {
			cancel(err)
			return
		}
		done.Add(1)
	})
	return context.Cause(ctx)
}

// createPod creates one pod, retrying what an overloaded API server may answer.
func (p *population) createPod(ctx context.Context, pod *corev1.Pod) error {
	return createRetrying(ctx, "pod "+pod.Name, func(ctx context.Context) error {
		_, err := p.fast.CoreV1().Pods(p.ns).Create(ctx, pod, metav1.CreateOptions{})
		return err
	})
}

// createRetrying runs create up to 5 times, retrying what an overloaded API server may answer;
// an object that already exists counts as created, so a retried create that had in fact
// succeeded is no error. what names the object in the error.
func createRetrying(ctx context.Context, what string, create func(context.Context) error) error {
	const attempts = 5
	var err error
	for attempt := range attempts {
		err = create(ctx)
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(time.Duration(attempt+1) * 200 * time.Millisecond)
	}
	return fmt.Errorf("create %s after %d attempts: %w", what, attempts, err)
}

// scaleDeployments spreads pods evenly over p.workloads Deployments of their own, creating or
// scaling each of them.
func (p *population) scaleDeployments(ctx context.Context, pods int) error {
	replicas := int32(pods / p.workloads)
	return p.forEach(ctx, "created or scaled", "Deployments", p.workloads, func(ctx context.Context, i int) error {
		d := ownDeployment(numbered(appName, i, p.workloads), replicas, p.node)
		d.Spec.MinReadySeconds = p.minReady
		return p.scaleDeployment(ctx, d)
	})
}

// scaleDeployment creates d, or scales the Deployment of its name to its replicas.
func (p *population) scaleDeployment(ctx context.Context, d *appsv1.Deployment) error {
	deployments := p.fast.AppsV1().Deployments(p.ns)
	_, err := deployments.Get(ctx, d.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return createRetrying(ctx, "Deployment "+d.Name, func(ctx context.Context) error {
			_, err := deployments.Create(ctx, d, metav1.CreateOptions{})
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("get Deployment %s: %w", d.Name, err)
	}
	scale, err := deployments.GetScale(ctx, d.Name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get Deployment %s's scale: %w", d.Name, err)
	}
	scale.Spec.Replicas = *d.Spec.Replicas
	if _, err := deployments.UpdateScale(ctx, d.Name, scale, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("scale Deployment %s to %d: %w", d.Name, scale.Spec.Replicas, err)
	}
	return nil
}

// ownDeployment is deploymentOf with a selector of its own (its name as instanceLabel): the
// Deployments of one namespace must not select each other's pods, and a recovery verdict
// follows the pods its victim's ReplicaSet selects.
func ownDeployment(name string, replicas int32, node string) *appsv1.Deployment {
	d := deploymentOf(name, replicas, node)
	d.Spec.Selector.MatchLabels[instanceLabel] = name
	d.Spec.Template.Labels[instanceLabel] = name
	return d
}

// deploymentOf is the bench's Deployment: replicas copies of podTemplate, bound to node.
func deploymentOf(name string, replicas int32, node string) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: podLabels()},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: podLabels()},
			Template: podTemplate(node),
		},
	}
}

// runningPoll is how often the Running count is taken while waiting: each count pages through
// the whole namespace, which at 50k pods costs the API server a noticeable slice of a core.
const runningPoll = 3 * time.Second

// waitRunning waits until want pods in scope are Running, logging progress. It gives up only
// when the count stops growing for runningStall: on a busy machine the ReplicaSet controller
// may fill the namespace at a tenth of its usual pace, which is slow but still a bench.
func (p *population) waitRunning(ctx context.Context, want int) error {
	best, since := -1, time.Now()
	for {
		n, err := countRunning(ctx, p.admin.CoreV1().RESTClient(), p.ns, scopeSelector)
		if err != nil {
			return err
		}
		if n >= want {
			return nil
		}
		if n > best {
			best, since = n, time.Now()
		}
		if time.Since(since) > runningStall {
			return fmt.Errorf("only %d of %d pods Running, none more for %s", n, want, runningStall)
		}
		p.log.Printf("%d of %d pods Running", n, want)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(runningPoll):
		}
	}
}

// runningStall is how long the Running count may stay put before the setup is deemed stuck.
const runningStall = 3 * time.Minute

// logProgress logs done/total (of things) every 10 seconds until the returned func is called.
func (p *population) logProgress(ctx context.Context, what, things string, total int, done *atomic.Int64) func() {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stop:
				return
			case <-t.C:
				p.log.Printf("%s %d of %d %s", what, done.Load(), total, things)
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// tableAccept asks for the server-side printed table, as macaque does: the cheapest list form.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// countPage is how many rows a Running count asks for at once, as many as macaque does: each
// request costs the API server a pass over the namespace, so few of them load it least while
// the bench waits for its pods.
const countPage = 50000

// countRunning counts the pods matching selector that are Running and not being deleted, the
// same way macaque counts its candidates.
func countRunning(ctx context.Context, client rest.Interface, ns, selector string) (int, error) {
	n, token := 0, ""
	for {
		req := client.Get().Namespace(ns).Resource("pods").
			SetHeader("Accept", tableAccept).
			Param("fieldSelector", "status.phase=Running").
			Param("labelSelector", selector).
			Param("includeObject", "None").
			Param("limit", fmt.Sprint(countPage))
		if token != "" {
			req = req.Param("continue", token)
		}
		body, err := req.DoRaw(ctx)
		if err != nil {
			return 0, fmt.Errorf("count Running pods in %s: %w", cmp.Or(ns, "every namespace"), err)
		}
		rows, next, err := countTableRows(body)
		if err != nil {
			return 0, err
		}
		n += rows
		if next == "" {
			return n, nil
		}
		token = next
	}
}

// countTableRows counts the rows of a pod Table whose Status is not Terminating (the server
// prints Terminating for a pod with a deletionTimestamp, whatever its phase).
func countTableRows(body []byte) (rows int, next string, err error) {
	var t struct {
		Metadata struct {
			Continue string `json:"continue"`
		} `json:"metadata"`
		ColumnDefinitions []struct {
			Name string `json:"name"`
		} `json:"columnDefinitions"`
		Rows []struct {
			Cells []any `json:"cells"`
		} `json:"rows"`
	}
	if err := json.Unmarshal(body, &t); err != nil {
		return 0, "", fmt.Errorf("decode pod table: %w", err)
	}
	status := -1
	for i, c := range t.ColumnDefinitions {
		if c.Name == "Status" {
			status = i
		}
	}
	if status < 0 && len(t.Rows) > 0 {
		return 0, "", fmt.Errorf("pod table has no Status column")
	}
	for _, r := range t.Rows {
		if status < len(r.Cells) && r.Cells[status] != "Terminating" {
			rows++
		}
	}
	return rows, t.Metadata.Continue, nil
}
