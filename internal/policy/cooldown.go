package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/kube"
	"github.com/macaque-chaos/macaque/internal/text"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The cooldown (MACAQUE_COOLDOWN): a workload that lost a pod is not hit again before the
// period has passed. When each workload was last hit is kept in a ConfigMap that macaque.yml
// creates in macaque's own namespace, so that a restart of macaque, a rollout of it or a
// reschedule to another node does not forget it; macaque may only get and update that one
// ConfigMap (resourceNames in the Role).

// CooldownAnnotation on a workload (its top controller: the Deployment above a ReplicaSet, a
// StatefulSet...) is a Go duration of whole seconds that overrides MACAQUE_COOLDOWN for it,
// longer or shorter, and also with MACAQUE_COOLDOWN=0; "0" is no cooldown for it. A value
// that does not parse passes its pods over, naming it.
const CooldownAnnotation = "chaos.macaque.dev/cooldown"

// CooldownConfigMap is the ConfigMap macaque keeps its cooldown state in.
const CooldownConfigMap = "macaque-cooldown"

// CooldownTimeout bounds the write of a tick's hits, after its kills.
const CooldownTimeout = 3 * time.Second

// maxCooldownEntries bounds the state: a ConfigMap holds at most 1 MiB, and an entry is under
// 300 bytes (a namespace, a kind and a name, and a time). Entries past their period are
// dropped at each write; when more are live than this, the oldest go first.
const maxCooldownEntries = 2000

// StateAPI reads and writes the one ConfigMap of macaque's state.
type StateAPI interface {
	GetConfigMap(ctx context.Context, namespace, name string) (kube.ConfigMap, error)
	// UpdateConfigMap replaces cm if its resourceVersion is still current (409 otherwise).
	UpdateConfigMap(ctx context.Context, cm kube.ConfigMap) (kube.ConfigMap, error)
	// ProbeUpdateConfigMap asks, with a server-side dry run, whether cm may be updated.
	ProbeUpdateConfigMap(ctx context.Context, cm kube.ConfigMap) error
}

// run hands it the one API client; this keeps the two in step.
var _ StateAPI = (*kube.Client)(nil)

// Cooldown decides, from the state in its ConfigMap, whether a workload may be hit now, and
// records the hits. A nil *Cooldown lets every workload be hit.
type Cooldown struct {
	api       StateAPI
	namespace string // macaque's own, where the ConfigMap is
	period    time.Duration
	noState   error // why no state can be kept, nil when it can
}

// hits is the cooldown state as read at the start of a tick: when each workload was last hit,
// by cooldownKey.
type hits map[string]entry

// entry is one workload's in the state: when it was last hit, and the period its annotation
// gave it then (0: MACAQUE_COOLDOWN's), which only says how long the entry is kept; whether
// the workload may be hit again is judged by the period of its annotation at that time.
type entry struct {
	at     time.Time
	period time.Duration
}

// String is how the state stores an entry: its time, and the period of its own after a space
// ("2026-03-29T09:00:00Z 2h0m0s"). A version of macaque that reads the time alone drops such an
// entry, as it drops any it cannot read: it never reads a period for a time.
func (e entry) String() string {
	at := e.at.UTC().Format(time.RFC3339)
	if e.period == 0 {
		return at
	}
	return at + " " + e.period.String()
}

// parseEntry reads an entry as String writes it.
func parseEntry(v string) (entry, bool) {
	at, period, _ := strings.Cut(v, " ")
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return entry{}, false
	}
	e := entry{at: t}
	if period != "" {
		if e.period, err = time.ParseDuration(period); err != nil || e.period < 0 {
			return entry{}, false
		}
	}
	return e, true
}

// Hit is a kill to record: the workload's key (CooldownKey) and the period that applies to it,
// MACAQUE_COOLDOWN's or its annotation's.
type Hit struct {
	Key    string
	Period time.Duration
}

// NewCooldown is the cooldown of period, kept in the ConfigMap macaque-cooldown of namespace.
func NewCooldown(api StateAPI, namespace string, period time.Duration) *Cooldown {
	return &Cooldown{api: api, namespace: namespace, period: period}
}

// NoCooldownState is MACAQUE_COOLDOWN=0 where no state can be kept (macaque's own namespace is
// unknown, why says so): a workload annotated with a period of its own is passed over, since
// its cooldown could not hold.
func NoCooldownState(why error) *Cooldown {
	return &Cooldown{noState: why}
}

