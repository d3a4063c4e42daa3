package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	"github.com/macaque-chaos/macaque/e2e/macaqueproc"
	"k8s.io/client-go/tools/clientcmd"
)

// measureSpec is one size's run of the daemon.
type measureSpec struct {
	pods       int
	ticks      int
	every      time.Duration
	binary     string
	goMemLimit string
	// scope is MACAQUE_NAMESPACE; empty: the namespace macaque's ServiceAccount is in.
	scope string
	// namespaces is how many namespaces the pods are spread over (0: that one namespace).
	namespaces int
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
	cpu := startCPUSampler(d.Pid(), apiserver, etcd)
	defer cpu.stop()

	ticks, err := d.waitTicks(ctx, spec.ticks, ticksTimeout(spec))
	if err != nil {
		return sizeResult{}, err
	}
	// The last tick's CPU is read at the next tick's time; wait until a sample lies past it.
	end := ticks[len(ticks)-1].Tick.Add(spec.every)
	if err := cpu.waitSampleAfter(ctx, end, d.Done()); err != nil {
		return sizeResult{}, fmt.Errorf("%w; macaque's last lines:\n%s", err, d.logTail())
	}
	hwm, err := readVmHWM(d.Pid())
	if err != nil {
		return sizeResult{}, err
	}
	cpu.stop()
	d.stop()

	return sizeResult{
		pods: spec.pods, binary: spec.binary, every: spec.every, goMemLimit: spec.goMemLimit, ns: ns, ticks: ticks,
		scope: spec.scope, namespaces: spec.namespaces,
		perTick:      perTick(ticks, proxy.Records(), spec.every),
		lists:        listTimes(ticks, proxy.Records(), spec.every),
		readBacks:    requestTimes(ticks, proxy.Records(), spec.every, isReadBack),
		cpu:          cpuPerTick(ticks, cpu.series(0), spec.every),
		apiserverCPU: cpuPerTick(ticks, cpu.series(1), spec.every),
		etcdCPU:      cpuPerTick(ticks, cpu.series(2), spec.every),
		peakRSS:      hwm,
		skipped:      d.skippedTicks(),
		verdicts:     d.recoveryVerdicts(),
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
// sample selector, GOMEMLIMIT as the manifest sets it) and nothing inherited from bench's shell.
func daemonEnv(kubeconfig, home, ns string, spec measureSpec) []string {
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"KUBECONFIG=" + kubeconfig,
		"MACAQUE_CRONTAB=@every " + spec.every.String(),
		"MACAQUE_ALLOW_FAST_SCHEDULE=true",
		// -create pods makes bare pods, which the steady-state guard skips unless orphans are
		// allowed; Deployment-owned pods are guarded the same either way.
		"MACAQUE_ALLOW_ORPHANS=true",
		"MACAQUE_NAMESPACE=" + cmp.Or(spec.scope, ns),
		"MACAQUE_SELECTOR=" + scopeSelector,
		"MACAQUE_LOG_FORMAT=json",
		"POD_NAME=macaque-bench",
		"MACAQUE_HTTP_ADDR=127.0.0.1:0", // any free port: the bench reads no metrics, and :8080 may be taken
	}
	if spec.goMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+spec.goMemLimit)
	}
	return env
}

// macaqueKubeconfig mints a token for macaque's ServiceAccount in ns (a fresh one per size: tokens
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

// verdictLog is one "recovery verdict" line in macaque's JSON log: what became of a kill.
type verdictLog struct {
	Msg          string  `json:"msg"`
	Verdict      string  `json:"verdict"`
	FullStrength float64 `json:"full_strength_seconds"` // -1: not reached
	Why          string  `json:"why"`
}

// stopGrace covers macaque's own shutdown grace (20s), in which SIGTERM lets it finish its
// in-flight kill, before it is killed outright.
const stopGrace = 25 * time.Second

// daemon is a running macaque whose tick reports are being collected.
type daemon struct {
	*macaqueproc.Process
	ticks   chan tickLog
	skipped atomic.Int64 // "skipping tick" warnings

	mu       sync.Mutex
	verdicts []verdictLog // every recovery verdict logged, in order
}

// startDaemon runs the binary in its own process group (so a Ctrl-C reaches bench, which stops
// it in order) that the kernel kills if bench dies.
func startDaemon(binary string, env []string) (*daemon, error) {
	d := &daemon{ticks: make(chan tickLog, 1024)}
	p, err := macaqueproc.Start(binary, macaqueproc.Options{Env: env, OwnGroup: true, OnLine: d.readLine})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	d.Process = p
	return d, nil
}

// readLine parses one line of macaque's JSON log, passing on a tick's report. It runs on the
// reader goroutine from before startDaemon sets d.Process, so it touches ticks and skipped only.
func (d *daemon) readLine(line string) {
	var l tickLog
	_ = json.Unmarshal([]byte(line), &l) // a line that is not JSON is kept in the tail only

	if strings.HasPrefix(l.Msg, "skipping tick") { // by the scheduler or the killer
		d.skipped.Add(1)
	}
	if l.Msg == "recovery verdict" {
		var v verdictLog
		_ = json.Unmarshal([]byte(line), &v)
		d.mu.Lock()
		d.verdicts = append(d.verdicts, v)
		d.mu.Unlock()
	}
	if l.Msg == "tick done" || l.Msg == "kill failed" {
		select {
		case d.ticks <- l:
		default: // nobody is collecting any more
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
		case <-d.Done():
			return nil, fmt.Errorf("macaque exited (%v) after %d of %d ticks; its last lines:\n%s", d.State(), len(got), n, d.logTail())
		case <-deadline:
			return nil, fmt.Errorf("%d of %d ticks after %s; macaque's last lines:\n%s", len(got), n, timeout, d.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return got, nil
}

func (d *daemon) skippedTicks() int { return int(d.skipped.Load()) }

// recoveryVerdicts is every verdict logged so far; after stop, those given at shutdown too.
func (d *daemon) recoveryVerdicts() []verdictLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.verdicts)
}

func (d *daemon) logTail() string { return d.Tail(20) }

// stop ends macaque and waits for it; bench wants its figures, not how it exited. Later calls
// return at once.
func (d *daemon) stop() { _, _ = d.Stop(stopGrace) }
