package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The cluster-wide case (issues 10, 12 and 23): macaque-cluster.yml applied as a user would,
// the binary run as its ServiceAccount with MACAQUE_NAMESPACE=* and MACAQUE_NAMESPACE_SELECTOR,
// over pods spread across many namespaces, one Deployment in each, all but a few namespaces
// labelled for it.
const (
	// clusterSANamespace is where macaque-cluster.yml creates macaque's ServiceAccount.
	clusterSANamespace = "macaque"
	// clusterNSPrefix names the namespaces the pods are spread over: wide-000, wide-001...
	clusterNSPrefix = "wide"
	// clusterPoll is how often the Deployments' readiness is read while waiting: a list of the
	// Deployments, far cheaper for the API server than counting the pods.
	clusterPoll = 5 * time.Second
	// clusterLabelKey and clusterLabelValue label the namespaces macaque is to kill in, and
	// clusterNamespaceSelector (MACAQUE_NAMESPACE_SELECTOR) selects them: every namespace but
	// the last clusterUnselected, whose pods are in MACAQUE_SELECTOR's scope all the same, so
	// that the row shows the selector narrowing the candidates.
	clusterLabelKey, clusterLabelValue = "chaos", "on"
	clusterNamespaceSelector           = clusterLabelKey + "=" + clusterLabelValue
)

// clusterUnselected is how many of n namespaces are left unlabelled: 1%, and at least one of
// two or more. At 1,000 namespaces, 10: few enough that macaque lists the pods in one
// cluster-wide request that leaves them out by field selector, as a cluster that labels most
// of its namespaces in would have it.
func clusterUnselected(n int) int {
	if n < 2 {
		return 0
	}
	return max(1, n/100)
}

// selected is how many of the spec's namespaces are labelled for macaque.
func (s clusterSpec) selected() int { return s.namespaces - clusterUnselected(s.namespaces) }

// clusterSpec is the cluster-wide case's population: pods Running pods spread evenly over
// namespaces. The zero value is no cluster-wide case.
type clusterSpec struct {
	pods, namespaces int
}

// replicas is the size of each namespace's Deployment.
func (s clusterSpec) replicas() int { return s.pods / s.namespaces }

// String is the spec as -cluster takes it.
func (s clusterSpec) String() string { return fmt.Sprintf("%dx%d", s.pods, s.namespaces) }

// parseClusterSpec reads -cluster's PODSxNAMESPACES; empty is no cluster-wide case.
func parseClusterSpec(v string) (clusterSpec, error) {
	pods, namespaces, err := parseSpread(v, "namespaces", "100000x1000")
	return clusterSpec{pods: pods, namespaces: namespaces}, err
}

// parseSpread reads PODSxGROUPS, pods spread evenly over groups (named by noun in errors, with
// example); empty is none (zeros).
func parseSpread(v, noun, example string) (pods, groups int, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, 0, nil
	}
	upper := strings.ToUpper(noun)
	p, g, ok := strings.Cut(v, "x")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not PODSx%s (%s)", v, upper, example)
	}
	pods, errPods := strconv.Atoi(p)
	groups, errGroups := strconv.Atoi(g)
	if errPods != nil || errGroups != nil || pods < 1 || groups < 1 {
		return 0, 0, fmt.Errorf("%q: PODS and %s must be positive numbers", v, upper)
	}
	if pods%groups != 0 {
		return 0, 0, fmt.Errorf("%q: %d pods do not spread evenly over %d %s", v, pods, groups, noun)
	}
	return pods, groups, nil
}

// numbered is the i-th of n names with prefix, zero-padded so that they sort: wide-007 of 1000.
func numbered(prefix string, i, n int) string {
	return fmt.Sprintf("%s-%0*d", prefix, len(strconv.Itoa(n-1)), i)
}

// benchCluster measures the cluster-wide case on a control plane of its own, so that only its
// pods are in the cluster macaque lists, and returns the targets missed. Stopping the control
// plane removes everything it made.
func benchCluster(ctx context.Context, o options, stdout io.Writer, logger *log.Logger) ([]string, error) {
	c, err := startControlPlane(ctx, o, logger)
	if err != nil {
		return nil, err
	}
	defer stopControlPlane(c, logger)

	if out, err := c.KubectlContext(ctx, "apply", "-f", o.clusterManifest); err != nil {
		return nil, fmt.Errorf("apply %s: %w\n%s", o.clusterManifest, err, out)
	}
	pop, err := newPopulation(c, "", createCluster, o.creators, logger)
	if err != nil {
		return nil, err
	}
	setup, err := pop.spread(ctx, o.cluster)
	if err != nil {
		return nil, fmt.Errorf("set up %s: %w", o.cluster, err)
	}
	if size, err := etcdDBSize(c.Dir); err == nil {
		logger.Printf("etcd's database: %.0f MB", float64(size)/1e6)
	}
	every := o.every
	if every == 0 {
		every = autoEvery(o.cluster.pods)
	}
	var missed []string
	for i, binary := range append([]string{o.macaque}, o.compare...) {
		res, err := measure(ctx, c, clusterSANamespace, measureSpec{
			pods: o.cluster.pods, ticks: o.ticks, every: every, binary: binary, goMemLimit: o.goMemLimit,
			scope: "*", namespaces: o.cluster.namespaces,
			namespaceSelector: clusterNamespaceSelector, selected: o.cluster.selected(),
		}, logger)
		if err != nil {
			return nil, fmt.Errorf("measure %s: %w", binary, err)
		}
		res.setup = setup
		if i == 0 { // the targets are the binary under test's; the others are for comparison
			missed = append(missed, printSize(stdout, res)...)
		} else {
			printSize(stdout, res)
		}
	}
	return missed, nil
}

