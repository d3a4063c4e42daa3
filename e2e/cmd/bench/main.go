// Command bench measures macaque on a real control plane at several namespace sizes (issue 5):
// the real binary (../bin/macaque, from `make build`) runs as the ServiceAccount of the real
// macaque.yml against N Running pods, talking to kube-apiserver through a measuring proxy, and
// bench prints per size how long a tick takes to send its DELETE, the bytes read and the CPU
// spent per tick and the peak RSS, each against its target, plus the binary's size.
//
//	make bench                                       # 10k and 50k Deployment-owned pods, 20 ticks each,
//	                                                 # then 50k pods in 500 Deployments, 100 kills a tick,
//	                                                 # then 100k pods in 1,000 namespaces, cluster-wide
//	cd e2e && go run ./cmd/bench -pods 2000 -ticks 5 -many '' -cluster '' # a quick look
//	cd e2e && go run ./cmd/bench -pods '' -many '' -cluster 2000x100      # the cluster-wide case alone, small
//	cd e2e && go run ./cmd/bench -pods '' -many 2200x110 -cluster ''      # 100 kills a tick alone, small
//	cd e2e && go run ./cmd/bench -compare /tmp/old   # and an older build, on the same pods
//
// One control plane serves every namespace size: sizes run smallest first and the namespace is
// grown between them, which saves creating the small population twice. The many-workloads row
// (-many, issue 18: MACAQUE_KILL_COUNT=100 over pods spread across many Deployments of one
// namespace, each kill followed by its recovery verdict) and the cluster-wide case (-cluster,
// macaque-cluster.yml, MACAQUE_NAMESPACE=*) run after them, each on a control plane of its own,
// so that macaque lists only their pods. bench exits non-zero only when the harness itself
// fails; a missed target is printed as MISS and does not fail the run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// options are bench's command-line settings.
type options struct {
	sizes      []int         // namespace sizes to measure, ascending
	ticks      int           // ticks measured per size
	every      time.Duration // tick spacing; zero picks one per size (autoEvery)
	create     string        // how the pods are made: createPods or createDeployment
	creators   int           // concurrent creators for bare pods
	macaque    string        // the daemon under test
	compare    []string      // more daemons measured the same way after it, at each size (a before/after)
	manifest   string        // the shipped manifest, applied as a user would
	goMemLimit string        // GOMEMLIMIT for the daemon, as macaque.yml sets it
	rounds     int           // rounds of the list-strategy probe per size; 0 skips it
	cmQPS      int           // kube-controller-manager's --kube-api-qps
	workloads  int           // Deployments each size's pods are spread over (-create deployment)
	killCount  int           // MACAQUE_KILL_COUNT for the sizes
	// many is the many-workloads row: pods spread over Deployments of one namespace, measured
	// with manyKillCount victims a tick; zero pods skips it.
	many          manySpec
	manyKillCount int
	manyMinReady  time.Duration // the -many Deployments' minReadySeconds
	// cluster is the cluster-wide case: pods spread over namespaces; zero pods skips it.
	cluster         clusterSpec
	clusterManifest string // the cluster-wide manifest, applied as a user would
}

// manySpec is the many-workloads row's population: pods Running pods spread evenly over
// workloads Deployments in one namespace. The zero value is no such row.
type manySpec struct {
	pods, workloads int
}

// String is the spec as -many takes it.
func (s manySpec) String() string { return fmt.Sprintf("%dx%d", s.pods, s.workloads) }

// maxKillCount is the most victims a tick macaque takes (MACAQUE_KILL_COUNT).
const maxKillCount = 100

// parseOptions reads the command line.
func parseOptions(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	lists := o.define(fs)
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := o.readLists(lists); err != nil {
		return o, err
	}
	if err := o.checkKills(); err != nil {
		return o, err
	}
	return o, o.check()
}

// listFlags are the flags given as text, read into options once parsed.
type listFlags struct {
	pods, compare, cluster, many *string
}

