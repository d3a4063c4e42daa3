package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/internal/policy"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/kube"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
)

// fakeSelf is macaque's own pod, ReplicaSet and Deployment as the API server would serve them,
// each read answered by err when one is set for it.
type fakeSelf struct {
	mu        sync.Mutex
	pods      map[string]kube.Pod      // by name
	workloads map[string]kube.Workload // by "Kind/name"
	errs      map[string]error         // by "pod/name" or "Kind/name"
	gets      int                      // workload reads
}

func (f *fakeSelf) Lookup(_ context.Context, _, name, _ string) (kube.Pod, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.errs["pod/"+name]; err != nil {
		return kube.Pod{}, err
	}
	v, ok := f.pods[name]
	if !ok {
		return kube.Pod{}, fmt.Errorf("pod %q: %w", name, kube.ErrGone)
	}
	return v, nil
}

func (f *fakeSelf) GetWorkload(_ context.Context, _ string, k kube.WorkloadKind, name string) (kube.Workload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if err := f.errs[k.Kind+"/"+name]; err != nil {
		return kube.Workload{}, err
	}
	w, ok := f.workloads[k.Kind+"/"+name]
	if !ok {
		return kube.Workload{}, apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: k.Resource}, name)
	}
	return w, nil
}

// annotate sets (or with remove, removes) the pause annotation on the Deployment.
func (f *fakeSelf) annotate(value string, remove bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.workloads["Deployment/macaque"]
	w.Metadata.Annotations = map[string]string{"other": "x"}
	if !remove {
		w.Metadata.Annotations[policy.PausedAnnotation] = value
	}
	f.workloads["Deployment/macaque"] = w
}

func (f *fakeSelf) fail(key string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs[key] = err
}

// wl is a workload named name, controlled by owner when owner is not empty ("Kind/name").
func wl(name, owner string) kube.Workload {
	var w kube.Workload
	w.Metadata.Name, w.Metadata.UID = name, types.UID("uid-"+name)
	if kind, ownerName, ok := strings.Cut(owner, "/"); ok {
		w.Metadata.OwnerReferences = []kube.OwnerRef{{APIVersion: "apps/v1", Kind: kind, Name: ownerName, UID: types.UID("uid-" + ownerName), Controller: new(true)}}
	}
	return w
}

// newFakeSelf is macaque run by the Deployment macaque, through its ReplicaSet macaque-5f7.
func newFakeSelf() *fakeSelf {
	return &fakeSelf{
		pods: map[string]kube.Pod{"macaque-5f7-x2": {UID: "uid-pod", Controller: &kube.OwnerRef{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "macaque-5f7", UID: "uid-macaque-5f7", Controller: new(true)}}},
		workloads: map[string]kube.Workload{
			"ReplicaSet/macaque-5f7": wl("macaque-5f7", "Deployment/macaque"),
			"Deployment/macaque":     wl("macaque", ""),
		},
		errs: map[string]error{},
	}
}

// errRBACDenied is the error client-go returns for RBAC's 403 to a get of macaque's Deployment:
// what apierrors.NewForbidden makes, spelt out so the authorizer's message keeps its capital.
var errRBACDenied = &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusForbidden,
	Reason: metav1.StatusReasonForbidden, Details: &metav1.StatusDetails{Group: "apps", Kind: "deployments", Name: "macaque"},
	Message: `deployments.apps "macaque" is forbidden: User "system:serviceaccount:chaos:macaque" cannot get resource "deployments" in API group "apps" in the namespace "chaos"`}}

