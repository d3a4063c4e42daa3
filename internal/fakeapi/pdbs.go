package fakeapi

import (
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// AddPDB stores a PodDisruptionBudget. fakeapi does not count its budget (tests answer a refusal
// with PDBRefusal); it serves it to lists and, like kube-apiserver, refuses with a 500 the
// eviction of a pod that more than one stored budget covers.
func (s *Server) AddPDB(b *policyv1.PodDisruptionBudget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pdbs = append(s.pdbs, b)
}

// CoveredTwice is kube-apiserver's answer to the eviction of a pod several budgets cover.
func CoveredTwice() *metav1.Status {
	return InternalError("This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
}

// coveredTwice is CoveredTwice when more than one budget of p's namespace selects p; s.mu must
// be held. A null selector selects nothing, an empty one every pod, as in policy/v1.
func (s *Server) coveredTwice(p *corev1.Pod) *metav1.Status {
	n := 0
	for _, b := range s.pdbs {
		if b.Namespace != p.Namespace || b.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err == nil && sel.Matches(labels.Set(p.Labels)) {
			n++
		}
	}
	if n > 1 {
		return CoveredTwice()
	}
	return nil
}

// listPDBs answers a list of the budgets of the namespace in path
// (/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets).
func (s *Server) listPDBs(w http.ResponseWriter, path string) {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	ns := parts[len(parts)-2]
	s.mu.Lock()
	defer s.mu.Unlock()
	list := policyv1.PodDisruptionBudgetList{TypeMeta: metav1.TypeMeta{Kind: "PodDisruptionBudgetList", APIVersion: "policy/v1"}}
	for _, b := range s.pdbs {
		if b.Namespace == ns {
			list.Items = append(list.Items, *b)
		}
	}
	writeJSON(w, http.StatusOK, &list)
}
