// Package schedule says when macaque may kill next: MACAQUE_CRONTAB read the way the user most
// likely meant it (7 is Sunday; no time zone in the spec; nothing faster than a minute unless
// allowed), MACAQUE_EXCLUDED_DAYS applied to it, and the first activation after now on the wall
// clock of MACAQUE_TIMEZONE. It follows robfig/cron's model: a Schedule is a pure Next, and
// excluded days are a Schedule wrapping another. Nothing here sleeps or reads the clock but
// Parse's check that a spec fires at all; waiting for an activation is the caller's.
package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule is robfig/cron's: Next is the first activation strictly after t, zero if none.
type Schedule interface {
	Next(t time.Time) time.Time
}

// minInterval is the shortest time between two kills a schedule may ask for without
// MACAQUE_ALLOW_FAST_SCHEDULE: a chaos monkey firing every second is never what a typo meant.
const minInterval = time.Minute

// Parse parses a cron spec the way the user most likely meant it, and refuses what is
// surely a mistake: an interval that is not positive, faster than minInterval (unless allowFast)
// or finer than the second cron counts in, and a time zone prefix, which would silently override
// MACAQUE_TIMEZONE. Day-of-week 7 is Sunday, as in most crons.
func Parse(spec string, allowFast bool) (Schedule, error) {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "CRON_TZ=") || strings.HasPrefix(spec, "TZ=") {
		zone, _, _ := strings.Cut(spec, " ")
		return nil, fmt.Errorf("%q sets the time zone in the spec: set MACAQUE_TIMEZONE instead, the one place for it", zone)
	}
	if every, ok := strings.CutPrefix(spec, "@every "); ok {
		d, err := time.ParseDuration(strings.TrimSpace(every))
		if err != nil {
			return nil, fmt.Errorf("invalid interval in %q: %w", spec, err)
		}
		if d <= 0 {
			return nil, fmt.Errorf("interval in %q must be positive", spec)
		}
		if d%time.Second != 0 {
			return nil, fmt.Errorf("interval in %q must be a whole number of seconds", spec)
		}
		if d < minInterval && !allowFast {
			return nil, fmt.Errorf("%q fires more often than once a minute; set MACAQUE_ALLOW_FAST_SCHEDULE=true if that is really meant", spec)
		}
	}
	std, err := sundayAsSeven(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %w", spec, err)
	}
	schedule, err := cron.ParseStandard(std)
	if err != nil {
		return nil, fmt.Errorf("invalid cron spec %q: %w", spec, err)
	}
	if schedule.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("cron spec %q never fires", spec)
	}
	return schedule, nil
}

// sundayAsSeven rewrites the day-of-week field of a 5-field spec so that 7 means Sunday, as in
// Vixie cron and most others; robfig/cron only knows 0-6. A list item whose range reaches 7
// (7, 5-7, 1-7/2) is spelled out as the days it covers, with 0 for Sunday.
func sundayAsSeven(spec string) (string, error) {
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return spec, nil // a descriptor, or a spec the parser will refuse with its own message
	}
	var items []string
	for _, item := range strings.Split(fields[4], ",") {
		rng, step, hasStep := strings.Cut(item, "/")
		lo, hi, isRange := strings.Cut(rng, "-")
		if !isRange {
			hi = lo
		}
		if hi != "7" {
			items = append(items, item)
			continue
		}
		from, err := strconv.Atoi(lo)
		if err != nil || from > 7 { // lo holds no '-', so it never parses as negative
			return "", fmt.Errorf("day-of-week %q: want 0-7 (0 and 7 are Sunday)", item)
		}
		by := 1
		if hasStep {
			if by, err = strconv.Atoi(step); err != nil || by < 1 {
				return "", fmt.Errorf("day-of-week %q: bad step", item)
			}
		}
		// Counted, not stepped until past 7: a loop that cannot run away, whatever a bug makes of by.
		for i := range (7-from)/by + 1 {
			items = append(items, strconv.Itoa((from+i*by)%7))
		}
	}
	fields[4] = strings.Join(items, ",")
	return strings.Join(fields, " "), nil
}

// Next is the first activation of s after now, evaluated in loc (so "0 9 * * *" means 09:00 on
// loc's wall clock, across DST changes). It is zero if there is none.
func Next(s Schedule, loc *time.Location, now time.Time) time.Time {
	return s.Next(now.In(loc))
}
