package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BinDirEnv names the environment variable that points the harness at a
// folder holding prebuilt control-plane binaries, skipping
// hack/controlplane.sh; CI sets it after building them once.
const BinDirEnv = "MACAQUE_CONTROLPLANE_BIN"

// buildScript is the script, relative to the repository root, that builds
// the binaries from source and prints the folder holding them.
const buildScript = "hack/controlplane.sh"

// Binary names the harness needs in the binaries folder.
const (
	binEtcd              = "etcd"
	binKubeAPIServer     = "kube-apiserver"
	binControllerManager = "kube-controller-manager"
	binKubectl           = "kubectl"
	binKwok              = "kwok"
)

// findBinaries returns the folder holding the control-plane binaries: dir if
// set, else $MACAQUE_CONTROLPLANE_BIN, else whatever hack/controlplane.sh
// prints (the script is a no-op when its cache is complete, and builds from
// source otherwise, which takes many minutes).
func findBinaries(ctx context.Context, dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv(BinDirEnv)
	}
	if dir == "" {
		var err error
		if dir, err = runBuildScript(ctx); err != nil {
			return "", err
		}
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve binaries folder: %w", err)
	}
	for _, name := range []string{binEtcd, binKubeAPIServer, binControllerManager, binKubectl, binKwok} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("control-plane binary %s: %w (run %s or set %s)", name, err, buildScript, BinDirEnv)
		}
		if st.Mode()&0o111 == 0 {
			return "", fmt.Errorf("control-plane binary %s in %s is not executable", name, dir)
		}
	}
	return dir, nil
}

// runBuildScript finds hack/controlplane.sh above the working directory (go
// test runs in the package folder) and runs it, returning the last line of
// its output.
func runBuildScript(ctx context.Context) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, buildScript))
	cmd.Dir = root
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = childSysProcAttr()
	// On cancellation stop the whole build (the script and its go commands),
	// not just bash.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("run %s: %w", buildScript, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	dir := strings.TrimSpace(lines[len(lines)-1])
	if dir == "" {
		return "", fmt.Errorf("%s printed no binaries folder", buildScript)
	}
	return dir, nil
}

// repoRoot walks up from the working directory to the folder that holds
// hack/controlplane.sh.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("get working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, buildScript)); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("look for %s: %w", buildScript, err)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no %s above the working directory; set %s", buildScript, BinDirEnv)
		}
		dir = parent
	}
}