// define defines bench's flags on fs, each setting its field of o.
func (o *options) define(fs *flag.FlagSet) listFlags {
	var l listFlags
	l.pods = fs.String("pods", "10000,50000", "comma-separated namespace sizes (Running pods in scope); empty: none")
	fs.IntVar(&o.ticks, "ticks", 20, "ticks measured per size")
	fs.DurationVar(&o.every, "every", 0, "tick spacing, whole seconds (0: 2s up to 10k pods, 1s more per further 10k; with many victims a tick, 10s more and -many-min-ready)")
	// A real namespace of 50,000 pods is owned by controllers, which keep the API server busier
	// than bare pods do (issue 12): measure that by default.
	fs.StringVar(&o.create, "create", createDeployment, "how to make the pods: "+createDeployment+" (one Deployment, kube-controller-manager creates them) or "+createPods+" (bare, many concurrent creators)")
	fs.IntVar(&o.creators, "creators", 48, "concurrent creators of bare pods")
	fs.StringVar(&o.macaque, "macaque", "../bin/macaque", "macaque binary to measure (make build)")
	l.compare = fs.String("compare", "", "comma-separated macaque binaries also measured at each size, on the same pods (e.g. the build before a change)")
	fs.StringVar(&o.manifest, "manifest", "../macaque.yml", "manifest applied in the namespace")
	// macaque.yml sets GOMEMLIMIT to 28MiB, under its 32Mi memory limit; measure it the same way.
	fs.StringVar(&o.goMemLimit, "gomemlimit", "28MiB", "GOMEMLIMIT for macaque, as macaque.yml sets it (empty: unset)")
	fs.IntVar(&o.rounds, "strategy-rounds", 3, "rounds of the list-strategy probe per size (0: skip it)")
	// At the e2e suite's 200 requests a second the ReplicaSet controller alone would need over 4
	// minutes for 50,000 pods; the API server, not this limit, should bound the bench's setup.
	fs.IntVar(&o.cmQPS, "controller-qps", 1000, "kube-controller-manager's --kube-api-qps (burst twice that)")
	// Issue 12: 100,000 pods across 1,000 namespaces, peak RSS within the 32 MiB of the manifest.
	l.cluster = fs.String("cluster", "100000x1000", "cluster-wide case: PODSxNAMESPACES, one Deployment of PODS/NAMESPACES replicas in each namespace, macaque-cluster.yml with MACAQUE_NAMESPACE=* (empty: skip it)")
	fs.StringVar(&o.clusterManifest, "cluster-manifest", "../macaque-cluster.yml", "manifest applied for the cluster-wide case")
	fs.IntVar(&o.killCount, "kill-count", 1, "MACAQUE_KILL_COUNT for the -pods sizes: victims a tick, 1 to 100")
	fs.IntVar(&o.workloads, "workloads", 1, "Deployments each -pods size is spread over (-create deployment), at most one victim of each a tick")
	// Issue 18: 100 victims a tick at 50,000 pods, each followed by its verdict, within 32 MiB.
	// macaque kills at most one pod of a Deployment a tick: 100 victims need 100 Deployments and
	// more, so that those still recovering from the previous tick may be passed over.
	l.many = fs.String("many", "50000x500", "many-workloads row: PODSxDEPLOYMENTS in one namespace, measured with -many-kill-count victims a tick (empty: skip it)")
	fs.IntVar(&o.manyKillCount, "many-kill-count", maxKillCount, "MACAQUE_KILL_COUNT for the -many row, 1 to 100")
	// kwok makes a replacement Ready at once, and a verdict would be given in 0.1 s: too soon
	// for the next victim's. A replacement available only after 10s keeps each verdict open past
	// the tick's last kill (macaque's tries take 10s at most), so all of a tick's are in flight.
	fs.DurationVar(&o.manyMinReady, "many-min-ready", 10*time.Second, "minReadySeconds of the -many Deployments, whole seconds: at least how long each verdict stays open")
	return l
}

// readLists reads the flags given as text: the sizes, the binaries compared and the spreads.
func (o *options) readLists(l listFlags) error {
	for s := range strings.SplitSeq(*l.pods, ",") {
		if strings.TrimSpace(*l.pods) == "" {
			break
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-pods: %q is not a positive number", s)
		}
		o.sizes = append(o.sizes, n)
	}
	for b := range strings.SplitSeq(*l.compare, ",") {
		if b = strings.TrimSpace(b); b != "" {
			o.compare = append(o.compare, b)
		}
	}
	slices.Sort(o.sizes)
	o.sizes = slices.Compact(o.sizes)
	var err error
	if o.cluster, err = parseClusterSpec(*l.cluster); err != nil {
		return fmt.Errorf("-cluster: %w", err)
	}
	if o.many.pods, o.many.workloads, err = parseSpread(*l.many, "Deployments", "50000x500"); err != nil {
		return fmt.Errorf("-many: %w", err)
	}
	return nil
}

