package election

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/testkit"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

const ns = "chaos"

// t0 is when every test's clock starts.
var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)

// clock is a settable clock; only the test moves it.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// leading records what the Observer was told, in order.
type leading struct {
	mu   sync.Mutex
	told []bool
}

func (l *leading) Leading(b bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.told = append(l.told, b)
}

func (l *leading) said() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.told...)
}

// newElector is an Elector for replica id against srv, on clk, telling obs.
func newElector(t *testing.T, srv *fakeapi.Server, id string, clk *clock, obs *leading) *Elector {
	t.Helper()
	api, err := kube.NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &Elector{API: api, Namespace: ns, Identity: id, Now: clk.Now, After: time.After,
		Log: slog.New(slog.DiscardHandler), Observer: obs}
}

// step is one try of e at at, as Run makes it, after which e leads or not.
func step(t *testing.T, e *Elector, clk *clock, at time.Time, last *time.Time) bool {
	t.Helper()
	clk.set(at)
	ok := e.try(testkit.Ctx(t), at)
	*last = e.afterTry(ok, at, *last)
	return ok
}

// heldBy is a Lease held by holder, renewed at renewed.
func heldBy(holder string, renewed time.Time) *coordinationv1.Lease {
	secs := int32(15)
	return &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: LeaseName, Namespace: ns},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &secs,
			RenewTime: &metav1.MicroTime{Time: renewed}, AcquireTime: &metav1.MicroTime{Time: renewed}}}
}

// holder is who holds the stored Lease.
func holder(t *testing.T, srv *fakeapi.Server) string {
	t.Helper()
	l := srv.Lease(ns, LeaseName)
	if l == nil {
		t.Fatal("no Lease stored")
	}
	return deref(l.Spec.HolderIdentity)
}

func TestAcquireCreatesTheLeaseAndHoldsIt(t *testing.T) {
	srv := fakeapi.New(t)
	clk, obs := &clock{now: t0}, &leading{}
	e := newElector(t, srv, "macaque-a", clk, obs)
	took := make(chan Takeover, 1)
	e.Takeovers = took
	var last time.Time
	if !step(t, e, clk, t0, &last) {
		t.Fatal("the first try on an empty namespace did not take the lease")
	}
	if got := holder(t, srv); got != "macaque-a" {
		t.Errorf("holder = %q, want macaque-a", got)
	}
	l := srv.Lease(ns, LeaseName)
	if d := *l.Spec.LeaseDurationSeconds; d != 15 {
		t.Errorf("leaseDurationSeconds = %d, want 15", d)
	}
	if !l.Spec.RenewTime.Time.Equal(t0) || !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Errorf("renewTime %v, acquireTime %v, want both %v", l.Spec.RenewTime, l.Spec.AcquireTime, t0)
	}
	if tk := <-took; tk.From != "" || tk.Identity != "macaque-a" || !tk.At.Equal(t0) || tk.Expired {
		t.Errorf("takeover = %+v, want from nobody, by macaque-a at t0", tk)
	}
	if got := obs.said(); len(got) != 1 || !got[0] {
		t.Errorf("observer told %v, want [true]", got)
	}
}

func TestHoldSaysWhetherTheLeaseOutlastsTheKill(t *testing.T) {
	srv := fakeapi.New(t)
	clk := &clock{now: t0}
	e := newElector(t, srv, "macaque-a", clk, &leading{})
	if err := e.Hold(0); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("before any try: Hold = %v, want ErrNotLeader", err)
	}
	var last time.Time
	step(t, e, clk, t0, &last)
	const kill = 10 * time.Second
	for _, c := range []struct {
		name string
		at   time.Duration // after the lease was taken
		ok   bool
	}{
		{"at once", 0, true},
		{"4.9 s on: 10.1 s left", 4900 * time.Millisecond, true},
		{"5 s on: exactly the kill's 10 s left", 5 * time.Second, false},
		{"past the lease", 16 * time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk.set(t0.Add(c.at))
			err := e.Hold(kill)
			if c.ok != (err == nil) {
				t.Fatalf("Hold(%v) = %v, want ok %v", kill, err, c.ok)
			}
			if until := e.until(); c.ok && !until.Equal(t0.Add(LeaseDuration)) {
				t.Errorf("valid until %v, want %v", until, t0.Add(LeaseDuration))
			}
			if !c.ok && !strings.Contains(err.Error(), "runs out in") {
				t.Errorf("refusal %q does not say when the lease runs out", err)
			}
		})
	}
}

