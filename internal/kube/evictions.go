package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// PDBCause reads the PodDisruptionBudget that refused an eviction from the API server's error:
// a Status whose details carry a cause of type DisruptionBudget (a 429, or a 403 when the
// budget is in a state that allows no eviction at all). It returns "" for any other error,
// among them a 429 from API priority and fairness, which carries no such cause.
func PDBCause(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return ""
	}
	st := status.Status()
	if (st.Code != http.StatusTooManyRequests && st.Code != http.StatusForbidden) || st.Details == nil {
		return ""
	}
	for _, c := range st.Details.Causes {
		if c.Type == disruptionBudgetCause {
			return describePDB(c.Message)
		}
	}
	return ""
}

// morePDBsMessage is how the API server words its refusal to evict a pod that more than one
// PodDisruptionBudget covers: a 500, sent before it touches the pod (the eviction subresource
// does not choose between budgets).
const morePDBsMessage = "more than one PodDisruptionBudget"

// CoveredTwice says whether err is that refusal. It is a 500, which would otherwise read as an
// answer that may have been lost after the pod was evicted.
func CoveredTwice(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	st := status.Status()
	return st.Code == http.StatusInternalServerError && strings.Contains(st.Message, morePDBsMessage)
}

// PDB is the part of a PodDisruptionBudget that says which pods it covers.
type PDB struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Selector *metav1.LabelSelector `json:"selector"`
	} `json:"spec"`
}

// Covering names the PodDisruptionBudgets among pdbs whose selector matches lbls, as the
// eviction API matches them: a null selector matches nothing, an empty one every pod.
func Covering(pdbs []PDB, lbls map[string]string) []string {
	var names []string
	for _, b := range pdbs {
		if b.Spec.Selector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(lbls)) {
			continue
		}
		names = append(names, b.Metadata.Name)
	}
	return names
}

// ListPDBs reads the PodDisruptionBudgets of namespace.
func (p *Client) ListPDBs(ctx context.Context, namespace string) ([]PDB, error) {
	res := p.client.Get().AbsPath("/apis/policy/v1", "namespaces", namespace, "poddisruptionbudgets").Do(ctx)
	body, err := res.Raw()
	if err != nil {
		return nil, fmt.Errorf("list PodDisruptionBudgets in %q: %w", namespace, res.Error())
	}
	var list struct {
		Items []PDB `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode PodDisruptionBudgets in %q: %w", namespace, err)
	}
	return list.Items, nil
}

// disruptionBudgetCause is the cause type of an eviction a PodDisruptionBudget refused
// (policy/v1's DisruptionBudgetCause, not imported for one constant).
const disruptionBudgetCause metav1.CauseType = "DisruptionBudget"

// pdbMessage matches the API server's words for a PDB refusing an eviction: "The disruption
// budget web-pdb needs 3 healthy pods and has 3 currently", or "... web-pdb <why>".
var (
	pdbMessage = regexp.MustCompile(`^The disruption budget (\S+) (.*?)\.?$`)
	pdbHealthy = regexp.MustCompile(`^needs (\d+) healthy pods and has (\d+) currently$`)
)

// describePDB turns the API server's message into "PodDisruptionBudget web-pdb (needs 3
// healthy, has 3)"; a message it does not know is kept whole.
func describePDB(msg string) string {
	m := pdbMessage.FindStringSubmatch(msg)
	if m == nil {
		return fmt.Sprintf("a PodDisruptionBudget (%s)", msg)
	}
	why := m[2]
	if h := pdbHealthy.FindStringSubmatch(why); h != nil {
		why = fmt.Sprintf("needs %s healthy, has %s", h[1], h[2])
	}
	return fmt.Sprintf("PodDisruptionBudget %s (%s)", m[1], why)
}

// eviction is the body of a POST to a pod's eviction subresource (policy/v1 Eviction).
type eviction struct {
	APIVersion    string                `json:"apiVersion"`
	Kind          string                `json:"kind"`
	Metadata      metav1.ObjectMeta     `json:"metadata"`
	DeleteOptions *metav1.DeleteOptions `json:"deleteOptions,omitempty"`
}

// evictionBody encodes the eviction of namespace/name with pre and grace.
func evictionBody(namespace, name string, pre *metav1.Preconditions, grace *int64) ([]byte, error) {
	body, err := json.Marshal(eviction{APIVersion: "policy/v1", Kind: "Eviction",
		Metadata:      metav1.ObjectMeta{Name: name, Namespace: namespace},
		DeleteOptions: &metav1.DeleteOptions{Preconditions: pre, GracePeriodSeconds: grace}})
	if err != nil {
		return nil, fmt.Errorf("encode eviction: %w", err)
	}
	return body, nil
}

// Evict evicts the pod through the Eviction API, with the same preconditions as Delete.
func (p *Client) Evict(ctx context.Context, namespace, name string, v Pod, grace *int64) error {
	body, err := evictionBody(namespace, name, preconditions(v), grace)
	if err != nil {
		return err
	}
	// Never resent, as a DELETE is not: a second eviction of a pod the first one evicted answers
	// 404, which would read as "gone before we could evict it".
	return p.client.Post().Namespace(namespace).Resource("pods").Name(name).SubResource("eviction").Body(body).MaxRetries(0).Do(ctx).Error()
}

// ProbeEvict asks, with a dry-run eviction of a pod that cannot exist, whether macaque may evict pods in namespace.
func (p *Client) ProbeEvict(ctx context.Context, namespace string) error {
	body, err := evictionBody(namespace, PreflightPod, nil, nil)
	if err != nil {
		return err
	}
	err = p.client.Post().Namespace(namespace).Resource("pods").Name(PreflightPod).SubResource("eviction").Param("dryRun", "All").Body(body).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a dry-run eviction of pod %q succeeded, which no API server should allow", PreflightPod)
	}
	return err
}