// check checks the settings but the kill counts and workloads (checkKills).
func (o options) check() error {
	switch {
	case len(o.sizes) == 0 && o.many.pods == 0 && o.cluster.pods == 0:
		return errors.New("-pods, -many and -cluster all empty: nothing to measure")
	case o.ticks < 2:
		return errors.New("-ticks: need at least 2")
	case o.every != 0 && (o.every < time.Second || o.every%time.Second != 0):
		return errors.New("-every: cron's @every takes whole seconds")
	case o.manyMinReady < 0 || o.manyMinReady%time.Second != 0:
		return errors.New("-many-min-ready: minReadySeconds takes whole seconds, none negative")
	case o.create != createPods && o.create != createDeployment:
		return fmt.Errorf("-create: %q is neither %s nor %s", o.create, createPods, createDeployment)
	case o.creators < 1:
		return errors.New("-creators: need at least 1")
	case o.rounds < 0:
		return errors.New("-strategy-rounds: must not be negative")
	case o.cmQPS < 1:
		return errors.New("-controller-qps: need at least 1")
	}
	return nil
}

// checkKills checks the kill counts and the spread of the sizes over -workloads Deployments.
func (o options) checkKills() error {
	for _, c := range []struct {
		flag  string
		count int
	}{{"-kill-count", o.killCount}, {"-many-kill-count", o.manyKillCount}} {
		if c.count < 1 || c.count > maxKillCount {
			return fmt.Errorf("%s: %d is not 1 to %d victims a tick, as MACAQUE_KILL_COUNT takes", c.flag, c.count, maxKillCount)
		}
	}
	if o.workloads < 1 {
		return errors.New("-workloads: need at least 1")
	}
	if o.workloads > 1 && o.create != createDeployment {
		return fmt.Errorf("-workloads: %d Deployments need -create %s", o.workloads, createDeployment)
	}
	for _, size := range o.sizes {
		if size%o.workloads != 0 {
			return fmt.Errorf("-workloads: %d pods do not spread evenly over %d Deployments", size, o.workloads)
		}
	}
	return nil
}

// namespaceCase is a run of single-namespace sizes on a control plane of its own: the -pods
// sizes, or the -many row.
type namespaceCase struct {
	sizes     []int
	create    string
	workloads int // Deployments each size's pods are spread over (createDeployment)
	killCount int // MACAQUE_KILL_COUNT
	rounds    int // list-strategy probe rounds per size; 0 skips it
	// minReady is the Deployments' minReadySeconds (workloads > 1): how long a replacement must
	// be Ready before it counts as available, and so, at least, how long a verdict stays open.
	minReady time.Duration
}

// sizesCase is the -pods sizes.
func (o options) sizesCase() namespaceCase {
	return namespaceCase{sizes: o.sizes, create: o.create, workloads: o.workloads, killCount: o.killCount, rounds: o.rounds}
}

// manyCase is the -many row. It probes no list strategy: its list is that of the -pods sizes.
func (o options) manyCase() namespaceCase {
	return namespaceCase{sizes: []int{o.many.pods}, create: createDeployment, workloads: o.many.workloads,
		killCount: o.manyKillCount, minReady: o.manyMinReady}
}

// autoEvery spaces ticks so that one tick's list normally ends before the next begins: a tick
// that fires while the previous kill runs is skipped by macaque, and would not be measured.
func autoEvery(pods int) time.Duration {
	extra := max(0, (pods-1)/10000)
	return 2*time.Second + time.Duration(extra)*time.Second
}

// pickTimeout is macaque's (defaultTimeouts.Pick): the longest a tick's list and tries together
// take, however many victims it asks for.
const pickTimeout = 10 * time.Second

// every is the tick spacing at size: flag (-every) when set, else autoEvery's, plus, for many
// victims a tick, the longest their tries may take and the time their verdicts stay open at
// least (minReady), so that a tick's verdicts are given before the next tick's kills begin.
func (nc namespaceCase) every(flag time.Duration, size int) time.Duration {
	if flag != 0 {
		return flag
	}
	e := autoEvery(size)
	if nc.killCount > 1 {
		e += pickTimeout + nc.minReady
	}
	return e
}

func main() {
	logger := log.New(os.Stderr, "bench: ", log.Ltime|log.Lmsgprefix)
	o, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		logger.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills bench at once; the kernel then kills its children
	}()
	began := time.Now()
	err = run(ctx, o, os.Stdout, logger)
	stop()
	if err != nil {
		if ctx.Err() != nil {
			logger.Printf("interrupted after %s: %v", time.Since(began).Round(time.Second), err)
		} else {
			logger.Printf("harness error after %s: %v", time.Since(began).Round(time.Second), err)
		}
		os.Exit(1)
	}
	logger.Printf("done in %s", time.Since(began).Round(time.Second))
}