func TestTheLeaderRenewsWithOneUpdate(t *testing.T) {
	srv, clk, e, last, _ := leaderAtT0(t)
	before := len(srv.Requests())
	at := t0.Add(RetryPeriod)
	if !step(t, e, clk, at, last) {
		t.Fatal("the renewal failed")
	}
	reqs := srv.Requests()[before:]
	if len(reqs) != 1 || reqs[0].Method != http.MethodPut {
		t.Errorf("renewal made %v, want one PUT", reqs)
	}
	if l := srv.Lease(ns, LeaseName); !l.Spec.RenewTime.Time.Equal(at) || !l.Spec.AcquireTime.Time.Equal(t0) {
		t.Errorf("renewTime %v, acquireTime %v: want renewed at %v, acquired at %v", l.Spec.RenewTime, l.Spec.AcquireTime, at, t0)
	}
	if err := e.Hold(0); err != nil || !e.until().Equal(at.Add(LeaseDuration)) {
		t.Errorf("Hold = %v, valid until %v: want valid until %v", err, e.until(), at.Add(LeaseDuration))
	}
}

func TestAStandbyTakesTheLeaseOnlyOnceItRanOutByItsOwnClock(t *testing.T) {
	srv := fakeapi.New(t)
	// The holder's renewTime is from long ago by the standby's clock: clocks differ, so only
	// what the standby saw counts, and it counts from its first read.
	srv.SetLease(heldBy("macaque-a", t0.Add(-time.Hour)))
	clk, obs := &clock{now: t0}, &leading{}
	e := newElector(t, srv, "macaque-b", clk, obs)
	took := make(chan Takeover, 1)
	e.Takeovers = took
	var last time.Time
	if step(t, e, clk, t0, &last) {
		t.Fatal("took a lease it had just seen")
	}
	if step(t, e, clk, t0.Add(14*time.Second), &last) {
		t.Fatal("took the lease 14 s after first seeing it, within its 15 s")
	}
	if !step(t, e, clk, t0.Add(15*time.Second), &last) {
		t.Fatal("did not take the lease 15 s after last seeing it renewed")
	}
	if got := holder(t, srv); got != "macaque-b" {
		t.Errorf("holder = %q, want macaque-b", got)
	}
	if l := srv.Lease(ns, LeaseName); *l.Spec.LeaseTransitions != 1 {
		t.Errorf("leaseTransitions = %d, want 1", *l.Spec.LeaseTransitions)
	}
	if tk := <-took; tk.From != "macaque-a" || !tk.Expired {
		t.Errorf("takeover = %+v, want from macaque-a, expired", tk)
	}
	if got := obs.said(); len(got) != 1 || !got[0] {
		t.Errorf("observer told %v, want [true]", got)
	}
}

func TestAStandbyNeverTakesALeaseThatIsRenewed(t *testing.T) {
	srv := fakeapi.New(t)
	srv.SetLease(heldBy("macaque-a", t0))
	clk := &clock{now: t0}
	e := newElector(t, srv, "macaque-b", clk, &leading{})
	var last time.Time
	for i := range 20 {
		at := t0.Add(time.Duration(i) * RetryPeriod)
		srv.SetLease(heldBy("macaque-a", at)) // the leader's renewal
		if step(t, e, clk, at.Add(time.Second), &last) {
			t.Fatalf("try %d took a lease renewed a second before", i)
		}
	}
	if got := holder(t, srv); got != "macaque-a" {
		t.Errorf("holder = %q, want macaque-a", got)
	}
}

func TestALeaderThatCannotRenewStopsLeadingAtTheDeadline(t *testing.T) {
	srv, clk, e, last, obs := leaderAtT0(t)
	srv.Fail = func(r fakeapi.Request) *metav1.Status {
		if strings.Contains(r.Path, "/leases") {
			return fakeapi.InternalError("etcdserver: request timed out")
		}
		return nil
	}
	for at := RetryPeriod; at < RenewDeadline; at += RetryPeriod {
		step(t, e, clk, t0.Add(at), last)
		if !leads(e) {
			t.Fatalf("stopped leading %v after its last renewal, before the %v deadline", at, RenewDeadline)
		}
		// Each failed renewal shortens what Hold grants, so kills stop before the deadline.
		if err := e.Hold(10 * time.Second); (at < 5*time.Second) != (err == nil) {
			t.Errorf("%v after the renewal: Hold(10s) = %v", at, err)
		}
	}
	step(t, e, clk, t0.Add(RenewDeadline), last)
	if leads(e) {
		t.Fatal("still leading after failing to renew for the whole deadline")
	}
	if got := obs.said(); len(got) != 2 || !got[0] || got[1] {
		t.Errorf("observer told %v, want [true false]", got)
	}
}

