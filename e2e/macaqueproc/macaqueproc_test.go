package macaqueproc_test

import (
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
)

// childEnv makes the test binary, started again by these tests, play a daemon (in the mode it
// names) instead of running the tests, so no helper program has to be built.
const childEnv = "MACAQUEPROC_TEST_CHILD"

// inheritedEnv is set in the tests' environment only, to show that the child does not get it.
const inheritedEnv = "MACAQUEPROC_TEST_INHERITED"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child is the stand-in daemon: it writes to stderr and exits as each test needs.
func child(mode string) int {
	say := func(line string) { fmt.Fprintln(os.Stderr, line) }
	switch mode {
	case "lines":
		say("inherited=" + os.Getenv(inheritedEnv))
		for i := range 100 {
			say(fmt.Sprintf("line %d", i))
		}
		return 3
	case "long":
		_, _ = os.Stderr.WriteString(strings.Repeat("x", 2<<20) + "\nafter\n")
		return 4
	case "term", "ignore":
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM)
		say("ready") // only now would SIGTERM no longer kill it outright
		// The test has failed by then: do not linger.
		giveUp := time.After(30 * time.Second)
		for {
			select {
			case <-sigs:
				if mode == "term" {
					say("terminating")
					return 7
				}
				say("ignoring SIGTERM")
			case <-giveUp:
				return 99
			}
		}
	}
	say("unknown mode " + mode)
	return 98
}

// start runs the test binary as a child in mode, killed when the test ends.
func start(t *testing.T, mode string, ownGroup bool, onLine func(string)) *macaqueproc.Process {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	p, err := macaqueproc.Start(self, macaqueproc.Options{Env: []string{childEnv + "=" + mode}, OwnGroup: ownGroup, OnLine: onLine})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Signal(syscall.SIGKILL)
		<-p.Done()
	})
	return p
}

// notifyOn returns an OnLine that signals on the channel for each line, without blocking the
// reader.
func notifyOn(lines map[string]chan struct{}) func(string) {
	return func(line string) {
		if c, ok := lines[line]; ok {
			select {
			case c <- struct{}{}:
			default:
			}
		}
	}
}

// await waits for the child to write what the test waits for; the bound only catches a hang.
func await(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("child did not write %q", what)
	}
}

func TestLinesAreKeptInOrderAndTheExitCodeIsNoError(t *testing.T) {
	t.Setenv(inheritedEnv, "yes")
	var seen []string // appended on the reader goroutine, read once Wait has seen it end
	p := start(t, "lines", false, func(line string) { seen = append(seen, line) })
	code, err := p.Wait(10 * time.Second)
	if err != nil || code != 3 {
		t.Fatalf("Wait = %d, %v; want 3, nil", code, err)
	}
	want := []string{"inherited="}
	for i := range 100 {
		want = append(want, fmt.Sprintf("line %d", i))
	}
	if got := p.Logs(); !slices.Equal(got, want) {
		t.Errorf("Logs = %q, want %q", got, want)
	}
	if !slices.Equal(seen, want) {
		t.Errorf("OnLine saw %q, want %q", seen, want)
	}
	if got := p.Tail(2); got != "line 98\nline 99" {
		t.Errorf("Tail(2) = %q", got)
	}
	if got := p.Tail(1000); got != strings.Join(want, "\n") {
		t.Errorf("Tail(1000) = %q, want every line", got)
	}
	if got := p.State().String(); got != "exit status 3" {
		t.Errorf("State = %q", got)
	}
	if code, err := p.Stop(0); err != nil || code != 3 {
		t.Errorf("Stop after the exit = %d, %v; want 3, nil", code, err)
	}
}

func TestStopReturnsTheCodeOfAChildThatExitsOnSIGTERM(t *testing.T) {
	ready := make(chan struct{}, 1)
	p := start(t, "term", false, notifyOn(map[string]chan struct{}{"ready": ready}))
	await(t, ready, "ready")
	if p.State() != nil {
		t.Errorf("State = %v while running, want nil", p.State())
	}
	code, err := p.Stop(5 * time.Second) // a bound: the child exits at once
	if err != nil || code != 7 {
		t.Fatalf("Stop = %d, %v; want 7, nil", code, err)
	}
	if logs := p.Logs(); !slices.Equal(logs, []string{"ready", "terminating"}) {
		t.Errorf("Logs = %q", logs)
	}
}

func TestStopKillsAChildThatIgnoresSIGTERMAfterTheGrace(t *testing.T) {
	for _, ownGroup := range []bool{false, true} {
		t.Run(fmt.Sprintf("own group %v", ownGroup), func(t *testing.T) {
			ready, ignored := make(chan struct{}, 1), make(chan struct{}, 1)
			p := start(t, "ignore", ownGroup, notifyOn(map[string]chan struct{}{"ready": ready, "ignoring SIGTERM": ignored}))
			await(t, ready, "ready")
			if pgid, err := syscall.Getpgid(p.Pid()); err != nil || (pgid == p.Pid()) != ownGroup {
				t.Errorf("process group %d (%v) of pid %d, want its own: %v", pgid, err, p.Pid(), ownGroup)
			}
			if code, err := p.Wait(0); err == nil {
				t.Errorf("Wait(0) on a running child = %d, nil; want an error", code)
			}
			p.Signal(syscall.SIGTERM)
			await(t, ignored, "ignoring SIGTERM")

			const grace = 200 * time.Millisecond
			began := time.Now()
			code, err := p.Stop(grace)
			if took := time.Since(began); took < grace {
				t.Errorf("Stop returned after %v, before the grace of %v", took, grace)
			}
			if err == nil || code != -1 {
				t.Errorf("Stop = %d, %v; want -1 and an error", code, err)
			}
			if got := p.State().String(); got != "signal: killed" {
				t.Errorf("State = %q, want killed", got)
			}
		})
	}
}

func TestALineTooLongIsNotedAndTheRestDrained(t *testing.T) {
	p := start(t, "long", false, nil)
	code, err := p.Wait(10 * time.Second) // without draining, the child blocks on a full pipe
	if err != nil || code != 4 {
		t.Fatalf("Wait = %d, %v; want 4, nil", code, err)
	}
	if logs := p.Logs(); len(logs) != 1 || !strings.Contains(logs[0], "token too long") {
		t.Errorf("Logs = %.200q, want one line noting the long line", logs)
	}
}
