package policy

import (
	"fmt"
	"strings"
	"time"

	"github.com/macaque-chaos/macaque/internal/text"
)

// Opt-outs that need no redeploy of macaque: an annotation on a pod or on any controller above
// it, and a minimum age below which a pod is left alone (it may still be starting up, and
// killing it tests nothing but the rollout that made it).

// ExcludeAnnotation on a pod or on any controller in its chain keeps macaque's hands off it,
// from the next tick on.
const ExcludeAnnotation = "chaos.macaque.dev/exclude"

// maxQuoted bounds how much of an annotation's value a report quotes: annotations may hold
// up to 256 KiB, a report line and an Event's note may not.
const maxQuoted = 64

// excludedBy says why the object whose annotations these are (named on, e.g.
// "Deployment/web" or "the pod") excludes its pods, or "" when it does not. The reading fails
// safe: any value but "false" (in any case) excludes, even an empty one or a typo of "true",
// since someone who wrote the annotation meant to opt out; a value other than "true" is quoted
// so that the report shows what was read.
func excludedBy(annotations map[string]string, on string) string {
	v, ok := annotations[ExcludeAnnotation]
	if !ok || strings.EqualFold(v, "false") {
		return ""
	}
	if v == "true" {
		return "excluded by " + ExcludeAnnotation + " on " + on
	}
	return fmt.Sprintf(`excluded by %s=%q on %s (any value but "false" excludes)`, ExcludeAnnotation, text.Truncate(v, maxQuoted), on)
}

// tooYoung says why a pod created at created is too young to kill at now, or "" when it is
// old enough or minAge is 0 (off). A creation time in the future (clock skew) reads as young.
func tooYoung(created, now time.Time, minAge time.Duration) string {
	if minAge <= 0 {
		return ""
	}
	age := now.Sub(created)
	if age >= minAge {
		return ""
	}
	return fmt.Sprintf("%s old, younger than MACAQUE_MIN_POD_AGE (%s)", shortDuration(age), shortDuration(minAge))
}

// shortDuration prints d to the second as a person writes it: 3m12s, 10m, 1h.
func shortDuration(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
