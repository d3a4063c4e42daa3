package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"k8s.io/client-go/tools/clientcmd"
)

// measureSpec is one size's run of the daemon.
type measureSpec struct {
	pods       int
	ticks      int
	every      time.Duration
	binary     string
	goMemLimit string
}

// measure runs macaque through a measuring proxy for spec.ticks ticks, as the ServiceAccount of
// macaque.yml, while sampling its CPU and the control plane's, and returns what was measured.
func measure(ctx context.Context, c *cluster.Cluster, ns string, spec measureSpec, logger *log.Logger) (sizeResult, error) {
	proxy, err := startProxy(c.Server, c.RESTConfig.CAData, logger)
	if err != nil {
		return sizeResult{}, err
	}
	defer proxy.Close()

	dir, err := os.MkdirTemp("", "macaque-bench-")
	if err != nil {
		return sizeResult{}, fmt.Errorf("create scratch dir: %w", err)
	}
	defer os.RemoveAll(dir)
	kubeconfig, err := macaqueKubeconfig(ctx, c, ns, proxy, dir)
	if err != nil {
		return sizeResult{}, err
	}
	apiserver, etcd, err := controlPlanePIDs(c)
	if err != nil {
		return sizeResult{}, err
	}

	logger.Printf("%d pods: running %s every %s for %d ticks", spec.pods, spec.binary, spec.every, spec.ticks)
	d, err := startDaemon(spec.binary, daemonEnv(kubeconfig, dir, ns, spec))
	if err != nil {
		return sizeResult{}, err
	}
	defer d.stop()
	cpu := startCPUSampler(d.pid(), apiserver, etcd)
	defer cpu.stop()

	ticks, err := d.waitTicks(ctx, spec.ticks, ticksTimeout(spec))
	if err != nil {
		return sizeResult{}, err
	}
	// The last tick's CPU is read at the next tick's time; wait until a sample lies past it.
	end := ticks[len(ticks)-1].Tick.Add(spec.every)
	if err := cpu.waitSampleAfter(ctx, end, d.done); err != nil {
		return sizeResult{}, fmt.Errorf("%w; macaque's last lines:\n%s", err, d.logTail())
	}
	hwm, err := readVmHWM(d.pid())
	if err != nil {
		return sizeResult{}, err
	}
	cpu.stop()
	d.stop()

	return sizeResult{
		pods: spec.pods, every: spec.every, goMemLimit: spec.goMemLimit, ns: ns, ticks: ticks,
		perTick:      perTick(ticks, proxy.Records(), spec.every),
		cpu:          cpuPerTick(ticks, cpu.series(0), spec.every),
		apiserverCPU: cpuPerTick(ticks, cpu.series(1), spec.every),
		etcdCPU:      cpuPerTick(ticks, cpu.series(2), spec.every),
		peakRSS:      hwm,
		skipped:      d.skippedTicks(),
	}, nil
}

// controlPlanePIDs finds kube-apiserver and etcd among the cluster's processes by name, to
// measure what macaque's ticks cost the control plane.
func controlPlanePIDs(c *cluster.Cluster) (apiserver, etcd int, err error) {
	for _, pid := range c.PIDs() {
		switch processName(pid) {
		case "kube-apiserver":
			apiserver = pid
		case "etcd":
			etcd = pid
		}
	}
	if apiserver == 0 || etcd == 0 {
		return 0, 0, fmt.Errorf("kube-apiserver (pid %d) or etcd (pid %d) not among the cluster's processes %v", apiserver, etcd, c.PIDs())
	}
	return apiserver, etcd, nil
}

// ticksTimeout allows every tick to be skipped once, and a minute for start-up.
func ticksTimeout(spec measureSpec) time.Duration {
	return time.Minute + 2*time.Duration(spec.ticks+1)*spec.every
}

// daemonEnv is macaque's whole environment: the deployed settings that matter (JSON logs, the
// sample selector, GOMEMLIMIT from the memory limit) and nothing inherited from bench's shell.
func daemonEnv(kubeconfig, home, ns string, spec measureSpec) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"KUBECONFIG=" + kubeconfig,
		"MACAQUE_CRONTAB=@every " + spec.every.String(),
		"MACAQUE_NAMESPACE=" + ns,
		"MACAQUE_SELECTOR=" + scopeSelector,
		"MACAQUE_LOG_FORMAT=json",
		"POD_NAME=macaque-bench",
	}
	if spec.goMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+spec.goMemLimit)
	}
	return env
}

