package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kubectlTimeout bounds Kubectl, so a hung command fails the test instead of
// running into the go test timeout.
const kubectlTimeout = 2 * time.Minute

// Kubectl runs the built kubectl as the admin user and returns its stdout.
// It is for steps that are clearer as kubectl commands than as client-go
// calls (applying manifests, checking what a user would see).
func (c *Cluster) Kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlTimeout)
	defer cancel()
	return c.KubectlContext(ctx, args...)
}

// KubectlContext is Kubectl bounded by ctx.
func (c *Cluster) KubectlContext(ctx context.Context, args ...string) (string, error) {
	return c.KubectlAs(ctx, c.Kubeconfig, args...)
}

// KubectlAs runs kubectl with the given kubeconfig, such as one from
// TokenKubeconfig, to see the cluster through another user's permissions.
// The error carries kubectl's stderr.
func (c *Cluster) KubectlAs(ctx context.Context, kubeconfig string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, binKubectl), append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