func TestFindOwnDeployment(t *testing.T) {
	tests := []struct {
		name     string
		pod, ns  string
		edit     func(*fakeSelf)
		want     string // the Deployment found
		why      string // a substring of why there is none
		badVar   string // the configError's variable, when macaque must stop with exit 2
		errText  string // a substring of another error
		noAPICal bool
	}{
		{name: "found through its ReplicaSet", pod: "macaque-5f7-x2", ns: "chaos", want: "macaque"},
		{name: "no POD_NAME", ns: "chaos", why: "not in a pod", noAPICal: true},
		{name: "no namespace of its own", pod: "laptop", why: "not in a pod", noAPICal: true},
		{name: "no such pod, as when run from a laptop", pod: "macaque-e2e", ns: "chaos", why: `no pod "macaque-e2e" in "chaos"`},
		{name: "a bare pod", pod: "macaque-5f7-x2", ns: "chaos", why: "not run by a Deployment (its controller: none)",
			edit: func(f *fakeSelf) { f.pods["macaque-5f7-x2"] = kube.Pod{UID: "uid-pod"} }},
		{name: "a StatefulSet's pod", pod: "macaque-5f7-x2", ns: "chaos", why: "not run by a Deployment (its controller: StatefulSet/macaque)",
			edit: func(f *fakeSelf) {
				f.pods["macaque-5f7-x2"] = kube.Pod{Controller: &kube.OwnerRef{APIVersion: "apps/v1", Kind: "StatefulSet", Name: "macaque", Controller: new(true)}}
			}},
		{name: "the ReplicaSet gone", pod: "macaque-5f7-x2", ns: "chaos", why: `ReplicaSet "macaque-5f7" of pod "macaque-5f7-x2" is gone`,
			edit: func(f *fakeSelf) { delete(f.workloads, "ReplicaSet/macaque-5f7") }},
		{name: "a ReplicaSet of its own", pod: "macaque-5f7-x2", ns: "chaos", why: "is not run by a Deployment",
			edit: func(f *fakeSelf) { f.workloads["ReplicaSet/macaque-5f7"] = wl("macaque-5f7", "") }},
		{name: "a ReplicaSet of a rollout operator", pod: "macaque-5f7-x2", ns: "chaos", why: "is not run by a Deployment",
			edit: func(f *fakeSelf) { f.workloads["ReplicaSet/macaque-5f7"] = wl("macaque-5f7", "Rollout/macaque") }},
		{name: "list pods denied", pod: "macaque-5f7-x2", ns: "chaos", badVar: "POD_NAMESPACE",
			edit: func(f *fakeSelf) { f.errs["pod/macaque-5f7-x2"] = errRBACDenied }},
		{name: "get replicasets denied", pod: "macaque-5f7-x2", ns: "chaos", badVar: "POD_NAMESPACE",
			edit: func(f *fakeSelf) { f.errs["ReplicaSet/macaque-5f7"] = errRBACDenied }},
		{name: "get deployments denied", pod: "macaque-5f7-x2", ns: "chaos", badVar: "POD_NAMESPACE",
			edit: func(f *fakeSelf) { f.errs["Deployment/macaque"] = errRBACDenied }},
		{name: "the Deployment gone", pod: "macaque-5f7-x2", ns: "chaos", errText: `get deployments "macaque" in "chaos"`,
			edit: func(f *fakeSelf) { delete(f.workloads, "Deployment/macaque") }},
		{name: "an API server failing", pod: "macaque-5f7-x2", ns: "chaos", errText: `list pods "macaque-5f7-x2" in "chaos": boom`,
			edit: func(f *fakeSelf) { f.errs["pod/macaque-5f7-x2"] = errors.New("boom") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSelf()
			if tt.edit != nil {
				tt.edit(f)
			}
			var logs strings.Builder
			sw, why, err := startPauseSwitch(testkit.Ctx(t), f, tt.pod, tt.ns, slog.New(slog.NewJSONHandler(&logs, nil)))
			says := sw.Describe(why)
			var bad *configError
			switch {
			case tt.badVar != "":
				if !errors.As(err, &bad) || bad.variable != tt.badVar || !strings.Contains(err.Error(), "grant list on pods and get on replicasets and deployments") {
					t.Fatalf("err = %v, want a configError naming %s and the Role's grants", err, tt.badVar)
				}
			case tt.errText != "":
				if err == nil || errors.As(err, &bad) || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want an error (not a bad setting) saying %q", err, tt.errText)
				}
			case err != nil:
				t.Fatalf("err = %v", err)
			case tt.want != "":
				if sw == nil || says != "annotation chaos.macaque.dev/paused on deployment "+tt.ns+"/"+tt.want || tt.ns != "chaos" {
					t.Errorf("switch %+v, start line %q; want one on deployment %s/%s", sw, says, tt.ns, tt.want)
				}
			default:
				if sw != nil || !strings.Contains(says, tt.why) || !strings.HasPrefix(says, "unavailable: ") {
					t.Errorf("switch %+v, start line %q; want none, unavailable because %q", sw, says, tt.why)
				}
			}
			if logs.Len() != 0 {
				t.Errorf("logged %q, want nothing: run warns, after the other start checks", logs.String())
			}
			if tt.noAPICal && (f.gets != 0) {
				t.Errorf("%d API reads, want none", f.gets)
			}
		})
	}
}

