package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Kill modes: how a victim is killed (delete or evict), with what grace period, and how many
// victims a tick takes.

// killMode is how a victim is killed. The zero value is delete, the original behaviour.
type killMode string

// The kill modes MACAQUE_MODE takes.
const (
	modeDelete killMode = "delete" // DELETE the pod: PodDisruptionBudgets are not consulted
	modeEvict  killMode = "evict"  // POST an Eviction: the API server refuses it if a PDB would be violated
)

// parseMode reads MACAQUE_MODE.
func parseMode(s string) (killMode, error) {
	if s == "" || s == string(modeDelete) {
		return modeDelete, nil
	}
	if s == string(modeEvict) {
		return modeEvict, nil
	}
	return "", fmt.Errorf("unknown mode %q (want delete or evict)", s)
}

// parseGracePeriod reads MACAQUE_GRACE_PERIOD: empty for the pod's own grace period, whole
// seconds as a number ("30") or a Go duration ("30s", "1m"). A fraction of a second cannot be
// sent (gracePeriodSeconds is an integer) and would be rounded without a word, so it is refused.
func parseGracePeriod(s string) (*int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return nil, fmt.Errorf("%q is negative: want 0 (a hard kill) or more seconds", s)
		}
		return &n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not whole seconds (30) nor a duration (30s, 1m)", s)
	}
	if d < 0 {
		return nil, fmt.Errorf("%q is negative: want 0 (a hard kill) or more seconds", s)
	}
	if d%time.Second != 0 {
		return nil, fmt.Errorf("%q is not a whole number of seconds, which is all the API server takes", s)
	}
	n := int64(d / time.Second)
	return &n, nil
}

// maxVictims is the most pods one tick may kill: it bounds the names a tick holds and the API
// calls it makes, and a larger number is more likely a typo than a plan.
const maxVictims = 100

// maxPicks bounds the names the pick keeps, whatever the count: picksPerTick tries per victim
// up to twice maxVictims, so a tick makes at most 3*maxPicks small requests (a read-back and two
// workload gets per try) plus its list and its kills.
const maxPicks = 2 * maxVictims

// killCount is how many victims a tick asks for: a number, or a percentage of the candidates.
// The zero value asks for one.
type killCount struct {
	n       int // victims, when percent is 0
	percent int // 1-100: that share of the candidates, at least one
}

// parseKillCount reads MACAQUE_KILL_COUNT: "3" or "10%".
func parseKillCount(s string) (killCount, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return killCount{n: 1}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 100 {
			return killCount{}, fmt.Errorf("%q: want a whole percentage from 1%% to 100%%", s)
		}
		return killCount{percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return killCount{}, fmt.Errorf("%q: want a number of victims (3) or a percentage of the candidates (10%%)", s)
	}
	if n < 1 || n > maxVictims {
		return killCount{}, fmt.Errorf("%q: want 1 to %d victims a tick", s, maxVictims)
	}
	return killCount{n: n}, nil
}

// String is the count as MACAQUE_KILL_COUNT spells it.
func (c killCount) String() string {
	if c.percent > 0 {
		return strconv.Itoa(c.percent) + "%"
	}
	return strconv.Itoa(max(c.n, 1))
}

// victims is how many pods a tick with candidates candidates asks for: a percentage rounds
// down, but to at least one, and is capped at maxVictims (capped says so).
func (c killCount) victims(candidates int) (want int, capped bool) {
	if c.percent == 0 {
		return max(c.n, 1), false
	}
	want = max(candidates*c.percent/100, 1)
	if want > maxVictims {
		return maxVictims, true
	}
	return want, false
}

// reservoir is how many names the pick keeps before it knows the number of candidates:
// picksPerTick tries per victim, up to maxPicks. A percentage keeps maxPicks, and the tick then
// takes as many of them as its count needs: a prefix of a uniformly shuffled sample is itself
// a uniform sample.
func (c killCount) reservoir() int {
	if c.percent > 0 {
		return maxPicks
	}
	return min(max(c.n, 1)*picksPerTick, maxPicks)
}

// tries is how many of the picks a tick asking for want victims may try.
func tries(want int) int { return min(want*picksPerTick, maxPicks) }

