// Package macaqueproc runs the real macaque binary one way for the daemon tests, the demo and the bench.
package macaqueproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build builds macaque from its sources at repoRoot into bin as the image does (static,
// -trimpath), with the go command and environment of this process: the binary the tests run.
func Build(repoRoot, bin string) error {
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build macaque: %w\n%s", err, out)
	}
	return nil
}

// maxLine is the longest stderr line kept: far above any log line macaque writes, so that a
// long error quoting the API server is not cut off.
const maxLine = 1 << 20

// Options say how to start the binary; the zero value runs it with an empty environment.
type Options struct {
	// Args follow the binary's name, for a binary that wraps macaque (unshare, to run it as in a pod).
	Args []string
	// Env is the child's whole environment, so nothing depends on the shell the parent runs in.
	Env []string
	// OwnGroup gives the child its own process group, so a Ctrl-C reaches the parent, which stops it.
	OwnGroup bool
	// OnLine sees each line live, on the reader goroutine: a slow one stalls the child on a full pipe.
	OnLine func(line string)
}

// Process is a started child whose stderr lines are kept past its exit, to explain failures.
type Process struct {
	cmd      *exec.Cmd
	ownGroup bool
	done     chan struct{} // closed once stderr is read to its end and the child is reaped
	waitErr  error         // cmd.Wait's error, read only after done is closed

	mu    sync.Mutex
	lines []string
}

// Start runs binary, which the kernel SIGKILLs if we die, so no interrupted run leaves it behind.
func Start(binary string, opts Options) (*Process, error) {
	cmd := exec.Command(binary, opts.Args...)
	cmd.Env = append([]string{}, opts.Env...) // non-nil: exec would inherit for a nil Env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: opts.OwnGroup, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, ownGroup: opts.OwnGroup, done: make(chan struct{})}
	go func() {
		p.read(stderr, opts.OnLine)
		p.waitErr = cmd.Wait() // only once the pipe is drained: Wait closes it
		close(p.done)
	}()
	return p, nil
}

// read keeps each line of r and hands it to onLine. After a line too long to keep it still
// drains r, since a child blocked writing to a full pipe would never exit.
func (p *Process) read(r io.Reader, onLine func(string)) {
	keep := func(line string) {
		p.mu.Lock()
		p.lines = append(p.lines, line)
		p.mu.Unlock()
		if onLine != nil {
			onLine(line)
		}
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	for sc.Scan() {
		keep(sc.Text())
	}
	if err := sc.Err(); err != nil {
		keep(fmt.Sprintf("macaqueproc: reading stderr: %v; the rest of it is discarded", err))
		_, _ = io.Copy(io.Discard, r)
	}
}

// Pid is the child's process id, for reading its figures under /proc.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the child is reaped and its whole log kept, so callers can select on an exit.
func (p *Process) Done() <-chan struct{} { return p.done }

// State says how the child ended, for messages ("exit status 2"); it is nil until Done is closed.
func (p *Process) State() *os.ProcessState {
	select {
	case <-p.done:
		return p.cmd.ProcessState
	default:
		return nil
	}
}

// Logs copies the stderr lines so far, so callers may keep them while the child writes more.
func (p *Process) Logs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Tail is the last n lines joined by newlines, to explain a failure without the whole log.
func (p *Process) Tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines[max(0, len(p.lines)-n):], "\n")
}

// Signal reaches the child's group if it has one, and no one once it is reaped, as its pid may be reused.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	if p.ownGroup {
		_ = syscall.Kill(-p.Pid(), sig)
	} else {
		_ = p.cmd.Process.Signal(sig)
	}
}

// Wait returns the exit code (-1 for a signal) within timeout; a non-zero exit is for callers to judge.
func (p *Process) Wait(timeout time.Duration) (int, error) {
	if !p.exitsWithin(timeout) {
		return -1, fmt.Errorf("macaque still running after %v", timeout)
	}
	return p.exit()
}

// Stop sends SIGTERM, on which macaque finishes its in-flight kill, and SIGKILL after grace (an error).
func (p *Process) Stop(grace time.Duration) (int, error) {
	p.Signal(syscall.SIGTERM)
	if p.exitsWithin(grace) {
		return p.exit()
	}
	p.Signal(syscall.SIGKILL)
	<-p.done
	return p.cmd.ProcessState.ExitCode(), fmt.Errorf("macaque did not stop within %v of SIGTERM", grace)
}

// exitsWithin reports whether the child exits within d. An exit already there wins over a
// timer that fires with it, so a zero d still sees a child that has exited.
func (p *Process) exitsWithin(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
		select {
		case <-p.done:
			return true
		default:
			return false
		}
	}
}

// exit is the code of the reaped child; only a failure to wait for it is an error, since
// *exec.ExitError merely carries the code.
func (p *Process) exit() (int, error) {
	var exit *exec.ExitError
	if p.waitErr != nil && !errors.As(p.waitErr, &exit) {
		return p.cmd.ProcessState.ExitCode(), p.waitErr
	}
	return p.cmd.ProcessState.ExitCode(), nil
}
