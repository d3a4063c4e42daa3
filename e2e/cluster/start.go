package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// pollInterval is how often start-up conditions are checked.
const pollInterval = 100 * time.Millisecond

// start runs the components in dependency order and waits for each to be
// usable before starting what needs it.
func (c *Cluster) start(ctx context.Context) error {
	l := c.layout
	for _, d := range []string{l.path("pki"), l.path("logs"), l.path("tokens"), l.kwokWorkDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("create %s: %w", d, err)
		}
	}
	nums, err := freePorts(3)
	if err != nil {
		return err
	}
	p := ports{etcdClient: nums[0], etcdPeer: nums[1], apiServer: nums[2]}
	c.Server = p.apiServerURL()

	admin, err := c.writeCredentials()
	if err != nil {
		return err
	}

	c.opts.Logf("starting etcd on %s", p.etcdClientURL())
	if err := c.run(binEtcd, etcdArgs(l, p), nil); err != nil {
		return err
	}
	if err := c.waitEtcd(ctx, p.etcdClientURL()); err != nil {
		return err
	}

	if err := c.startAPIServer(ctx, p, admin); err != nil {
		return err
	}

	c.opts.Logf("starting kube-controller-manager and kwok")
	if err := c.run(binControllerManager, controllerManagerArgs(l, c.opts.ControllerQPS), nil); err != nil {
		return err
	}
	if err := c.run(binKwok, kwokArgs(l), kwokEnv(l)); err != nil {
		return err
	}
	if err := c.createNode(ctx); err != nil {
		return err
	}
	if err := c.waitNodeReady(ctx); err != nil {
		return err
	}
	return c.waitDefaultServiceAccount(ctx)
}

// startAPIServer starts kube-apiserver on p's port and waits until it answers; it sets
// c.RESTConfig and c.Clientset, as admin, for everything after.
func (c *Cluster) startAPIServer(ctx context.Context, p ports, admin *keyPair) error {
	c.opts.Logf("starting kube-apiserver on %s", c.Server)
	if err := c.run(binKubeAPIServer, apiServerArgs(c.layout, p), nil); err != nil {
		return err
	}
	c.RESTConfig = &rest.Config{
		Host: c.Server,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.caPEM,
			CertData: admin.certPEM,
			KeyData:  admin.keyPEM,
		},
		// Tests create and watch many objects quickly; the default client
		// throttling (5 QPS) would only slow them down.
		QPS:   100,
		Burst: 200,
	}
	var err error
	if c.Clientset, err = kubernetes.NewForConfig(c.RESTConfig); err != nil {
		return fmt.Errorf("create admin client: %w", err)
	}
	return c.waitAPIServer(ctx)
}

// writeCredentials creates the CA, the API server's serving certificate, the
// ServiceAccount signing key and a kubeconfig for each client: the admin
// (system:masters), the controller manager (its own RBAC identity, as in
// kubeadm clusters) and kwok (system:masters, since it plays every kubelet).
// It returns the admin's certificate for the harness's own client.
func (c *Cluster) writeCredentials() (*keyPair, error) {
	l := c.layout
	ca, err := newCA()
	if err != nil {
		return nil, err
	}
	if err := ca.write(l.pki("ca.crt"), l.pki("ca.key")); err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	c.caPEM = ca.certPEM
	serving, err := newServingCert(ca, net.ParseIP(serviceIP))
	if err != nil {
		return nil, err
	}
	if err := serving.write(l.pki("apiserver.crt"), l.pki("apiserver.key")); err != nil {
		return nil, fmt.Errorf("API server certificate: %w", err)
	}
	if err := writeServiceAccountKey(l.pki("sa.key")); err != nil {
		return nil, err
	}

	admin, err := c.writeClientKubeconfig(ca, l.adminKubeconfig(), "macaque-e2e-admin", "system:masters")
	if err != nil {
		return nil, err
	}
	if _, err := c.writeClientKubeconfig(ca, l.controllerKubeconfig(), "system:kube-controller-manager"); err != nil {
		return nil, err
	}
	if _, err := c.writeClientKubeconfig(ca, l.kwokKubeconfig(), "kwok-controller", "system:masters"); err != nil {
		return nil, err
	}
	c.Kubeconfig = l.adminKubeconfig()

	if err := os.WriteFile(l.kwokStages(), []byte(kwokStages), 0o644); err != nil {
		return nil, fmt.Errorf("write kwok stages: %w", err)
	}
	return admin, nil
}

// writeClientKubeconfig issues a client certificate for user in groups and
// writes a kubeconfig at path that uses it.
func (c *Cluster) writeClientKubeconfig(ca *keyPair, path, user string, groups ...string) (*keyPair, error) {
	kp, err := newClientCert(ca, user, groups...)
	if err != nil {
		return nil, err
	}
	if err := writeKubeconfig(path, c.Server, c.caPEM, certAuth(kp), ""); err != nil {
		return nil, err
	}
	return kp, nil
}

// run starts the named binary and tracks it for Stop.
func (c *Cluster) run(name string, args, env []string) error {
	p, err := startProcess(name, filepath.Join(c.BinDir, name), args, env, c.layout.log(name))
	if err != nil {
		return err
	}
	c.procs = append(c.procs, p)
	return nil
}

// poll checks cond until it holds, a component dies or ctx ends.
func (c *Cluster) poll(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var last error
	err := wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		if err := c.checkAlive(); err != nil {
			return false, err
		}
		// An error of cond is remembered, not returned: the poll goes on until ctx ends, and
		// then says what it last saw.
		ok, err := cond(ctx)
		if err != nil {
			last = err
		}
		return ok && err == nil, nil
	})
	if err == nil {
		return nil
	}
	if last != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	return fmt.Errorf("wait for %s: %w", what, err)
}

// waitEtcd waits for etcd's /health to report healthy, so the API server
// does not start against a store that is still electing itself leader.
func (c *Cluster) waitEtcd(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	return c.poll(ctx, "etcd health", func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/health", nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return false, err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"health":"true"`) {
			return false, fmt.Errorf("etcd /health: %s: %s", resp.Status, body)
		}
		return true, nil
	})
}

// waitAPIServer waits for /readyz, which covers etcd, the bootstrap RBAC
// policy and the system namespaces.
func (c *Cluster) waitAPIServer(ctx context.Context) error {
	return c.poll(ctx, "kube-apiserver /readyz", func(ctx context.Context) (bool, error) {
		body, err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err != nil {
			return false, fmt.Errorf("%w: %s", err, body)
		}
		return true, nil
	})
}

// waitDefaultServiceAccount waits for the ServiceAccount controller to create
// "default" in namespace default: proof the controller manager is running
// and pods can be admitted.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context) error {
	return c.poll(ctx, "the default ServiceAccount (kube-controller-manager)", func(ctx context.Context) (bool, error) {
		_, err := c.Clientset.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, err
	})
}