// pauseTick is one tick of TestPauseAcrossTicks: what is done to the switch before it, and
// what the tick must report.
type pauseTick struct {
	do      func(*fakeSelf)
	outcome Outcome
	quiet   bool
	note    string // substring of the note
	resumed string // substring of Resumed; empty when there must be none
	err     string // substring of the error
}

func TestPauseAcrossTicks(t *testing.T) {
	set := func(v string) func(*fakeSelf) { return func(f *fakeSelf) { f.annotate(v, false) } }
	remove := func(f *fakeSelf) { f.annotate("", true) }
	failWith := func(err error) func(*fakeSelf) { return func(f *fakeSelf) { f.fail("Deployment/macaque", err) } }
	heal := func(f *fakeSelf) { f.fail("Deployment/macaque", nil) }
	const lift = "lift it with `kubectl -n chaos annotate deploy macaque chaos.macaque.dev/paused-`"
	paused := func(quiet bool, note string) pauseTick {
		return pauseTick{outcome: OutcomePaused, quiet: quiet, note: note}
	}
	tests := []struct {
		name  string
		ticks []pauseTick
	}{
		{name: "no annotation: kills", ticks: []pauseTick{{outcome: OutcomeKilled}, {outcome: OutcomeKilled}}},
		{name: "false: kills", ticks: []pauseTick{{do: set("false"), outcome: OutcomeKilled}}},
		{name: "true: one announcement over many ticks, one resume", ticks: []pauseTick{
			{outcome: OutcomeKilled},
			{do: set("true"), outcome: OutcomePaused, note: "paused until the annotation chaos.macaque.dev/paused is removed from deployment chaos/macaque; " + lift},
			paused(true, "removed"), paused(true, "removed"), paused(true, "removed"),
			{do: remove, outcome: OutcomeKilled, resumed: "the annotation chaos.macaque.dev/paused was removed; kills resume"},
			{outcome: OutcomeKilled},
		}},
		{name: "a time: paused until it passes, then resumes by itself", ticks: []pauseTick{
			{do: set("2026-03-29T09:02:00Z"), outcome: OutcomePaused, note: "paused until 2026-03-29T09:02:00Z by the annotation chaos.macaque.dev/paused on deployment chaos/macaque; " + lift},
			paused(true, "09:02"),
			{outcome: OutcomeKilled, resumed: "the pause until 2026-03-29T09:02:00Z is over; kills resume"}, // the clock is now 09:02
			{outcome: OutcomeKilled},
		}},
		{name: "a time already passed: kills, nothing to announce", ticks: []pauseTick{
			{do: set("2026-03-29T08:00:00Z"), outcome: OutcomeKilled}, {outcome: OutcomeKilled},
		}},
		{name: "set to false: resumes and says so", ticks: []pauseTick{
			{do: set("true"), outcome: OutcomePaused, note: "removed"},
			{do: set("false"), outcome: OutcomeKilled, resumed: `is now "false"`},
		}},
		{name: "terms changed: announced again", ticks: []pauseTick{
			{do: set("true"), outcome: OutcomePaused, note: "removed"},
			{do: set("2026-03-30T00:00:00Z"), outcome: OutcomePaused, note: "paused until 2026-03-30T00:00:00Z"},
			paused(true, "2026-03-30"),
		}},
		{name: "a value not understood: paused to be safe, with the value", ticks: []pauseTick{
			{do: set("yes"), outcome: OutcomePaused, note: `is "yes", which is neither true, false nor an RFC 3339 time; ` + lift},
			paused(true, `"yes"`),
		}},
		{name: "an unreadable switch kills nothing, and says so", ticks: []pauseTick{
			{do: failWith(errors.New("connection refused")), outcome: OutcomeError, err: "the pause switch could not be read, so nothing was killed: get deployment \"macaque\" in \"chaos\": connection refused"},
			{do: failWith(errRBACDenied), outcome: OutcomeError, err: "the pause switch could not be read"}, // not forbidden: no pod was refused
			{do: failWith(apierrors.NewNotFound(schema.GroupResource{Group: "apps", Resource: "deployments"}, "macaque")), outcome: OutcomeError, err: "not found"},
			{do: heal, outcome: OutcomeKilled},
		}},
		{name: "a pause outlives an unreadable tick without a second announcement", ticks: []pauseTick{
			{do: set("true"), outcome: OutcomePaused, note: "removed"},
			{do: failWith(errors.New("timeout")), outcome: OutcomeError, err: "could not be read"},
			{do: heal, outcome: OutcomePaused, quiet: true, note: "removed"},
			{do: failWith(errors.New("timeout")), outcome: OutcomeError, err: "could not be read"},
			{do: func(f *fakeSelf) { heal(f); remove(f) }, outcome: OutcomeKilled, resumed: "was removed"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := fakeapi.New(t)
			k := newTestKiller(t, srv, "", false)
			clock := tick0
			k.now = func() time.Time { return clock }
			self := newFakeSelf()
			k.pause = policy.NewPauseSwitch(self, "chaos", "macaque", func() time.Time { return clock }, discardLogger())
			for i, tick := range tt.ticks {
				srv.Add(fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil)) // always one to kill
				if tick.do != nil {
					tick.do(self)
				}
				lists := len(srv.Requests())
				reports := killWithin(testkit.Ctx(t), t, k, clock)
				if len(reports) != 1 {
					t.Fatalf("tick %d: %d reports, want 1", i+1, len(reports))
				}
				r := reports[0]
				desc := fmt.Sprintf("tick %d: outcome %q, quiet %v, note %q, resumed %q, err %v", i+1, r.Outcome, r.Quiet, r.Note, r.Resumed, r.Err)
				if r.Outcome != tick.outcome || r.Quiet != tick.quiet {
					t.Fatalf("%s; want outcome %q, quiet %v", desc, tick.outcome, tick.quiet)
				}
				if !strings.Contains(r.Note, tick.note) || (tick.outcome != OutcomePaused && r.Note != "") {
					t.Errorf("%s; want a note saying %q", desc, tick.note)
				}
				if (tick.resumed == "") != (r.Resumed == "") || !strings.Contains(r.Resumed, tick.resumed) {
					t.Errorf("%s; want resumed saying %q", desc, tick.resumed)
				}
				if (tick.err == "") != (r.Err == nil) || (r.Err != nil && !strings.Contains(r.Err.Error(), tick.err)) {
					t.Errorf("%s; want err saying %q", desc, tick.err)
				}
				if sent := len(srv.Requests()) - lists; tick.outcome != OutcomeKilled && sent != 0 {
					t.Errorf("%s; %d requests for pods, want none: a paused or unreadable tick lists nothing", desc, sent)
				}
				clock = clock.Add(time.Minute)
			}
		})
	}
}