func TestALeaderWhoseLeaseWasTakenStopsAtOnce(t *testing.T) {
	// A leader frozen (SIGSTOP) past its lease wakes to find another holder: it refuses kills
	// from its first look at the clock, and stops leading at its first try.
	srv, clk, e, last, _ := leaderAtT0(t)
	woke := t0.Add(20 * time.Second)
	srv.SetLease(heldBy("macaque-b", t0.Add(17*time.Second)))
	clk.set(woke)
	if err := e.Hold(0); err == nil {
		t.Fatal("Hold granted a kill on a lease that ran out while frozen")
	}
	if step(t, e, clk, woke, last) {
		t.Fatal("renewed a lease another replica holds")
	}
	if leads(e) {
		t.Error("still leading after seeing another holder")
	}
	if got := holder(t, srv); got != "macaque-b" {
		t.Errorf("holder = %q, want macaque-b untouched", got)
	}
}

func TestRunReleasesTheLeaseOnceTheKillerEnded(t *testing.T) {
	srv := fakeapi.New(t)
	clk, obs := &clock{now: t0}, &leading{}
	e := newElector(t, srv, "macaque-a", clk, obs)
	took := make(chan Takeover, 1)
	e.Takeovers = took
	ctx, stop := context.WithCancel(testkit.Ctx(t))
	killerDone := make(chan struct{})
	ended := make(chan struct{})
	go func() { e.Run(ctx, killerDone); close(ended) }()
	testkit.Recv(t, took, "the takeover")
	stop()
	// Stopping alone does not release: a kill may be in flight until the killer ends.
	select {
	case <-ended:
		t.Fatal("Run ended before the killer did")
	case <-time.After(50 * time.Millisecond):
	}
	if got := holder(t, srv); got != "macaque-a" {
		t.Fatalf("holder = %q before the killer ended, want macaque-a", got)
	}
	close(killerDone)
	testkit.Recv(t, ended, "Run's end")
	if _, open := <-took; open {
		t.Error("Takeovers not closed")
	}
	l := srv.Lease(ns, LeaseName)
	if h := deref(l.Spec.HolderIdentity); h != "" || *l.Spec.LeaseDurationSeconds != 1 {
		t.Errorf("released lease: holder %q, duration %d; want none, 1", h, *l.Spec.LeaseDurationSeconds)
	}
	if got := obs.said(); len(got) != 2 || got[1] {
		t.Errorf("observer told %v, want [true false]", got)
	}

	// A standby takes a released lease at its first try, not a lease duration later.
	b := newElector(t, srv, "macaque-b", clk, &leading{})
	tb := make(chan Takeover, 1)
	b.Takeovers = tb
	var last time.Time
	if !step(t, b, clk, t0.Add(time.Second), &last) {
		t.Fatal("the standby did not take the released lease at once")
	}
	if tk := <-tb; tk.From != "" || tk.Expired {
		t.Errorf("takeover of a released lease = %+v, want from nobody, not expired", tk)
	}
}

func TestTwoRacingStandbysTakeTheLeaseOnce(t *testing.T) {
	srv := fakeapi.New(t)
	clk := &clock{now: t0}
	a := newElector(t, srv, "macaque-a", clk, &leading{})
	b := newElector(t, srv, "macaque-b", clk, &leading{})
	var wg sync.WaitGroup
	var oks [2]bool
	for i, e := range []*Elector{a, b} {
		wg.Go(func() { oks[i] = e.try(testkit.Ctx(t), t0) })
	}
	wg.Wait()
	if oks[0] == oks[1] {
		t.Fatalf("both or neither took the lease: %v", oks)
	}
	if leads(a) == leads(b) {
		t.Fatalf("leading: a %v, b %v; want exactly one", leads(a), leads(b))
	}
}

func TestAStandbyTriesAgainWhenTheLeaseRunsOut(t *testing.T) {
	srv := fakeapi.New(t)
	srv.SetLease(heldBy("macaque-a", t0))
	clk := &clock{now: t0}
	e := newElector(t, srv, "macaque-b", clk, &leading{})
	e.Rand = rand.New(rand.NewPCG(1, 2))
	var last time.Time
	step(t, e, clk, t0, &last) // first sight of the holder's renewal: its lease runs to t0+15s
	for _, c := range []struct {
		name     string
		at       time.Duration
		min, max time.Duration
	}{
		{"long before the lease runs out: a jittered retry", 0, RetryPeriod, RetryPeriod + 12*RetryPeriod/10},
		{"a second before: at the lease's end", 14 * time.Second, time.Second, time.Second},
		{"once it ran out: a jittered retry", 16 * time.Second, RetryPeriod, RetryPeriod + 12*RetryPeriod/10},
	} {
		t.Run(c.name, func(t *testing.T) {
			clk.set(t0.Add(c.at))
			if got := e.wait(time.Time{}); got < c.min || got > c.max {
				t.Errorf("wait = %v, want between %v and %v", got, c.min, c.max)
			}
		})
	}
	if got := e.wait(t0); got != RetryPeriod {
		t.Errorf("a leader's wait = %v, want %v", got, RetryPeriod)
	}
}

