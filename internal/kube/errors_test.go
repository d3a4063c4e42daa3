package kube

import (
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	"github.com/macaque-chaos/macaque/internal/testkit"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestIsRBACDenial: only RBAC's own 403 is blamed on macaque's Role, not a webhook's or a
// policy's, nor another answer quoting its words.
func TestIsRBACDenial(t *testing.T) {
	rbac := *fakeapi.Forbidden("delete", testNamespace)
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"RBAC's Forbidden", statusErr(&rbac), true},
		{"a webhook's Forbidden", statusErr(&metav1.Status{Code: http.StatusForbidden, Reason: metav1.StatusReasonForbidden,
			Message: `admission webhook "deny.example.com" denied the request`}), false},
		{"a 500 quoting RBAC's words", statusErr(&metav1.Status{Code: http.StatusInternalServerError, Reason: metav1.StatusReasonInternalError,
			Message: rbac.Message}), false},
		{"not a Status", errors.New(rbac.Message), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsRBACDenial(tt.err); got != tt.want {
				t.Errorf("IsRBACDenial = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCoveredTwice: the eviction API's 500 for a pod two PDBs cover, and nothing else.
func TestCoveredTwice(t *testing.T) {
	msg := "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"the 500", statusErr(&metav1.Status{Code: http.StatusInternalServerError, Message: msg}), true},
		{"another 500", statusErr(&metav1.Status{Code: http.StatusInternalServerError, Message: "etcdserver: leader changed"}), false},
		{"its words on a 429", statusErr(&metav1.Status{Code: http.StatusTooManyRequests, Message: msg}), false},
		{"not a Status", errors.New(msg), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := CoveredTwice(tt.err); got != tt.want {
				t.Errorf("CoveredTwice = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCovering: the PDBs whose selector matches the pod's labels, as the eviction API matches
// them: a null selector matches nothing, an empty one everything, a bad one nothing.
func TestCovering(t *testing.T) {
	pdb := func(name string, sel *metav1.LabelSelector) PDB {
		var b PDB
		b.Metadata.Name, b.Spec.Selector = name, sel
		return b
	}
	pdbs := []PDB{
		pdb("null", nil),
		pdb("empty", &metav1.LabelSelector{}),
		pdb("web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}),
		pdb("db", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}}),
		pdb("bad", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near", Values: []string{"web"}}}}),
		// After those that do not match: each is asked in turn, whatever came before.
		pdb("web-too", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In", Values: []string{"web"}}}}),
	}
	if got, want := Covering(pdbs, map[string]string{"app": "web"}), []string{"empty", "web", "web-too"}; !slices.Equal(got, want) {
		t.Errorf("Covering = %v, want %v", got, want)
	}
}

// TestProbeEvictSaysWhatRefusesIt: the dry-run eviction of a pod that cannot exist is allowed
// when it finds no such pod (404), refused with RBAC's answer under a Role without it.
func TestProbeEvictSaysWhatRefusesIt(t *testing.T) {
	srv := fakeapi.New(t)
	c := newClient(t, srv)
	srv.Fail = func(fakeapi.Request) *metav1.Status {
		return &metav1.Status{Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound, Message: `pods "` + PreflightPod + `" not found`}
	}
	if err := c.ProbeEvict(testkit.Ctx(t), testNamespace); err != nil {
		t.Errorf("ProbeEvict answered 404 = %v, want nil: allowed", err)
	}
	srv.Fail = func(fakeapi.Request) *metav1.Status { return fakeapi.Forbidden("create", testNamespace) }
	if err := c.ProbeEvict(testkit.Ctx(t), testNamespace); !IsRBACDenial(err) {
		t.Errorf("ProbeEvict under a Role without it = %v, want RBAC's denial", err)
	}
}

// TestPodReadyIsItsReadyCondition: a pod read back is Ready by its Ready condition alone,
// whatever its other conditions say.
func TestPodReadyIsItsReadyCondition(t *testing.T) {
	for _, tt := range []struct {
		name  string
		conds []corev1.PodCondition
		want  bool
	}{
		{"scheduled, not Ready", []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse}}, false},
		{"Ready after another", []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}, true},
		{"no Ready condition", []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeapi.Pod(testNamespace, "web-1", nil)
			p.Status.Conditions = tt.conds
			got, err := newClient(t, fakeapi.New(t, p)).Lookup(testkit.Ctx(t), testNamespace, "web-1", "")
			if err != nil {
				t.Fatal(err)
			}
			if got.Ready != tt.want {
				t.Errorf("Ready = %v, want %v", got.Ready, tt.want)
			}
		})
	}
}
