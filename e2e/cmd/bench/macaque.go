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
	"strconv"
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
	// namespaceSelector is MACAQUE_NAMESPACE_SELECTOR (empty: unset); selected is how many of
	// the namespaces it selects.
	namespaceSelector string
	selected          int
	// workloads is how many Deployments the namespace's pods are spread over (0 or 1: one).
	workloads int
	// killCount is MACAQUE_KILL_COUNT (0 or 1: macaque's default, one victim a tick).
	killCount int
}

// measure runs macaque through a measuring proxy for spec.ticks ticks, as the ServiceAccount of
// macaque.yml, while sampling its CPU and the control plane's, and returns what was measured.
func measure(ctx context.Context, c *cluster.Cluster, ns string, spec measureSpec, logger *log.Logger) (sizeResult, error) {
	proxy, err := startProxy(c.Server, c.RESTConfig.CAData, logger)
	if err != nil {
		return sizeResult{}, err
	}
	defer func() {
		if err := proxy.Close(); err != nil {
			logger.Printf("close the measuring proxy: %v", err)
		}
	}()

	dir, err := os.MkdirTemp("", "macaque-bench-")
	if err != nil {
		return sizeResult{}, fmt.Errorf("create scratch dir: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			logger.Printf("remove scratch dir: %v", err)
		}
	}()
	kubeconfig, err := macaqueKubeconfig(ctx, c, ns, proxy, dir)
	if err != nil {
		return sizeResult{}, err
	}
	apiserver, etcd, err := controlPlanePIDs(c)
	if err != nil {
		return sizeResult{}, err
	}

	logger.Printf("%d pods: the control plane's CPU at rest over %s", spec.pods, restTicks*spec.every)
	rest, err := restingCPU(ctx, spec.every, apiserver, etcd)
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

	ticks, err := d.waitTicks(ctx, spec.ticks, max(1, spec.killCount), ticksTimeout(spec))
	if err != nil {
		return sizeResult{}, err
	}
	hwm, err := finish(ctx, d, cpu, ticks, spec.every, logger)
	if err != nil {
		return sizeResult{}, err
	}
	res := spec.result(ns, ticks, proxy.Records(), cpu, d, hwm)
	res.apiserverRest, res.etcdRest = rest[0], rest[1]
	return res, nil
}

// finish waits until the CPU of the last of ticks is sampled and their verdicts are in, reads
// macaque's peak RSS, and stops the sampling and macaque.
func finish(ctx context.Context, d *daemon, cpu *cpuSampler, ticks []tickRun, every time.Duration, logger *log.Logger) (int64, error) {
	// The last tick's CPU is read at the next tick's time; wait until a sample lies past it.
	end := ticks[len(ticks)-1].Tick.Add(every)
	if err := cpu.waitSampleAfter(ctx, end, d.Done()); err != nil {
		return 0, fmt.Errorf("%w; macaque's last lines:\n%s", err, d.logTail())
	}
	d.waitVerdicts(ctx, ticks, d.Done(), time.After, logger)
	hwm, err := readVMHWM(d.Pid())
	if err != nil {
		return 0, err
	}
	cpu.stop()
	d.stop()
	return hwm, nil
}

