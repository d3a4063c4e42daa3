package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
)

// TestStopLeavesNothingBehind starts a second control plane, checks it
// answers kubectl, and checks Stop ends every component, removes the dir and
// can be called again.
func TestStopLeavesNothingBehind(t *testing.T) {
	began := time.Now()
	c, err := cluster.Start(t.Context(), cluster.Options{BinDir: testCluster.BinDir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("warm start took %.1fs", time.Since(began).Seconds())
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			t.Log(c.LogTails(40))
			_ = c.Stop()
		}
	})

	out, err := c.Kubectl("get", "nodes", "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "node/"+c.NodeName {
		t.Errorf("kubectl get nodes = %q, want node/%s", out, c.NodeName)
	}
	pids := c.PIDs()
	if len(pids) != 4 {
		t.Fatalf("got %d component PIDs, want 4 (etcd, kube-apiserver, kube-controller-manager, kwok)", len(pids))
	}
	for _, pid := range pids {
		if processGone(pid) {
			t.Fatalf("component %d is not running before Stop", pid)
		}
	}

	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	for _, pid := range pids {
		if !processGone(pid) {
			t.Errorf("component %d still running after Stop", pid)
		}
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster dir %s still there after Stop (stat: %v)", c.Dir, err)
	}
}

// helperEnv makes the test binary, run again as a child, hold its shared
// control plane in TestHelperHoldsControlPlane until it is signalled.
const helperEnv = "MACAQUE_E2E_HOLD_CONTROLPLANE"

// TestHelperHoldsControlPlane is not a test: it is the child process of
// TestInterruptedTestBinaryLeavesNothingBehind. It prints the shared control
// plane's PIDs and dir and waits to be killed.
func TestHelperHoldsControlPlane(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestInterruptedTestBinaryLeavesNothingBehind")
	}
	pids := make([]string, 0, 4)
	for _, pid := range testCluster.PIDs() {
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Printf("HELPER_PIDS=%s\nHELPER_DIR=%s\n", strings.Join(pids, ","), testCluster.Dir)
	// Wait to be signalled; the deadline only keeps a forgotten child from
	// living forever.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	<-ctx.Done()
	t.Fatal("helper was not signalled")
}

// TestInterruptedTestBinaryLeavesNothingBehind runs this test binary again
// holding a control plane, kills it, and checks the components die with it:
// SIGTERM (go test interrupted) goes through RunMain's clean Stop, SIGKILL
// (nothing can run) relies on the kernel's parent-death signal.
func TestInterruptedTestBinaryLeavesNothingBehind(t *testing.T) {
	for _, tc := range []struct {
		sig        syscall.Signal
		dirRemoved bool
	}{
		{syscall.SIGTERM, true},
		{syscall.SIGKILL, false},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			pids, dir := runHelperAndKill(t, tc.sig)
			t.Cleanup(func() { _ = os.RemoveAll(dir) })
			cluster.Eventually(t, 30*time.Second, "components gone", func(context.Context) error {
				for _, pid := range pids {
					if !processGone(pid) {
						return fmt.Errorf("component %d still running", pid)
					}
				}
				return nil
			})
			_, err := os.Stat(dir)
			if removed := errors.Is(err, os.ErrNotExist); removed != tc.dirRemoved {
				t.Errorf("dir %s removed = %v, want %v", dir, removed, tc.dirRemoved)
			}
		})
	}
}

// runHelperAndKill starts TestHelperHoldsControlPlane in a child test
// binary, waits for it to report its control plane, sends sig and waits for
// the child to exit. It returns the components' PIDs and the cluster dir.
func runHelperAndKill(t *testing.T, sig syscall.Signal) ([]int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperHoldsControlPlane$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", cluster.BinDirEnv+"="+testCluster.BinDir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper: %v", err)
	}
	exited := make(chan error, 1)

	var pids []int
	var dir string
	scanner := bufio.NewScanner(stdout)
	for dir == "" && scanner.Scan() {
		line := scanner.Text()
		if v, ok := strings.CutPrefix(line, "HELPER_PIDS="); ok {
			for _, f := range strings.Split(v, ",") {
				pid, err := strconv.Atoi(f)
				if err != nil {
					t.Fatalf("helper printed bad PID %q", f)
				}
				pids = append(pids, pid)
			}
		}
		if v, ok := strings.CutPrefix(line, "HELPER_DIR="); ok {
			dir = v
		}
	}
	go func() {
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	if dir == "" || len(pids) != 4 {
		werr := <-exited
		t.Fatalf("helper did not report its control plane (pids %v, dir %q, exit %v); stderr:\n%s", pids, dir, werr, stderr.String())
	}

	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal helper: %v", err)
	}
	select {
	case err := <-exited:
		// The helper dies of the signal: its exit status says so and nothing more.
		_ = err
	case <-ctx.Done():
		t.Fatalf("helper did not exit after %v: %v; stderr:\n%s", sig, ctx.Err(), stderr.String())
	}
	return pids, dir
}

// processGone reports whether pid no longer runs: it does not exist, or it is
// a zombie waiting for a reaper (it runs no code and holds no port).
func processGone(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] == 'Z' || s[i+2] == 'X'
}
