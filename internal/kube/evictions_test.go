package kube

import (
	"errors"
	"testing"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPDBCause(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "needs and has", err: statusErr(fakeapi.PDBRefusal("web-pdb", 3, 3)), want: "PodDisruptionBudget web-pdb (needs 3 healthy, has 3)"},
		{name: "still being processed", err: statusErr(pdbStatus(429, "The disruption budget web-pdb is still being processed by the server.")),
			want: "PodDisruptionBudget web-pdb (is still being processed by the server)"},
		{name: "an unknown wording is kept whole", err: statusErr(pdbStatus(429, "budget says no")), want: "a PodDisruptionBudget (budget says no)"},
		{name: "a 429 without the cause", err: statusErr(&metav1.Status{Code: 429, Details: &metav1.StatusDetails{}}), want: ""},
		{name: "a 429 without details", err: statusErr(&metav1.Status{Code: 429}), want: ""},
		{name: "the cause on a 500 is not a PDB's refusal", err: statusErr(pdbStatus(500, "The disruption budget web-pdb needs 1 healthy pods and has 1 currently")), want: ""},
		{name: "not a Status", err: errors.New("connection reset"), want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PDBCause(tt.err); got != tt.want {
				t.Errorf("pdbCause = %q, want %q", got, tt.want)
			}
		})
	}
}

func pdbStatus(code int32, msg string) *metav1.Status {
	return &metav1.Status{Code: code, Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "DisruptionBudget", Message: msg}}}}
}

func statusErr(st *metav1.Status) error { return &apiStatusError{*st} }

// apiStatusError is an error carrying a Status, as client-go's StatusError does.
type apiStatusError struct{ st metav1.Status }

func (e *apiStatusError) Error() string { return e.st.Message }

func (e *apiStatusError) Status() metav1.Status { return e.st }
