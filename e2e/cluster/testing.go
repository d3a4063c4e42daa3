package cluster

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// ForTest starts a control plane for one test and stops it when the test
// ends, logging the components' log tails if the test failed. Start-up takes
// several seconds: tests that can share a control plane should use RunMain.
// A zero opts.Logf logs through t.
func ForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	c, err := Start(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(c.LogTails(60))
		}
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}

// RunMain is the body of a TestMain that shares one control plane among all
// tests of a package: it starts the control plane, stores it in *shared, runs
// the tests, stops it and returns the exit code for os.Exit:
//
//	var testCluster *cluster.Cluster
//
//	func TestMain(m *testing.M) {
//		os.Exit(cluster.RunMain(m, cluster.Options{}, &testCluster))
//	}
//
// SIGINT or SIGTERM to the test binary stops the control plane and removes
// its dir before exiting; if the binary dies any other way (a panic, the go
// test timeout, SIGKILL) the kernel kills the components anyway and the next
// Start on the machine removes the dir.
func RunMain(m *testing.M, opts Options, shared **Cluster) int {
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "cluster: "+format+"\n", args...)
		}
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stopSignals()

	c, err := Start(ctx, opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		return 1
	}
	*shared = c

	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			fmt.Fprintln(os.Stderr, "cluster: interrupted, stopping the control plane")
			if err := c.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
			}
			os.Exit(1)
		case <-finished:
		}
	}()

	code := m.Run()
	if code != 0 {
		fmt.Fprint(os.Stderr, c.LogTails(60))
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "cluster: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
