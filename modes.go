package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
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

// victims is how many pods a tick asks for among that many candidates: a percentage rounds
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

// terminator is one way to kill a pod, chosen once in run from MACAQUE_MODE: a DELETE, which
// PodDisruptionBudgets do not stop, or an eviction, which they may refuse.
type terminator interface {
	// mode names the way, as reports and Events do.
	mode() killMode
	// terminate kills v, the pod named name, only if it still has v's UID and resourceVersion,
	// with grace seconds to terminate (nil: its own). It returns the kill's resourceVersion
	// when the answer carries one.
	terminate(ctx context.Context, name string, v kube.Pod, grace *int64) (rv string, err error)
	// refusal is errBlocked naming the PodDisruptionBudgets that refused the kill of v with
	// err, or nil when err is no such refusal; it may read them within ctx.
	refusal(ctx context.Context, err error, v kube.Pod) error
	// probe asks the API server, killing nothing, whether macaque may kill this way in
	// namespace; when it may not, it names the setting to fix.
	probe(ctx context.Context, namespace string) error
	// permission is what killing this way needs in every namespace (MACAQUE_NAMESPACE=*).
	permission() kube.Permission
}

// terminatorFor is mode's terminator, over api.
func terminatorFor(mode killMode, api podAPI) terminator {
	if mode == modeEvict {
		return evicter{api: api}
	}
	return deleter{api: api}
}

// deleter kills with a DELETE, the original mode.
type deleter struct{ api podAPI }

func (deleter) mode() killMode { return modeDelete }

func (d deleter) terminate(ctx context.Context, name string, v kube.Pod, grace *int64) (string, error) {
	return d.api.Delete(ctx, v.Namespace, name, v, grace)
}

// refusal is always nil: no PodDisruptionBudget stands in a DELETE's way.
func (deleter) refusal(context.Context, error, kube.Pod) error { return nil }

func (d deleter) probe(ctx context.Context, namespace string) error {
	err := d.api.ProbeDelete(ctx, namespace)
	if kube.IsRBACDenial(err) {
		return badSetting("NAMESPACE", "cannot delete pods in %q (macaque's Role must grant list and delete on pods there, as macaque.yml's does for MACAQUE_MODE=delete, the default): %v", namespace, err)
	}
	if err != nil {
		return fmt.Errorf("check that macaque may delete pods in %q: %w", namespace, err)
	}
	return nil
}

func (deleter) permission() kube.Permission { return kube.Permission{Verb: "delete", Resource: "pods"} }

// evicter kills through the Eviction API, which refuses what a PodDisruptionBudget forbids.
type evicter struct{ api podAPI }

func (evicter) mode() killMode { return modeEvict }

func (e evicter) terminate(ctx context.Context, name string, v kube.Pod, grace *int64) (string, error) {
	// The answer is a Status, with no resourceVersion: the read-back's stands in for the kill's.
	return "", e.api.Evict(ctx, v.Namespace, name, v, grace)
}

func (e evicter) refusal(ctx context.Context, err error, v kube.Pod) error {
	if pdb := kube.PDBCause(err); pdb != "" {
		// The eviction handler checks the budget before it touches the pod: nothing was done.
		return fmt.Errorf("%w %s", errBlocked, pdb)
	}
	if !kube.CoveredTwice(err) {
		return nil
	}
	// Refused before the pod was touched, though it is a 500: nothing to read back.
	pdbs, listErr := e.api.ListPDBs(ctx, v.Namespace)
	return fmt.Errorf("%w %s", errBlocked, describeCoveredTwice(kube.Covering(pdbs, v.Labels), listErr))
}

func (e evicter) probe(ctx context.Context, namespace string) error {
	err := e.api.ProbeEvict(ctx, namespace)
	if kube.IsRBACDenial(err) {
		return badSetting("MODE", "evict: cannot evict pods in %q (macaque's Role must grant create on pods/eviction there: uncomment that rule in macaque.yml's Role, or set MACAQUE_MODE=delete): %v", namespace, err)
	}
	if err != nil {
		return fmt.Errorf("check that macaque may evict pods in %q: %w", namespace, err)
	}
	return nil
}

func (evicter) permission() kube.Permission {
	return kube.Permission{Verb: "create", Resource: "pods", Subresource: "eviction"}
}

// request is the API request mode makes, as a report names a pick it passed over: "delete" or
// "eviction".
func (m killMode) request() string {
	if m == modeEvict {
		return "eviction"
	}
	return "delete"
}

// requestName is the request as a note on an unanswered kill names it: "DELETE" or "eviction".
func (m killMode) requestName() string {
	if m == modeEvict {
		return "eviction"
	}
	return "DELETE"
}

// verb is what an error says mode tried: "delete" or "evict".
func (m killMode) verb() string {
	if m == modeEvict {
		return "evict"
	}
	return "delete"
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