// result is what was measured of spec's run in ns: its ticks, the proxy's records, the CPU
// samples, the peak RSS, and what macaque logged besides its ticks.
func (spec measureSpec) result(ns string, ticks []tickRun, records []record, cpu *cpuSampler, d *daemon, hwm int64) sizeResult {
	return sizeResult{
		pods: spec.pods, binary: spec.binary, every: spec.every, goMemLimit: spec.goMemLimit, ns: ns, ticks: ticks,
		scope: spec.scope, namespaces: spec.namespaces, workloads: spec.workloads, killCount: spec.killCount,
		namespaceSelector: spec.namespaceSelector, selected: spec.selected,
		namespaceLists: requestTimes(ticks, records, spec.every, isNamespaceList),
		perTick:        perTick(ticks, records, spec.every),
		lists:          listTimes(ticks, records, spec.every),
		readBacks:      requestTimes(ticks, records, spec.every, isReadBack),
		cpu:            cpuPerTick(ticks, cpu.series(0), spec.every),
		apiserverCPU:   cpuPerTick(ticks, cpu.series(1), spec.every),
		etcdCPU:        cpuPerTick(ticks, cpu.series(2), spec.every),
		peakRSS:        hwm,
		skipped:        d.skippedTicks(),
		verdicts:       d.recoveryVerdicts(),
		killed:         d.kills(),
	}
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

// ticksTimeout allows every tick to be skipped once, a minute for start-up, and the tick after
// the last, which tells that the last one's reports are all in.
func ticksTimeout(spec measureSpec) time.Duration {
	return time.Minute + 2*time.Duration(spec.ticks+2)*spec.every
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
		// macaque's own namespace, as the downward API says in a pod: the election's Lease is
		// there (the manifest runs it on, as every row does)
		"POD_NAMESPACE=" + ns,
		"MACAQUE_HTTP_ADDR=127.0.0.1:0", // any free port: the bench reads no metrics, and :8080 may be taken
	}
	if spec.goMemLimit != "" {
		env = append(env, "GOMEMLIMIT="+spec.goMemLimit)
	}
	if spec.namespaceSelector != "" { // unset otherwise, as for a build from before it
		env = append(env, "MACAQUE_NAMESPACE_SELECTOR="+spec.namespaceSelector)
	}
	if spec.killCount > 1 { // unset otherwise, as for a build from before MACAQUE_KILL_COUNT
		env = append(env, "MACAQUE_KILL_COUNT="+strconv.Itoa(spec.killCount))
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

// tickLog is one report line of a tick ("tick done" or "kill failed") in macaque's JSON log:
// one per victim, or one saying why the tick killed none.
type tickLog struct {
	Time       time.Time `json:"time"` // when the report was logged, once the tick's kills were done
	Msg        string    `json:"msg"`
	Tick       time.Time `json:"tick"` // when the tick was scheduled to fire
	Candidates int       `json:"candidates"`
	Outcome    string    `json:"outcome"`
	Namespace  string    `json:"namespace"`
	Pod        string    `json:"pod"`
	Deleted    time.Time `json:"deleted"` // when the API server accepted the kill (zero: not logged)
	Err        string    `json:"err"`
}

// outcomeKilled is a report's outcome when the API server accepted the kill.
const outcomeKilled = "killed"

// tickRun is one tick as macaque reported it: its report lines, all carrying its scheduled time.
type tickRun struct {
	Tick    time.Time
	reports []tickLog
}

// end is when the tick's last report was logged: macaque logs them all once its kills are done.
func (t tickRun) end() time.Time {
	if len(t.reports) == 0 {
		return t.Tick
	}
	return t.reports[len(t.reports)-1].Time
}

// victims is the reports of the pods the tick killed, in order.
func (t tickRun) victims() []tickLog {
	var out []tickLog
	for _, r := range t.reports {
		if r.Outcome == outcomeKilled {
			out = append(out, r)
		}
	}
	return out
}

// killsOf is the reports of every pod the ticks killed.
func killsOf(ticks []tickRun) []tickLog {
	var out []tickLog
	for _, t := range ticks {
		out = append(out, t.victims()...)
	}
	return out
}

// tickCollector groups report lines into ticks. A tick's lines share its scheduled time and come
// together; a tick is complete once it holds maxReports of them (MACAQUE_KILL_COUNT: a tick
// reports no more) or a later tick's line came.
type tickCollector struct {
	maxReports int
	ticks      []tickRun
}

// add files l under its tick: the last one, or a new one after it.
func (c *tickCollector) add(l tickLog) {
	if n := len(c.ticks); n > 0 && c.ticks[n-1].Tick.Equal(l.Tick) {
		c.ticks[n-1].reports = append(c.ticks[n-1].reports, l)
		return
	}
	c.ticks = append(c.ticks, tickRun{Tick: l.Tick, reports: []tickLog{l}})
}

// complete is the ticks whose reports are all in.
func (c *tickCollector) complete() []tickRun {
	n := len(c.ticks)
	if n > 0 && len(c.ticks[n-1].reports) < c.maxReports {
		n--
	}
	return c.ticks[:n]
}

// verdictLog is one "recovery verdict" line in macaque's JSON log: what became of a kill.
type verdictLog struct {
	Time         time.Time `json:"time"` // when the verdict was given
	Msg          string    `json:"msg"`
	Namespace    string    `json:"namespace"`
	Pod          string    `json:"pod"` // the victim
	Verdict      string    `json:"verdict"`
	FullStrength float64   `json:"full_strength_seconds"` // -1: not reached
	Why          string    `json:"why"`
}

// stopGrace covers macaque's own shutdown grace (20s), in which SIGTERM lets it finish its
// in-flight kill, before it is killed outright.
const stopGrace = 25 * time.Second

// verdictWait bounds how long bench waits, after the last measured tick, for the verdicts on its
// kills: a workload not back by then is what the report shows, as macaque stopped.
const verdictWait = 2 * time.Minute

// daemon is a running macaque whose tick reports are being collected.
type daemon struct {
	*macaqueproc.Process
	ticks   chan tickLog  // every tick's report lines
	skipped atomic.Int64  // "skipping tick" warnings
	verdict chan struct{} // signalled, never waited on, when a verdict is logged

	mu       sync.Mutex
	verdicts []verdictLog // every recovery verdict logged, in order
	killed   []tickLog    // every report of a kill logged, in order
}

// startDaemon runs the binary in its own process group (so a Ctrl-C reaches bench, which stops
// it in order) that the kernel kills if bench dies.
func startDaemon(binary string, env []string) (*daemon, error) {
	d := &daemon{ticks: make(chan tickLog, 1024), verdict: make(chan struct{}, 1)}
	p, err := macaqueproc.Start(binary, macaqueproc.Options{Env: env, OwnGroup: true, OnLine: d.readLine})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", binary, err)
	}
	d.Process = p
	return d, nil
}

// readLine parses one line of macaque's JSON log, passing on a tick's report. It runs on the
// reader goroutine from before startDaemon sets d.Process, so it touches no field of it.
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
		select {
		case d.verdict <- struct{}{}:
		default: // already signalled, or nobody waits
		}
	}
	if l.Msg == "tick done" || l.Msg == "kill failed" {
		if l.Outcome == outcomeKilled {
			d.mu.Lock()
			d.killed = append(d.killed, l)
			d.mu.Unlock()
		}
		select {
		case d.ticks <- l:
		default: // nobody is collecting any more
		}
	}
}