// spread creates spec.namespaces namespaces, each with one Deployment of spec.replicas() pods,
// with p.creators concurrent creators, and waits until every Deployment is at full strength
// and the cluster holds spec.pods Running pods in scope.
func (p *population) spread(ctx context.Context, spec clusterSpec) (setupResult, error) {
	began := time.Now()
	res := setupResult{method: createCluster, created: spec.pods, namespaces: spec.namespaces}
	p.log.Printf("%s: %d namespaces, one Deployment of %d replicas in each (%d creators)",
		spec, spec.namespaces, spec.replicas(), p.creators)
	err := p.forEach(ctx, "created", "namespaces", spec.namespaces, func(ctx context.Context, i int) error {
		return p.createNamespaceApp(ctx, i, spec.namespaces, int32(spec.replicas()))
	})
	if err != nil {
		return res, err
	}
	res.create = time.Since(began)
	p.log.Printf("%d namespaces and Deployments created after %s", spec.namespaces, res.create.Round(100*time.Millisecond))
	if err := p.waitSpread(ctx, spec.pods, spec.namespaces); err != nil {
		return res, err
	}
	res.running = time.Since(began)
	p.log.Printf("%d pods Running and Ready in %d namespaces after %s", spec.pods, spec.namespaces,
		res.running.Round(100*time.Millisecond))
	return res, nil
}

// createNamespaceApp creates the i-th of n namespaces (labelled for macaque but for the last
// clusterUnselected), its default ServiceAccount and its Deployment.
// The ServiceAccount is made here rather than left to kube-controller-manager: a pod created
// before it exists is refused, and a thousand ReplicaSets retrying at once would wait on the
// controller's shared retry rate (10 a second) for minutes.
func (p *population) createNamespaceApp(ctx context.Context, i, n int, replicas int32) error {
	ns := numbered(clusterNSPrefix, i, n)
	meta := metav1.ObjectMeta{Name: ns}
	if i < n-clusterUnselected(n) {
		meta.Labels = map[string]string{clusterLabelKey: clusterLabelValue}
	}
	err := createRetrying(ctx, "namespace "+ns, func(ctx context.Context) error {
		_, err := p.fast.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: meta}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	err = createRetrying(ctx, "ServiceAccount "+ns+"/default", func(ctx context.Context) error {
		_, err := p.fast.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return err
	}
	// A name of its own per namespace, as distinct apps have: with one name everywhere the pods'
	// generated names would repeat across namespaces now and then (same template hash, five
	// random characters), and a cluster-wide read-back would find two pods.
	d := deploymentOf(numbered(appName, i, n), replicas, p.node)
	return createRetrying(ctx, "Deployment "+ns+"/"+d.Name, func(ctx context.Context) error {
		_, err := p.fast.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		return err
	})
}

// waitSpread waits until deployments Deployments in scope (in p.ns, or every namespace) are at
// full strength (as macaque's guard judges it) and then until they hold pods Running pods in
// scope, logging progress. Like waitRunning, it gives up only when the Ready count stops growing.
func (p *population) waitSpread(ctx context.Context, pods, deployments int) error {
	best, since := -1, time.Now()
	for {
		list, err := p.fast.AppsV1().Deployments(p.ns).List(ctx, metav1.ListOptions{LabelSelector: scopeSelector})
		if err != nil {
			return fmt.Errorf("list Deployments: %w", err)
		}
		ready, full := spreadProgress(list.Items)
		if full >= deployments {
			n, err := countRunning(ctx, p.admin.CoreV1().RESTClient(), p.ns, scopeSelector)
			if err != nil {
				return err
			}
			if n >= pods {
				return nil
			}
			p.log.Printf("every Deployment at full strength, but %d of %d pods Running", n, pods)
		}
		if ready > best {
			best, since = ready, time.Now()
		}
		if time.Since(since) > runningStall {
			return fmt.Errorf("only %d of %d pods Ready (%d of %d Deployments at full strength), none more for %s",
				ready, pods, full, deployments, runningStall)
		}
		p.log.Printf("%d of %d pods Ready, %d of %d Deployments at full strength", ready, pods, full, deployments)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(clusterPoll):
		}
	}
}

// spreadProgress sums the Deployments' Ready pods and counts those at full strength.
func spreadProgress(deployments []appsv1.Deployment) (ready, full int) {
	for _, d := range deployments {
		ready += int(d.Status.ReadyReplicas)
		if atFullStrength(d) {
			full++
		}
	}
	return ready, full
}

// atFullStrength reports whether the Deployment's controller has seen its spec and every
// wanted pod is updated, Ready and available, with none to spare: what macaque's guard asks
// of a victim's Deployment.
func atFullStrength(d appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.Replicas == want && s.UpdatedReplicas == want &&
		s.ReadyReplicas == want && s.AvailableReplicas == want
}

// etcdDBSize is the size of etcd's database file under the cluster's directory: with
// fsync off and no quota raised, what stands between a large population and etcd's 2 GiB
// default quota.
func etcdDBSize(dir string) (int64, error) {
	var size int64
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil //nolint:nilerr // a file that vanished mid-walk is not the database
		}
		if e.Name() == "db" && filepath.Base(filepath.Dir(path)) == "snap" {
			info, err := e.Info()
			if err == nil {
				size = info.Size()
			}
		}
		return nil
	})
	if err == nil && size == 0 {
		err = fmt.Errorf("no etcd database under %s", dir)
	}
	return size, err
}