// TestSlackHearsOfAPauseTwice runs ticks through the killer and the notifier across a pause of
// many ticks: Slack gets the first paused report and the first report after it, and the kills
// around them, nothing else.
func TestSlackHearsOfAPauseTwice(t *testing.T) {
	srv := fakeapi.New(t)
	k := newTestKiller(t, srv, "", false)
	self := newFakeSelf()
	k.pause = policy.NewPauseSwitch(self, "chaos", "macaque", k.now, discardLogger())
	stub := newSlackStub(t)
	n := newTestNotifier(stub, &testkit.Instant{})
	results := make(chan []Result, 20)
	for i := range 10 {
		srv.Add(fakeapi.Pod(testNS, fmt.Sprintf("web-%d", i), nil))
		if i == 1 {
			self.annotate("true", false)
		}
		if i == 8 {
			self.annotate("", true)
		}
		results <- k.tick(testkit.Ctx(t), tick0, nil)
	}
	close(results)
	done := make(chan struct{})
	go func() { n.run(t.Context(), results, time.Second); close(done) }()
	testkit.Recv(t, done, "the notifier to post the reports")
	var firsts []string
	for _, p := range stub.Posts() {
		firsts = append(firsts, p["text"])
	}
	paused, resumed, kills := 0, 0, 0
	for _, text := range firsts {
		if strings.HasPrefix(text, ":double_vertical_bar: paused: macaque's pause switch is on, nothing is killed in namespace `shop`.") {
			paused++
			if !strings.Contains(text, "\nNote: paused until the annotation chaos.macaque.dev/paused is removed") {
				t.Errorf("paused post %q does not say until when", text)
			}
		}
		if strings.Contains(text, "\nResumed: the pause is over") {
			resumed++
		}
		if strings.HasPrefix(text, ":monkey_face: killed") {
			kills++
		}
	}
	if paused != 1 || resumed != 1 || kills != 3 || len(firsts) != 4 {
		t.Errorf("posts: %d paused, %d resumed, %d kills, %d in all; want 1, 1 (on a kill), 3, 4:\n%s", paused, resumed, kills, len(firsts), strings.Join(firsts, "\n---\n"))
	}
	if deleted := len(srv.Deletes()); deleted != 3 {
		t.Errorf("%d deletes, want 3: one per unpaused tick", deleted)
	}
}