// waitTicks collects n ticks of at most maxReports report lines each, failing if macaque exits
// or takes longer than timeout.
func (d *daemon) waitTicks(ctx context.Context, n, maxReports int, timeout time.Duration) ([]tickRun, error) {
	deadline := time.After(timeout)
	c := tickCollector{maxReports: maxReports}
	for len(c.complete()) < n {
		select {
		case l := <-d.ticks:
			c.add(l)
		case <-d.Done():
			return nil, fmt.Errorf("macaque exited (%v) after %d of %d ticks; its last lines:\n%s", d.State(), len(c.complete()), n, d.logTail())
		case <-deadline:
			return nil, fmt.Errorf("%d of %d ticks after %s; macaque's last lines:\n%s", len(c.complete()), n, timeout, d.logTail())
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return c.complete()[:n], nil
}

// waitVerdicts waits until every kill of ticks has its recovery verdict, so that the report says
// how each came out rather than "macaque stopped", but no longer than verdictWait, nor past
// macaque's exit (exited): a workload slow to come back is the report's to show, not an error. A
// build that has logged no verdict yet (one from before them, compared) is not waited on.
func (d *daemon) waitVerdicts(ctx context.Context, ticks []tickRun, exited <-chan struct{},
	after func(time.Duration) <-chan time.Time, logger *log.Logger,
) {
	kills := killsOf(ticks)
	if len(kills) > 0 && len(d.recoveryVerdicts()) == 0 {
		logger.Printf("no recovery verdict logged after %d kills: not waiting for any", len(kills))
		return
	}
	deadline := after(verdictWait)
	for said := false; ; said = true {
		_, _, missing := verdictsOn(kills, d.recoveryVerdicts())
		if missing == 0 {
			return
		}
		if !said {
			logger.Printf("waiting for the verdicts on %d of the %d kills measured", missing, len(kills))
		}
		select {
		case <-d.verdict:
		case <-deadline:
			logger.Printf("%d of the %d kills measured still without a verdict after %s", missing, len(kills), verdictWait)
			return
		case <-exited:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (d *daemon) skippedTicks() int { return int(d.skipped.Load()) }

// recoveryVerdicts is every verdict logged so far; after stop, those given at shutdown too.
func (d *daemon) recoveryVerdicts() []verdictLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.verdicts)
}

// kills is every report of a kill logged so far.
func (d *daemon) kills() []tickLog {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.killed)
}

func (d *daemon) logTail() string { return d.Tail(20) }

// stop ends macaque and waits for it; bench wants its figures, not how it exited. Later calls
// return at once.
func (d *daemon) stop() { _, _ = d.Stop(stopGrace) }