// CooldownKey names a workload in the state: "namespace.Kind.name" (a namespace and a kind have
// no dots, so the key reads back unambiguously), as long as that is a valid ConfigMap key. A
// workload's name may be 253 characters, past what a key may hold with the rest, and a single
// invalid key makes the API server refuse the whole write, every workload's cooldown with it: so
// a key that would be invalid is cut to fit, its characters no key holds replaced, and ends in a
// hash of the whole, the same for the same workload, never another's.
func CooldownKey(namespace string, top kube.OwnerRef) string {
	key := namespace + "." + top.Kind + "." + top.Name
	if len(validation.IsConfigMapKey(key)) == 0 {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	suffix := "." + hex.EncodeToString(sum[:cooldownHashBytes])
	prefix := []byte(key[:min(len(key), validation.DNS1123SubdomainMaxLength-len(suffix))])
	for i, c := range prefix {
		if !isConfigMapKeyByte(c) || (i == 0 && c == '.') { // "..": a key may not start so
			prefix[i] = '_'
		}
	}
	return string(prefix) + suffix
}

// cooldownHashBytes is how much of a SHA-256 a cut key ends in: 64 bits, 16 hex digits, make a
// collision between the workloads of one cluster too unlikely to matter.
const cooldownHashBytes = 8

// isConfigMapKeyByte says whether c may be in a ConfigMap key: [-._a-zA-Z0-9].
func isConfigMapKeyByte(c byte) bool {
	return c == '-' || c == '.' || c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// ForTick is the cooldown's rule for one tick; nil for a nil *Cooldown. With MACAQUE_COOLDOWN
// set it reads the state first, and a tick whose state cannot be read kills nothing: a
// cooldown that might not hold is no cooldown. With MACAQUE_COOLDOWN=0 only workloads
// annotated with a period of their own need the state: the rule reads it the first time it
// meets one, so that a tick of workloads without costs no read.
func (c *Cooldown) ForTick(ctx context.Context, now func() time.Time) (Rule, error) {
	if c == nil {
		return nil, nil
	}
	rule := &coolingDown{c: c, now: now}
	if c.period == 0 {
		return rule, nil
	}
	if err := rule.load(ctx); err != nil {
		return nil, rule.loadErr
	}
	return rule, nil
}

// load reads the state.
func (c *Cooldown) load(ctx context.Context) (hits, error) {
	if c.noState != nil {
		return nil, fmt.Errorf("read the cooldown state: %w", c.noState)
	}
	cm, err := c.api.GetConfigMap(ctx, c.namespace, CooldownConfigMap)
	if err != nil {
		return nil, fmt.Errorf("read the cooldown state (ConfigMap %s/%s): %w", c.namespace, CooldownConfigMap, err)
	}
	return parseHits(cm.Data), nil
}

// periodOf is the cooldown period of top, whose annotations are annotations (nil: unknown, as
// for an owner of a kind macaque cannot read), and how a report names where it comes from.
// A value of the annotation that does not parse is a reason to pass the pick over (bad): it
// was written to limit chaos, so a typo must not let it be hit more often than meant.
func (c *Cooldown) periodOf(top *kube.OwnerRef, annotations map[string]string) (period time.Duration, source, bad string) {
	v, ok := annotations[CooldownAnnotation]
	if !ok {
		return c.period, fmt.Sprintf("MACAQUE_COOLDOWN=%s", c.period), ""
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < 0 || d%time.Second != 0 {
		return 0, "", fmt.Sprintf("bad %s annotation on %s: %q is not a duration of whole seconds, 0 or more (2h, 90m, 0 for none)",
			CooldownAnnotation, top, text.Truncate(v, maxQuoted))
	}
	return d, fmt.Sprintf("%s=%s on %s", CooldownAnnotation, shortDuration(d), top), ""
}

// parseHits reads the state's entries. One whose time does not parse, or whose key the API
// server would refuse (both edited by hand), is ignored, and so dropped at the next write rather
// than written back to sink the others with it.
func parseHits(data map[string]string) hits {
	out := hits{}
	for k, v := range data {
		if len(validation.IsConfigMapKey(k)) > 0 {
			continue
		}
		if e, ok := parseEntry(v); ok {
			out[k] = e
		}
	}
	return out
}

// check says why top, the top controller of a pick in namespace, may not be hit at now, or ""
// when it may, with MACAQUE_COOLDOWN's period. A bare pod (top nil) has no workload to cool down.
func (c *Cooldown) check(h hits, namespace string, top *kube.OwnerRef, now time.Time) string {
	if c == nil {
		return ""
	}
	return c.checkFor(h, namespace, top, c.period, fmt.Sprintf("MACAQUE_COOLDOWN=%s", c.period), now)
}

// checkFor says why top may not be hit at now with a cooldown of period, which source names,
// or "" when it may.
func (c *Cooldown) checkFor(h hits, namespace string, top *kube.OwnerRef, period time.Duration, source string, now time.Time) string {
	if top == nil {
		return ""
	}
	last, ok := h[CooldownKey(namespace, *top)]
	if !ok {
		return ""
	}
	until := last.at.Add(period)
	if !now.Before(until) {
		return ""
	}
	return fmt.Sprintf("%s lost a pod %s ago: cooling down until %s (%s)",
		top, now.Sub(last.at).Round(time.Second), until.UTC().Format(time.RFC3339), source)
}

// Record writes that the workloads keyed keys were hit at at, with MACAQUE_COOLDOWN's period,
// as RecordHits does.
func (c *Cooldown) Record(ctx context.Context, keys []string, at time.Time) error {
	if c == nil {
		return nil
	}
	hs := make([]Hit, 0, len(keys))
	for _, k := range keys {
		hs = append(hs, Hit{Key: k, Period: c.period})
	}
	return c.RecordHits(ctx, hs, at)
}

// RecordHits writes that the workloads of hs were hit at at, dropping the entries whose period
// has passed; a hit of period 0 (no cooldown for its workload) is not written, and when none is
// left nothing is. A write that lost a race with another (409) is retried once on a fresh read.
// A key no ConfigMap may hold (which cooldownKey never makes) is not written, so that it costs
// the others nothing, and is reported.
func (c *Cooldown) RecordHits(ctx context.Context, hs []Hit, at time.Time) error {
	if c == nil || len(hs) == 0 {
		return nil
	}
	var invalid []string
	hs = slices.DeleteFunc(slices.Clone(hs), func(h Hit) bool {
		bad := len(validation.IsConfigMapKey(h.Key)) > 0
		if bad {
			invalid = append(invalid, fmt.Sprintf("%q", h.Key))
		}
		return bad || h.Period == 0
	})
	if err := c.write(ctx, hs, at); err != nil {
		return err
	}
	if len(invalid) > 0 {
		return fmt.Errorf("record the cooldown of %s: not a valid ConfigMap key", strings.Join(invalid, ", "))
	}
	return nil
}

// write records hs at at, as RecordHits says.
func (c *Cooldown) write(ctx context.Context, hs []Hit, at time.Time) error {
	if len(hs) == 0 {
		return nil
	}
	var err error
	for range 2 {
		var cm kube.ConfigMap
		cm, err = c.api.GetConfigMap(ctx, c.namespace, CooldownConfigMap)
		if err != nil {
			return fmt.Errorf("read the cooldown state: %w", err)
		}
		h := parseHits(cm.Data)
		for _, hit := range hs {
			e := entry{at: at}
			if hit.Period != c.period {
				e.period = hit.Period
			}
			h[hit.Key] = e
		}
		cm.Data = c.prune(h, at)
		if _, err = c.api.UpdateConfigMap(ctx, cm); !apierrors.IsConflict(err) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write the cooldown state (ConfigMap %s/%s): %w", c.namespace, CooldownConfigMap, err)
	}
	return nil
}

// prune keeps the entries still cooling down at now, at most maxCooldownEntries of them, the
// latest first. An entry is kept for the longer of MACAQUE_COOLDOWN and the period its
// annotation gave it when hit: an annotation lengthened since then holds only if the entry is
// still there (a write of another hit drops the entries past both periods).
func (c *Cooldown) prune(h hits, now time.Time) map[string]string {
	live := slices.DeleteFunc(slices.Collect(maps.Keys(h)), func(k string) bool {
		return !now.Before(h[k].at.Add(max(c.period, h[k].period)))
	})
	slices.SortFunc(live, func(a, b string) int { return h[b].at.Compare(h[a].at) })
	out := map[string]string{}
	for _, k := range live[:min(len(live), maxCooldownEntries)] {
		out[k] = h[k].String()
	}
	return out
}

// CooldownNote is how a report that recorded no cooldown says so: the kill happened, but the
// workload may be hit again before its period.
func CooldownNote(err error) string {
	return "the cooldown was not recorded, so this workload may be hit again before MACAQUE_COOLDOWN: " + strings.ReplaceAll(err.Error(), "\n", " ")
}