// run is the whole benchmark: the single-namespace sizes on one control plane, then the
// cluster-wide case on another, and a report printed as soon as each is measured. Everything it
// starts is stopped on return.
func run(ctx context.Context, o options, stdout io.Writer, logger *log.Logger) error {
	began := time.Now()
	facts, err := readMachineFacts(o.macaque)
	if err != nil {
		return err
	}
	for _, b := range o.compare {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("-compare: %w", err)
		}
	}
	if o.cluster.pods > 0 {
		if _, err := os.Stat(o.clusterManifest); err != nil {
			return fmt.Errorf("-cluster-manifest: %w", err)
		}
	}
	printFacts(stdout, facts)

	var missed []string
	if len(o.sizes) > 0 {
		m, err := benchNamespace(ctx, o, o.sizesCase(), stdout, logger)
		if err != nil {
			return err
		}
		missed = append(missed, m...)
	}
	if o.many.pods > 0 {
		m, err := benchNamespace(ctx, o, o.manyCase(), stdout, logger)
		if err != nil {
			return fmt.Errorf("many-workloads row (%s, MACAQUE_KILL_COUNT=%d): %w", o.many, o.manyKillCount, err)
		}
		missed = append(missed, m...)
	}
	if o.cluster.pods > 0 {
		m, err := benchCluster(ctx, o, stdout, logger)
		if err != nil {
			return fmt.Errorf("cluster-wide case (%s): %w", o.cluster, err)
		}
		missed = append(missed, m...)
	}
	missed = append(missed, printBinary(stdout, facts)...)
	printVerdict(stdout, missed, time.Since(began))
	return nil
}

// benchNamespace measures every size of nc on one control plane, one namespace grown through
// them, and returns the targets missed.
func benchNamespace(ctx context.Context, o options, nc namespaceCase, stdout io.Writer, logger *log.Logger) ([]string, error) {
	c, err := startControlPlane(ctx, o, logger)
	if err != nil {
		return nil, err
	}
	defer stopControlPlane(c, logger)

	ns, err := deployManifest(ctx, c, o.manifest)
	if err != nil {
		return nil, err
	}
	pop, err := newPopulation(c, ns, nc.create, o.creators, logger)
	if err != nil {
		return nil, err
	}
	pop.workloads, pop.minReady = nc.workloads, int32(nc.minReady/time.Second)
	var missed []string
	for _, size := range nc.sizes {
		setup, err := pop.growTo(ctx, size)
		if err != nil {
			return nil, fmt.Errorf("set up %d pods: %w", size, err)
		}
		every := nc.every(o.every, size)
		for i, binary := range append([]string{o.macaque}, o.compare...) {
			res, err := measure(ctx, c, ns, measureSpec{
				pods: size, ticks: o.ticks, every: every, binary: binary, goMemLimit: o.goMemLimit,
				killCount: nc.killCount, workloads: nc.workloads,
			}, logger)
			if err != nil {
				return nil, fmt.Errorf("measure %s at %d pods: %w", binary, size, err)
			}
			res.setup = setup
			if i == 0 { // the targets are the binary under test's; the others are for comparison
				missed = append(missed, printSize(stdout, res)...)
			} else {
				printSize(stdout, res)
			}
		}
		if nc.rounds > 0 {
			probed, err := probeStrategies(ctx, c, ns, nc.rounds, logger)
			if err != nil {
				return nil, fmt.Errorf("probe list strategies at %d pods: %w", size, err)
			}
			printStrategies(stdout, size, probed)
		}
	}
	return missed, nil
}

// startControlPlane starts a control plane with bench's controller-manager rate.
func startControlPlane(ctx context.Context, o options, logger *log.Logger) (*cluster.Cluster, error) {
	return cluster.Start(ctx, cluster.Options{Logf: logger.Printf, ControllerQPS: o.cmQPS})
}

// stopControlPlane stops c and removes its directory, etcd's data with it.
func stopControlPlane(c *cluster.Cluster, logger *log.Logger) {
	logger.Print("stopping the control plane")
	if err := c.Stop(); err != nil {
		logger.Print(err)
	}
}

// deployManifest creates a namespace and applies the shipped manifest in it, as a user would,
// so macaque runs with exactly the ServiceAccount and Role that ship.
func deployManifest(ctx context.Context, c *cluster.Cluster, manifest string) (string, error) {
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	created, err := c.Clientset.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("create namespace: %w", err)
	}
	if out, err := c.KubectlContext(ctx, "apply", "-n", created.Name, "-f", manifest); err != nil {
		return "", fmt.Errorf("apply %s: %w\n%s", manifest, err, out)
	}
	return created.Name, nil
}
