package cluster

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Options tune Start. The zero value is what most tests want.
type Options struct {
	// BinDir is the folder holding etcd, kube-apiserver,
	// kube-controller-manager, kubectl and kwok. Empty means
	// $MACAQUE_CONTROLPLANE_BIN, else the folder hack/controlplane.sh builds.
	BinDir string
	// Logf receives progress and, when something fails, the tail of every
	// component's log. Nil discards them.
	Logf func(format string, args ...any)
	// StartTimeout bounds the start-up after the binaries are found.
	// Zero means 2 minutes.
	StartTimeout time.Duration
	// StopGrace is how long Stop lets each component shut down after SIGTERM
	// before killing it. Zero means 10 seconds.
	StopGrace time.Duration
	// ControllerQPS is kube-controller-manager's --kube-api-qps (its burst is
	// twice that). Zero means 200: plenty for the e2e tests; the bench raises
	// it so that the ReplicaSet controller fills 50,000 pods in minutes.
	ControllerQPS int
}

func (o Options) withDefaults() Options {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = 2 * time.Minute
	}
	if o.StopGrace == 0 {
		o.StopGrace = 10 * time.Second
	}
	if o.ControllerQPS == 0 {
		o.ControllerQPS = 200
	}
	return o
}

// Cluster is a running control plane: etcd, kube-apiserver,
// kube-controller-manager and kwok faking one node, all on 127.0.0.1 and all
// in a temp dir that Stop removes. Its fields are set by Start and must not be
// changed.
type Cluster struct {
	// Dir is the temp dir holding certificates, kubeconfigs, etcd's data and
	// the components' logs (logs/<component>.log).
	Dir string
	// BinDir is the folder the binaries were run from.
	BinDir string
	// Server is the API server's URL.
	Server string
	// Kubeconfig is the path of a kubeconfig for an admin user in
	// system:masters, for tools and the daemon under test.
	Kubeconfig string
	// RESTConfig authenticates as the same admin user.
	RESTConfig *rest.Config
	// Clientset is an admin client, for arranging and checking test state.
	Clientset kubernetes.Interface
	// NodeName is the Ready kwok node that pods can be bound to with
	// spec.nodeName (the control plane runs no scheduler).
	NodeName string

	layout layout
	caPEM  []byte
	opts   Options
	procs  []*process // in start order

	stopOnce sync.Once
	stopErr  error
}

// Start brings up a control plane and returns once the API server is ready,
// the kwok node is Ready and the controller manager has created the default
// ServiceAccount. On error nothing is left running and the error carries the
// tail of the components' logs. Call Stop when done.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts = opts.withDefaults()
	binDir, err := findBinaries(ctx, opts.BinDir)
	if err != nil {
		return nil, err
	}
	dir, err := makeDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, BinDir: binDir, NodeName: "kwok-node-0", layout: layout{dir: dir}, opts: opts}

	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.start(ctx); err != nil {
		err = fmt.Errorf("start control plane: %w\n%s", err, c.logTails(40))
		if stopErr := c.Stop(); stopErr != nil {
			err = fmt.Errorf("%w\nalso: %w", err, stopErr)
		}
		return nil, err
	}
	opts.Logf("control plane up in %.1fs at %s (dir %s)", time.Since(began).Seconds(), c.Server, c.Dir)
	return c, nil
}

// Stop kills every component (SIGTERM, then SIGKILL after the grace period),
// waits for them to exit and removes Dir. It is safe to call more than once
// and from several goroutines; later calls return the first call's result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		// Reverse start order: clients before the API server before etcd,
		// so nothing logs a storm of connection errors while stopping.
		for i := len(c.procs) - 1; i >= 0; i-- {
			c.procs[i].stop(c.opts.StopGrace)
		}
		if err := os.RemoveAll(c.Dir); err != nil {
			c.stopErr = fmt.Errorf("remove cluster dir: %w", err)
		}
	})
	return c.stopErr
}

// PIDs returns the process ids of the components, for tests that check
// nothing outlives Stop.
func (c *Cluster) PIDs() []int {
	pids := make([]int, 0, len(c.procs))
	for _, p := range c.procs {
		pids = append(pids, p.pid())
	}
	return pids
}

// LogTails returns the last lines of every component's log, to explain a
// failing test. It reads nothing once Stop has removed Dir.
func (c *Cluster) LogTails(lines int) string { return c.logTails(lines) }

func (c *Cluster) logTails(lines int) string {
	var b strings.Builder
	for _, p := range c.procs {
		b.WriteString(p.tail(lines))
	}
	return b.String()
}

// checkAlive fails as soon as a component has died, so waits end with the
// real cause instead of a timeout.
func (c *Cluster) checkAlive() error {
	for _, p := range c.procs {
		if err := p.exitError(); err != nil {
			return err
		}
	}
	return nil
}
