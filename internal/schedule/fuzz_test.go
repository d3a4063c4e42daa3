package schedule

// FuzzParseSchedule fuzzes the parser of the cron spec a user writes. `make fuzz` runs it for a
// while; plain `go test` runs its seeds and testdata/fuzz as unit tests.

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

// fuzzFroms are where activations are counted from: a plain UTC noon, and just before Paris
// falls back an hour (01:00 UTC on 2026-10-25), where wall-clock schedules are easiest to get wrong.
var fuzzFroms = []time.Time{
	time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC),
	time.Date(2026, 10, 25, 0, 30, 0, 0, mustLoadLocation("Europe/Paris")),
}

func mustLoadLocation(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func FuzzParseSchedule(f *testing.F) {
	seeds := []struct {
		spec string
		fast bool
	}{
		{"0 10-16 * * 1-5", false}, {"* * * * *", false}, {"*/5 * * * *", false},
		{"@hourly", false}, {"@daily", false}, {"@every 30m", false}, {"@every 1m", false},
		{"@every 59s", false}, {"@every 2s", true}, {"@every 2s", false}, {"@every 90.5s", false},
		{"@every -5m", true}, {"@every 0s", true}, {"@every 100ms", true}, {"@every  30s", false},
		{"0 9 * * 7", false}, {"0 9 * * 6-7", false}, {"0 9 * * 0-7", false}, {"0 9 * * 1-7/3", false},
		{"0 9 * * 7,1", false}, {"0 0 29 2 7", false}, {"*/1 * * * 7", true}, {"0 9 * * 8", false},
		{"0 0 30 2 *", false}, {"0 0 29 2 *", false}, {"30 2 * * *", false}, {"0 0 10 * * *", false},
		{"CRON_TZ=Asia/Tokyo 0 9 * * *", false}, {"TZ=UTC 0 9 * * *", false}, {"  TZ=UTC", false}, {"TZ=", false},
	}
	for _, s := range seeds {
		f.Add(s.spec, s.fast)
	}
	f.Fuzz(func(t *testing.T, spec string, allowFast bool) {
		schedule, err := Parse(spec, allowFast)
		if err != nil {
			return
		}
		if schedule == nil {
			t.Fatalf("Parse(%q) = nil, nil", spec)
		}
		trimmed := strings.TrimSpace(spec)
		if strings.HasPrefix(trimmed, "CRON_TZ=") || strings.HasPrefix(trimmed, "TZ=") {
			t.Fatalf("Parse(%q) accepted a spec that sets its own time zone", spec)
		}
		// Next evaluates a schedule in MACAQUE_TIMEZONE only if its zone is time.Local;
		// any other zone, however it got there, would override the setting.
		if s, ok := schedule.(*cron.SpecSchedule); ok && s.Location != time.Local {
			t.Fatalf("Parse(%q) set the zone %v, overriding MACAQUE_TIMEZONE", spec, s.Location)
		}
		checkActivations(t, spec, schedule, allowFast)
		checkSundayAsZero(t, spec, schedule, allowFast)
	})
}

// checkActivations: schedule, parsed from spec, fires four times from each of fuzzFroms, each
// strictly later, and never twice within minInterval unless allowFast.
func checkActivations(t *testing.T, spec string, schedule Schedule, allowFast bool) {
	t.Helper()
	for _, from := range fuzzFroms {
		at := from
		for i := range 4 {
			next := Next(schedule, from.Location(), at)
			if next.IsZero() || !next.After(at) {
				t.Fatalf("Parse(%q): activation %d after %v is %v", spec, i, at, next)
			}
			// The first gap is from an arbitrary time; the next ones are between activations.
			if i > 0 && !allowFast && next.Sub(at) < minInterval {
				t.Fatalf("Parse(%q, false): activations %v and %v are %v apart, under %v", spec, at, next, next.Sub(at), minInterval)
			}
			at = next
		}
	}
}

// checkSundayAsZero: where spec names Sunday as 7, the same spec with 0 instead is accepted and
// fires at the same times as schedule, parsed from spec.
func checkSundayAsZero(t *testing.T, spec string, schedule Schedule, allowFast bool) {
	t.Helper()
	spec0, ok := sundayAsZero(strings.TrimSpace(spec))
	if !ok {
		return
	}
	schedule0, err := Parse(spec0, allowFast)
	if err != nil {
		t.Fatalf("Parse accepted %q but not %q, the same with 0 for Sunday: %v", spec, spec0, err)
	}
	for _, from := range fuzzFroms {
		at, at0 := from, from
		for range 8 {
			at, at0 = Next(schedule, from.Location(), at), Next(schedule0, from.Location(), at0)
			if !at.Equal(at0) {
				t.Fatalf("%q fires at %v, %q at %v: 7 and 0 must both be Sunday", spec, at, spec0, at0)
			}
		}
	}
}

// sundayAsZero rewrites a 5-field spec's day-of-week items that plainly name Sunday as 7 ("7",
// and a range "N-7" without a step) with 0 instead, and says whether it changed anything. A step
// is left alone: "7/2" and "0/2" differ in any cron (the step runs to the field's end).
func sundayAsZero(spec string) (string, bool) {
	fields := strings.Fields(spec)
	if len(fields) != 5 {
		return "", false
	}
	items := strings.Split(fields[4], ",")
	changed := false
	for i, item := range items {
		if item == "7" {
			items[i], changed = "0", true
			continue
		}
		if lo, ok := strings.CutSuffix(item, "-7"); ok {
			if n, err := strconv.Atoi(lo); err == nil && n >= 0 && n <= 6 && lo == strconv.Itoa(n) {
				items[i], changed = lo+"-6,0", true
			}
		}
	}
	fields[4] = strings.Join(items, ",")
	return strings.Join(fields, " "), changed
}
