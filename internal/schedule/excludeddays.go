package schedule

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// Excluded days: dates on which macaque does not kill (MACAQUE_EXCLUDED_DAYS), for holidays and
// freezes that a cron spec cannot express. They are applied to the schedule itself, so that the
// scheduler never wakes for an activation that falls on one.

// ExcludedDays are the days macaque does not kill on, on the wall clock of the schedule's zone.
type ExcludedDays struct {
	dates  map[string]bool // "2026-12-25": that day only
	yearly map[string]bool // "12-25": that day every year
}

// Empty says whether no day is excluded.
func (e ExcludedDays) Empty() bool { return len(e.dates) == 0 && len(e.yearly) == 0 }

// excludes says whether the calendar day t falls on, read in t's own location, is excluded.
func (e ExcludedDays) excludes(t time.Time) bool {
	day := t.Format(time.DateOnly)
	return e.dates[day] || e.yearly[day[5:]]
}

// String lists the excluded days as MACAQUE_EXCLUDED_DAYS would: dated ones, then yearly ones.
func (e ExcludedDays) String() string {
	return strings.Join(append(slices.Sorted(maps.Keys(e.dates)), slices.Sorted(maps.Keys(e.yearly))...), ",")
}

// leapYear is a year in which every month-day exists, to check a yearly entry such as 02-29.
const leapYear = "2000-"

// ParseExcludedDays reads MACAQUE_EXCLUDED_DAYS: comma-separated dates, each YYYY-MM-DD (that
// day) or MM-DD (that day every year; 02-29 only in leap years). Each must be a real date:
// 2026-02-30 or 13-01 is refused rather than silently never matching.
func ParseExcludedDays(list string) (ExcludedDays, error) {
	e := ExcludedDays{dates: map[string]bool{}, yearly: map[string]bool{}}
	if strings.TrimSpace(list) == "" {
		return e, nil
	}
	for _, item := range strings.Split(list, ",") {
		day := strings.TrimSpace(item)
		if len(day) == len("12-25") {
			if _, err := time.Parse(time.DateOnly, leapYear+day); err != nil {
				return e, fmt.Errorf("%q is not a date: want YYYY-MM-DD, or MM-DD for every year, comma-separated", day)
			}
			e.yearly[day] = true
			continue
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			return e, fmt.Errorf("%q is not a date: want YYYY-MM-DD, or MM-DD for every year, comma-separated", day)
		}
		e.dates[day] = true
	}
	return e, nil
}

// maxSkippedDays bounds how many excluded days one Next passes over before it gives up and says
// the schedule has no further activation. It exceeds five years of days, the horizon robfig/cron
// itself looks ahead, so only a schedule with every activation excluded for five years reaches
// it; each pass costs one Next of the underlying schedule, so even then Next returns in
// milliseconds.
const maxSkippedDays = 5*366 + 1

// excludingSchedule is a schedule whose activations on excluded days are passed over.
type excludingSchedule struct {
	schedule Schedule
	days     ExcludedDays
	location *time.Location // the zone the days are read in: MACAQUE_TIMEZONE
}

// Excluding wraps s so that its activations on days, read on loc's wall clock, are passed over.
func Excluding(s Schedule, days ExcludedDays, loc *time.Location) Schedule {
	return excludingSchedule{schedule: s, days: days, location: loc}
}

// Next is the first activation after t that does not fall on an excluded day, zero if none. The
// spec is read in s.location whatever t's location, as the package's Next reads it.
func (s excludingSchedule) Next(t time.Time) time.Time {
	next, _ := s.nextPassing(t)
	return next
}

// maxPassedListed bounds the excluded days nextPassing names, so a log line stays short.
const maxPassedListed = 10

// nextPassing is Next, with the excluded days (YYYY-MM-DD, at most maxPassedListed of them) on
// which activations were passed over to reach it. It jumps from an excluded activation to the
// start of the next day rather than stepping through the day's other activations, so a schedule
// firing every second costs one step per excluded day.
func (s excludingSchedule) nextPassing(t time.Time) (time.Time, []string) {
	var passed []string
	t = t.In(s.location) // robfig/cron reads the spec, and the days are read, on t's wall clock
	for range maxSkippedDays {
		next := s.schedule.Next(t)
		if next.IsZero() {
			return next, passed
		}
		if !s.days.excludes(next) {
			return next, passed
		}
		if len(passed) < maxPassedListed {
			passed = append(passed, next.Format(time.DateOnly))
		}
		// robfig/cron's Next is strictly after its argument, and rounds it up to the second.
		t = startOfNextDay(next).Add(-time.Nanosecond)
	}
	return time.Time{}, passed
}

// startOfNextDay is the first instant of the calendar day after t's, in t's location. Where the
// clocks skip midnight, time.Date may answer with an instant of the day before, as early as its
// own midnight where a zone skipped a whole day (Samoa's 2011-12-30, crossing the date line); it
// is then moved on an hour at a time until it is on the next day. That ends within two days of
// hours: a zone's offset from UTC is bounded, so an hour later is, soon, a later wall-clock day.
func startOfNextDay(t time.Time) time.Time {
	y, m, d := t.Date()
	start := time.Date(y, m, d+1, 0, 0, 0, 0, t.Location())
	for start.Day() == d {
		start = start.Add(time.Hour)
	}
	return start
}

// NextPassing is Next, with the excluded days passed over to reach it (none when s excludes no
// day), so that the scheduler can say why a day went by without a tick.
func NextPassing(s Schedule, loc *time.Location, now time.Time) (time.Time, []string) {
	if ex, ok := s.(excludingSchedule); ok {
		return ex.nextPassing(now.In(loc))
	}
	return Next(s, loc, now), nil
}
