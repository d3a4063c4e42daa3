package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one control-plane component running in its own process group
// with its output captured in a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	// done is closed once the process has exited and been reaped; waitErr is
	// only read after that.
	done    chan struct{}
	waitErr error
}

// childSysProcAttr puts a child in its own process group, so Stop can signal
// it and anything it forks at once and a Ctrl-C on the terminal does not hit
// it behind the harness's back, and asks the kernel to SIGKILL it when the
// test binary dies, so an interrupted or panicking `go test` leaves nothing
// running.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// startProcess runs bin with args, appending its stdout and stderr to
// logPath, and reaps it in the background.
func startProcess(name, bin string, args, env []string, logPath string) (*process, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id, which is also its process group id.
func (p *process) pid() int { return p.cmd.Process.Pid }

// exitError reports whether the process has already exited, and how; a
// control-plane component never exits on its own while it is healthy.
func (p *process) exitError() error {
	select {
	case <-p.done:
		if p.waitErr != nil {
			return fmt.Errorf("%s exited: %w", p.name, p.waitErr)
		}
		return fmt.Errorf("%s exited", p.name)
	default:
		return nil
	}
}

// stop sends SIGTERM to the process group so the component can shut down
// cleanly, and SIGKILL when it has not exited after grace. It returns once the
// process has been reaped; a second call returns at once.
func (p *process) stop(grace time.Duration) {
	pgid := p.pid()
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		timer := time.NewTimer(grace)
		defer timer.Stop()
		select {
		case <-p.done:
		case <-timer.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Anything the component forked and left behind in its group goes too.
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		_, _ = fmt.Fprintf(os.Stderr, "cluster: kill process group of %s: %v\n", p.name, err)
	}
}

// tail returns the last lines of the process's log, to explain a failure.
func (p *process) tail(lines int) string {
	return fmt.Sprintf("----- last %d lines of %s (%s) -----\n%s", lines, p.name, p.logPath, tailFile(p.logPath, lines))
}

// tailFile reads at most the last 64 KiB of path and returns its last lines.
func tailFile(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)\n", err)
	}
	defer func() { _ = f.Close() }() // only read: nothing to lose
	const maxBytes = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > maxBytes {
		if _, err := f.Seek(st.Size()-maxBytes, io.SeekStart); err != nil {
			return fmt.Sprintf("(cannot seek log: %v)\n", err)
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)\n", err)
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	var b bytes.Buffer
	for _, l := range all {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}