// macaqueKubeconfig mints a token for macaque's ServiceAccount (a fresh one per size: tokens
// live an hour) and writes a kubeconfig in dir that reaches the API server through the proxy.
func macaqueKubeconfig(ctx context.Context, c *cluster.Cluster, ns string, proxy *measuringProxy, dir string) (string, error) {
	saKubeconfig, err := c.TokenKubeconfig(ctx, ns, "macaque")
	if err != nil {
		return "", err
	}
	return proxiedKubeconfig(saKubeconfig, proxy.URL(), proxy.CAPEM(), dir)
}

// proxiedKubeconfig copies the ServiceAccount's kubeconfig into dir, pointed at the proxy:
// same token, the proxy's URL and certificate in place of the API server's.
func proxiedKubeconfig(path, proxyURL string, caPEM []byte, dir string) (string, error) {
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", fmt.Errorf("load %s: %w", path, err)
	}
	for _, cl := range cfg.Clusters {
		cl.Server = proxyURL
		cl.CertificateAuthority = ""
		cl.CertificateAuthorityData = caPEM
	}
	out := filepath.Join(dir, "macaque.kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, out); err != nil {
		return "", fmt.Errorf("write proxied kubeconfig: %w", err)
	}
	return out, nil
}

// tickLog is one tick's report line ("tick done" or "kill failed") in macaque's JSON log.
type tickLog struct {
	Time       time.Time `json:"time"` // when the kill finished
	Msg        string    `json:"msg"`
	Tick       time.Time `json:"tick"` // when the tick was scheduled to fire
	Candidates int       `json:"candidates"`
	Outcome    string    `json:"outcome"`
	Pod        string    `json:"pod"`
	Err        string    `json:"err"`
}

// daemon is a running macaque whose log is being collected.
type daemon struct {
	cmd   *exec.Cmd
	ticks chan tickLog
	done  chan struct{} // closed when the process has exited and its log is read

	mu      sync.Mutex
	tail    []string // last log lines, to explain a failure
	skipped int      // "skipping tick" warnings

	stopOnce sync.Once
}

// startDaemon runs the binary in its own process group (so a Ctrl-C reaches bench, which stops
// it in order) that the kernel kills if bench dies.
func startDaemon(binary string, env []string) (*daemon, error) {
	cmd := exec.Command(binary)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("macaque stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	d := &daemon{cmd: cmd, ticks: make(chan tickLog, 1024), done: make(chan struct{})}
	go func() {
		d.readLog(stderr)
		_ = cmd.Wait()
		close(d.done)
	}()
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// readLog parses macaque's JSON log until it closes, passing on each tick's report.
func (d *daemon) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var l tickLog
		_ = json.Unmarshal([]byte(line), &l) // a line that is not JSON is kept in the tail only
		d.mu.Lock()
		d.tail = append(d.tail, line)
		if len(d.tail) > 20 {
			d.tail = d.tail[1:]
		}
		if strings.HasPrefix(l.Msg, "skipping tick") { // by the scheduler or the killer
			d.skipped++
		}
		d.mu.Unlock()
		if l.Msg == "tick done" || l.Msg == "kill failed" {
			select {
			case d.ticks <- l:
			default: // nobody is collecting any more
			}
		}
	}
}

// waitTicks collects n tick reports, failing if macaque exits or takes longer than timeout.
func (d *daemon) waitTicks(ctx context.Context, n int, timeout time.Duration) ([]tickLog, error) {
	deadline := time.After(timeout)
	var got []tickLog
	for len(got) < n {
		select {
		case l := <-d.ticks:
			got = append(got, l)
		case <-d.done:
			return nil, fmt.Errorf("macaque exited (%v) after %d of %d ticks; its last lines:\n%s", d.cmd.ProcessState, len(got), n, d.logTail())
		case <-deadline:
			return nil, fmt.Errorf("%d of %d ticks after %s; macaque's last lines:\n%s", len(got), n, timeout, d.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return got, nil
}

func (d *daemon) skippedTicks() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.skipped
}

func (d *daemon) logTail() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return strings.Join(d.tail, "\n")
}

// stop sends SIGTERM, which macaque handles by finishing its in-flight kill, and SIGKILL if it
// has not exited within its own shutdown grace. It waits for the exit; later calls do nothing.
func (d *daemon) stop() {
	d.stopOnce.Do(func() {
		_ = syscall.Kill(-d.pid(), syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(25 * time.Second):
			_ = syscall.Kill(-d.pid(), syscall.SIGKILL)
			<-d.done
		}
	})
}