// errBlocked marks an eviction the API server refused because a PodDisruptionBudget protects
// the pod: not a failure, the PDB did its job. It is always wrapped with the PDB it names.
var errBlocked = errors.New("eviction blocked by")

// pdbCause reads the PodDisruptionBudget that refused an eviction from the API server's error:
// a Status whose details carry a cause of type DisruptionBudget (a 429, or a 403 when the
// budget is in a state that allows no eviction at all). It returns "" for any other error,
// among them a 429 from API priority and fairness, which carries no such cause.
func pdbCause(err error) string {
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

// coveredTwice says whether err is that refusal. It is a 500, which would otherwise read as an
// answer that may have been lost after the pod was evicted.
func coveredTwice(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	st := status.Status()
	return st.Code == http.StatusInternalServerError && strings.Contains(st.Message, morePDBsMessage)
}

// pdb is the part of a PodDisruptionBudget that says which pods it covers.
type pdb struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		Selector *metav1.LabelSelector `json:"selector"`
	} `json:"spec"`
}

// covering names the PodDisruptionBudgets among pdbs whose selector matches lbls, as the
// eviction API matches them: a null selector matches nothing, an empty one every pod.
func covering(pdbs []pdb, lbls map[string]string) []string {
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

// describeCoveredTwice is what a report says of a pick the eviction API refused because several
// budgets cover it, naming them when they could be read.
func describeCoveredTwice(names []string, listErr error) string {
	const why = "more than one covers the pod, and the eviction API refuses to choose"
	if listErr != nil || len(names) < 2 {
		return fmt.Sprintf("more than one PodDisruptionBudget (%s; they could not be named: %s)", why, unnamed(names, listErr))
	}
	return fmt.Sprintf("PodDisruptionBudgets %s (%s)", strings.Join(names, " and "), why)
}

// unnamed says why the budgets of a pod refused twice could not be named.
func unnamed(names []string, listErr error) string {
	if listErr != nil {
		return listErr.Error()
	}
	return fmt.Sprintf("%d found in the namespace match its labels now", len(names))
}

func (p *restPods) listPDBs(ctx context.Context, namespace string) ([]pdb, error) {
	res := p.client.Get().AbsPath("/apis/policy/v1", "namespaces", namespace, "poddisruptionbudgets").Do(ctx)
	body, err := res.Raw()
	if err != nil {
		return nil, fmt.Errorf("list PodDisruptionBudgets in %q: %w", namespace, res.Error())
	}
	var list struct {
		Items []pdb `json:"items"`
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

func (p *restPods) evict(ctx context.Context, namespace, name string, v victim, grace *int64) error {
	body, err := evictionBody(namespace, name, preconditions(v), grace)
	if err != nil {
		return err
	}
	// Never resent, as a DELETE is not: a second eviction of a pod the first one evicted answers
	// 404, which would read as "gone before we could evict it".
	return p.client.Post().Namespace(namespace).Resource("pods").Name(name).SubResource("eviction").Body(body).MaxRetries(0).Do(ctx).Error()
}

func (p *restPods) probeEvict(ctx context.Context, namespace string) error {
	body, err := evictionBody(namespace, preflightPod, nil, nil)
	if err != nil {
		return err
	}
	err = p.client.Post().Namespace(namespace).Resource("pods").Name(preflightPod).SubResource("eviction").Param("dryRun", "All").Body(body).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a dry-run eviction of pod %q succeeded, which no API server should allow", preflightPod)
	}
	return err
}

// graceNote is what a report says when MACAQUE_GRACE_PERIOD overrides the victim's own.
func graceNote(grace *int64) string {
	if grace == nil {
		return ""
	}
	if *grace == 0 {
		return "grace period 0s (MACAQUE_GRACE_PERIOD): a hard kill"
	}
	return fmt.Sprintf("grace period %ds (MACAQUE_GRACE_PERIOD), not the pod's own", *grace)
}

// pastTense is what a report says mode did to a victim: "deleted" or "evicted".
func (m killMode) pastTense() string {
	if m == modeEvict {
		return "evicted"
	}
	return "deleted"
}

// graceSetting is MACAQUE_GRACE_PERIOD as the start-up line logs it.
func graceSetting(grace *int64) string {
	if grace == nil {
		return "the pod's own"
	}
	return fmt.Sprintf("%ds", *grace)
}
