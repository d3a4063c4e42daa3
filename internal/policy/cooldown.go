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

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"
)

// The cooldown (MACAQUE_COOLDOWN): a workload that lost a pod is not hit again before the
// period has passed. When each workload was last hit is kept in a ConfigMap that macaque.yml
// creates in macaque's own namespace, so that a restart of macaque, a rollout of it or a
// reschedule to another node does not forget it; macaque may only get and update that one
// ConfigMap (resourceNames in the Role).

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
}

// hits is the cooldown state as read at the start of a tick: when each workload was last hit,
// by cooldownKey.
type hits map[string]time.Time

// NewCooldown is the cooldown of period, kept in the ConfigMap macaque-cooldown of namespace.
func NewCooldown(api StateAPI, namespace string, period time.Duration) *Cooldown {
	return &Cooldown{api: api, namespace: namespace, period: period}
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

// ForTick reads the state and is the cooldown's rule for one tick; nil for a nil *Cooldown. A
// tick whose state cannot be read kills nothing: a cooldown that might not hold is no cooldown.
func (c *Cooldown) ForTick(ctx context.Context, now func() time.Time) (Rule, error) {
	if c == nil {
		return nil, nil
	}
	h, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	return coolingDown{c: c, hits: h, now: now}, nil
}

// load reads the state.
func (c *Cooldown) load(ctx context.Context) (hits, error) {
	cm, err := c.api.GetConfigMap(ctx, c.namespace, CooldownConfigMap)
	if err != nil {
		return nil, fmt.Errorf("read the cooldown state (ConfigMap %s/%s): %w", c.namespace, CooldownConfigMap, err)
	}
	return parseHits(cm.Data), nil
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
		if at, err := time.Parse(time.RFC3339, v); err == nil {
			out[k] = at
		}
	}
	return out
}

// check says why top, the top controller of a pick in namespace, may not be hit at now, or ""
// when it may. A bare pod (top nil) has no workload to cool down.
func (c *Cooldown) check(h hits, namespace string, top *kube.OwnerRef, now time.Time) string {
	if c == nil || top == nil {
		return ""
	}
	name := top.String()
	last, ok := h[CooldownKey(namespace, *top)]
	if !ok {
		return ""
	}
	until := last.Add(c.period)
	if !now.Before(until) {
		return ""
	}
	return fmt.Sprintf("%s lost a pod %s ago: cooling down until %s (MACAQUE_COOLDOWN=%s)",
		name, now.Sub(last).Round(time.Second), until.UTC().Format(time.RFC3339), c.period)
}

// Record writes that the workloads keyed keys were hit at at, dropping the entries whose period
// has passed. A write that lost a race with another (409) is retried once on a fresh read.
// A key no ConfigMap may hold (which cooldownKey never makes) is not written, so that it costs
// the others nothing, and is reported.
func (c *Cooldown) Record(ctx context.Context, keys []string, at time.Time) error {
	if c == nil || len(keys) == 0 {
		return nil
	}
	var invalid []string
	keys = slices.DeleteFunc(slices.Clone(keys), func(k string) bool {
		bad := len(validation.IsConfigMapKey(k)) > 0
		if bad {
			invalid = append(invalid, fmt.Sprintf("%q", k))
		}
		return bad
	})
	if err := c.write(ctx, keys, at); err != nil {
		return err
	}
	if len(invalid) > 0 {
		return fmt.Errorf("record the cooldown of %s: not a valid ConfigMap key", strings.Join(invalid, ", "))
	}
	return nil
}

// write records keys at at, as record says.
func (c *Cooldown) write(ctx context.Context, keys []string, at time.Time) error {
	if len(keys) == 0 {
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
		for _, k := range keys {
			h[k] = at
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
// latest first.
func (c *Cooldown) prune(h hits, now time.Time) map[string]string {
	live := slices.DeleteFunc(slices.Collect(maps.Keys(h)), func(k string) bool { return !now.Before(h[k].Add(c.period)) })
	slices.SortFunc(live, func(a, b string) int { return h[b].Compare(h[a]) })
	out := map[string]string{}
	for _, k := range live[:min(len(live), maxCooldownEntries)] {
		out[k] = h[k].UTC().Format(time.RFC3339)
	}
	return out
}

// CooldownNote is how a report that recorded no cooldown says so: the kill happened, but the
// workload may be hit again before its period.
func CooldownNote(err error) string {
	return "the cooldown was not recorded, so this workload may be hit again before MACAQUE_COOLDOWN: " + strings.ReplaceAll(err.Error(), "\n", " ")
}