// TestPauseWarnsOnceOfAValueNotUnderstood: a value macaque does not understand pauses it and
// is warned of when the pause starts, not at every tick; a value understood is not warned of.
func TestPauseWarnsOnceOfAValueNotUnderstood(t *testing.T) {
	var logs strings.Builder
	self := newFakeSelf()
	p := policy.NewPauseSwitch(self, "chaos", "macaque", func() time.Time { return tick0 }, slog.New(slog.NewJSONHandler(&logs, nil)))
	const warning = `"msg":"the pause switch holds a value macaque does not understand: paused to be safe"`
	for i, step := range []struct {
		value    string
		warnings int // in all, after this tick
	}{{"true", 0}, {"true", 0}, {"yes", 1}, {"yes", 1}, {"2026-03-30T00:00:00Z", 1}, {"maybe", 2}} {
		self.annotate(step.value, false)
		if _, err := p.Check(testkit.Ctx(t)); err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(logs.String(), warning); got != step.warnings {
			t.Fatalf("tick %d (%q): %d warnings, want %d; log %s", i+1, step.value, got, step.warnings, logs.String())
		}
	}
}

// TestOwnNamespace: POD_NAMESPACE first, then the mounted service account's namespace file,
// else none (out of a pod); never the kubeconfig's.
func TestOwnNamespace(t *testing.T) {
	file := filepath.Join(t.TempDir(), "namespace")
	if err := os.WriteFile(file, []byte("chaos\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POD_NAMESPACE", "from-env")
	if got := ownNamespace(file); got != "from-env" {
		t.Errorf("with POD_NAMESPACE: %q, want from-env", got)
	}
	t.Setenv("POD_NAMESPACE", "")
	if got := ownNamespace(file); got != "chaos" {
		t.Errorf("from the mounted file: %q, want chaos", got)
	}
	if got := ownNamespace(filepath.Join(t.TempDir(), "absent")); got != "" {
		t.Errorf("out of a pod: %q, want none", got)
	}
}