func TestTheLeaseKeepsTheKillsFollowedForTheNextLeader(t *testing.T) {
	srv := fakeapi.New(t)
	clk := &clock{now: t0}
	a := newElector(t, srv, "macaque-a", clk, &leading{})
	following := `[{"pod":"web-1"}]`
	a.Following = func() string { return following }
	var lastA time.Time
	step(t, a, clk, t0, &lastA)
	if got := srv.Lease(ns, LeaseName).Annotations[FollowingAnnotation]; got != following {
		t.Fatalf("annotation at the take = %q, want %q", got, following)
	}
	following = ""
	step(t, a, clk, t0.Add(RetryPeriod), &lastA)
	if _, ok := srv.Lease(ns, LeaseName).Annotations[FollowingAnnotation]; ok {
		t.Fatal("the annotation outlived the last follow")
	}
	following = `[{"pod":"web-2"}]`
	step(t, a, clk, t0.Add(2*RetryPeriod), &lastA)

	for _, c := range []struct {
		name     string
		released bool
		want     string
	}{
		// Released first: a's own copy of the lease is current only before the other case's
		// cleanup puts the lease back.
		{"a leader that released the lease leaves none: it ended them", true, ""},
		{"a leader that died leaves its kills to the next", false, `[{"pod":"web-2"}]`},
	} {
		t.Run(c.name, func(t *testing.T) {
			saved := srv.Lease(ns, LeaseName)
			t.Cleanup(func() { srv.SetLease(saved) })
			at := t0.Add(2 * RetryPeriod)
			if c.released {
				a.release(testkit.Ctx(t))
				if f, ok := srv.Lease(ns, LeaseName).Annotations[FollowingAnnotation]; ok {
					t.Errorf("the released lease still names kills: %q", f)
				}
			}
			b := newElector(t, srv, "macaque-b", clk, &leading{})
			took := make(chan Takeover, 1)
			b.Takeovers = took
			var lastB time.Time
			step(t, b, clk, at, &lastB) // a's last renewal, first seen
			if !c.released {
				at = at.Add(LeaseDuration)
				step(t, b, clk, at, &lastB)
			}
			tk, _ := testkit.Recv(t, took, "b's takeover")
			if tk.Following != c.want || tk.From != map[bool]string{true: "", false: "macaque-a"}[c.released] {
				t.Errorf("takeover = %+v, want following %q", tk, c.want)
			}
		})
	}
}

// leaderAtT0 is replica macaque-a having taken the lease at t0 on a server of its own, with
// the start of its last renewal and what its observer was told.
func leaderAtT0(t *testing.T) (*fakeapi.Server, *clock, *Elector, *time.Time, *leading) {
	t.Helper()
	srv := fakeapi.New(t)
	clk, obs := &clock{now: t0}, &leading{}
	e := newElector(t, srv, "macaque-a", clk, obs)
	last := new(time.Time)
	if !step(t, e, clk, t0, last) {
		t.Fatal("macaque-a did not take the lease of an empty namespace")
	}
	return srv, clk, e, last, obs
}

func TestAFrozenLeaderThatCannotRenewIsToldItLost(t *testing.T) {
	// Frozen past its lease with the API server unreachable on waking: no other holder to see,
	// yet it stops leading, and says so, at its first failed try.
	srv, clk, e, last, obs := leaderAtT0(t)
	srv.Fail = func(fakeapi.Request) *metav1.Status { return fakeapi.InternalError("unreachable") }
	step(t, e, clk, t0.Add(20*time.Second), last)
	if leads(e) || !last.IsZero() {
		t.Fatalf("leading %v, last renewal %v: want a standby", leads(e), *last)
	}
	if got := obs.said(); len(got) != 2 || got[1] {
		t.Errorf("observer told %v, want [true false]", got)
	}
}

// leads says whether e holds the lease now, however soon it runs out.
func leads(e *Elector) bool { return e.Hold(0) == nil }

// until is when e's lease runs out, by its own count; zero when it does not lead.
func (e *Elector) until() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.validUntil
}
