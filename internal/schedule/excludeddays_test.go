package schedule

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestParseExcludedDays(t *testing.T) {
	tests := []struct {
		name   string
		list   string
		dates  []string
		yearly []string
		bad    string // the entry the error must quote; empty when valid
	}{
		{name: "empty", list: " "},
		{name: "a date and a yearly day, spaces trimmed", list: " 2026-12-25 , 01-01", dates: []string{"2026-12-25"}, yearly: []string{"01-01"}},
		{name: "02-29 every year", list: "02-29", yearly: []string{"02-29"}},
		{name: "02-29 of a leap year", list: "2028-02-29", dates: []string{"2028-02-29"}},
		{name: "02-29 of another year", list: "2027-02-29", bad: `"2027-02-29"`},
		{name: "02-30", list: "02-30", bad: `"02-30"`},
		{name: "month 13", list: "13-01", bad: `"13-01"`},
		{name: "day 00", list: "2026-12-00", bad: `"2026-12-00"`},
		{name: "unpadded", list: "2026-1-5", bad: `"2026-1-5"`},
		{name: "slashes", list: "12/25", bad: `"12/25"`},
		{name: "a time", list: "2026-12-25T00:00:00Z", bad: `"2026-12-25T00:00:00Z"`},
		{name: "an empty entry", list: "12-25,,01-01", bad: `""`},
		{name: "a trailing comma", list: "12-25,", bad: `""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseExcludedDays(tt.list)
			if tt.bad != "" {
				if err == nil || !strings.Contains(err.Error(), tt.bad) {
					t.Errorf("ParseExcludedDays(%q) = %v, want an error quoting %s", tt.list, err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(append(tt.dates, tt.yearly...), ","); got.String() != want {
				t.Errorf("ParseExcludedDays(%q) = %q, want %q", tt.list, got, want)
			}
			if got.Empty() != (len(tt.dates)+len(tt.yearly) == 0) {
				t.Errorf("Empty() = %v for %q", got.Empty(), got)
			}
		})
	}
}

// everyDay excludes every day of the year, 02-29 included.
func everyDay() string {
	var days []string
	for d := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() == 2000; d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format("01-02"))
	}
	return strings.Join(days, ",")
}

// daysOf lists every day of the years from first to last as dated entries.
func daysOf(first, last int) string {
	var days []string
	for d := time.Date(first, 1, 1, 0, 0, 0, 0, time.UTC); d.Year() <= last; d = d.AddDate(0, 0, 1) {
		days = append(days, d.Format(time.DateOnly))
	}
	return strings.Join(days, ",")
}

func TestExcludingScheduleNext(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	tests := []struct {
		name   string
		spec   string
		zone   string
		days   string
		from   time.Time
		want   []time.Time // the next activations in turn; a zero time for none
		passed []string    // the days nextPassing names on the way to the first
	}{
		{name: "a dated day is passed over that year only", spec: "0 9 * * *", zone: "UTC", days: "2026-12-25",
			from: time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2026, 12, 26, 9, 0, 0, 0, time.UTC)}, passed: []string{"2026-12-25"}},
		{name: "a dated day of another year changes nothing", spec: "0 9 * * *", zone: "UTC", days: "2026-12-25",
			from: time.Date(2027, 12, 24, 10, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2027, 12, 25, 9, 0, 0, 0, time.UTC)}},
		{name: "a yearly day is passed over every year", spec: "0 9 * * *", zone: "UTC", days: "12-25",
			from: time.Date(2027, 12, 24, 10, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2027, 12, 26, 9, 0, 0, 0, time.UTC)}, passed: []string{"2027-12-25"}},
		{name: "across the new year", spec: "0 9 * * *", zone: "UTC", days: "12-31,01-01",
			from:   time.Date(2026, 12, 30, 10, 0, 0, 0, time.UTC),
			want:   []time.Time{time.Date(2027, 1, 2, 9, 0, 0, 0, time.UTC), time.Date(2027, 1, 3, 9, 0, 0, 0, time.UTC)},
			passed: []string{"2026-12-31", "2027-01-01"}},
		{name: "02-29 in a leap year", spec: "0 9 * * *", zone: "UTC", days: "02-29",
			from: time.Date(2028, 2, 28, 10, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2028, 3, 1, 9, 0, 0, 0, time.UTC)}, passed: []string{"2028-02-29"}},
		{name: "02-29 in another year changes nothing", spec: "0 9 * * *", zone: "UTC", days: "02-29",
			from: time.Date(2027, 2, 28, 10, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)}},
		{name: "the day is read in the schedule's zone, not UTC", spec: "0 0 * * *", zone: "Europe/Paris", days: "2026-12-25",
			from: time.Date(2026, 12, 24, 12, 0, 0, 0, time.UTC), // 00:00 Paris on the 25th is 23:00 UTC on the 24th
			want: []time.Time{time.Date(2026, 12, 25, 23, 0, 0, 0, time.UTC)}, passed: []string{"2026-12-25"}},
		{name: "the short day of spring DST", spec: "0 9 * * *", zone: "Europe/Paris", days: "2026-03-29",
			from: time.Date(2026, 3, 28, 12, 0, 0, 0, paris),
			want: []time.Time{time.Date(2026, 3, 30, 9, 0, 0, 0, paris)}, passed: []string{"2026-03-29"}},
		{name: "the long day of autumn DST, every hour of it", spec: "0 * * * *", zone: "Europe/Paris", days: "2026-10-25",
			from: time.Date(2026, 10, 24, 23, 30, 0, 0, paris),
			want: []time.Time{time.Date(2026, 10, 26, 0, 0, 0, 0, paris), time.Date(2026, 10, 26, 1, 0, 0, 0, paris)}, passed: []string{"2026-10-25"}},
		{name: "a zone whose clocks skip midnight", spec: "30 1 * * *", zone: "America/Havana", days: "2026-03-07",
			from: time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2026, 3, 8, 5, 30, 0, 0, time.UTC)}, passed: []string{"2026-03-07"}}, // 01:30 CDT
		// From 14:00 on the 28th in Apia to 09:00 on the 31st (+14): past the 29th, excluded, and
		// the 30th, which never was.
		{name: "a zone whose clocks skipped a whole day", spec: "0 9 * * *", zone: "Pacific/Apia", days: "2011-12-29",
			from: time.Date(2011, 12, 29, 0, 0, 0, 0, time.UTC),
			want: []time.Time{time.Date(2011, 12, 30, 19, 0, 0, 0, time.UTC)}, passed: []string{"2011-12-29"}},
		{name: "every second, a run of days jumped a day at a time", spec: "@every 1s", zone: "UTC", days: "2026-12-24,2026-12-25,2026-12-26",
			from:   time.Date(2026, 12, 23, 23, 59, 59, 0, time.UTC),
			want:   []time.Time{time.Date(2026, 12, 27, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 27, 0, 0, 1, 0, time.UTC)},
			passed: []string{"2026-12-24", "2026-12-25", "2026-12-26"}},
		{name: "two years of dated days passed over", spec: "0 9 * * *", zone: "UTC", days: daysOf(2027, 2028),
			from: time.Date(2026, 12, 31, 10, 0, 0, 0, time.UTC), want: []time.Time{time.Date(2029, 1, 1, 9, 0, 0, 0, time.UTC)},
			passed: []string{"2027-01-01", "2027-01-02", "2027-01-03", "2027-01-04", "2027-01-05", "2027-01-06", "2027-01-07", "2027-01-08", "2027-01-09", "2027-01-10"}},
		{name: "every day excluded: none, and soon", spec: "@every 1s", zone: "UTC", days: everyDay(),
			from: time.Date(2026, 12, 24, 10, 0, 0, 0, time.UTC), want: []time.Time{{}},
			passed: []string{"2026-12-24", "2026-12-25", "2026-12-26", "2026-12-27", "2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"}},
		{name: "a schedule only on excluded days: none", spec: "0 9 29 2 *", zone: "UTC", days: "02-29",
			from: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), want: []time.Time{{}},
			passed: []string{"2028-02-29", "2032-02-29", "2036-02-29", "2040-02-29", "2044-02-29", "2048-02-29", "2052-02-29", "2056-02-29", "2060-02-29", "2064-02-29"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := cron.ParseStandard(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			days, err := ParseExcludedDays(tt.days)
			if err != nil {
				t.Fatal(err)
			}
			loc := mustLoad(t, tt.zone)
			s := Excluding(spec, days, loc)
			start := time.Now()
			next, passed := NextPassing(s, loc, tt.from)
			if took := time.Since(start); took > time.Second {
				t.Errorf("nextPassing took %v", took)
			}
			if !slices.Equal(passed, tt.passed) {
				t.Errorf("passed over %q, want %q", passed, tt.passed)
			}
			at := tt.from
			for i, want := range tt.want {
				if direct := s.Next(at.UTC()); !direct.Equal(Next(s, loc, at)) {
					t.Errorf("Next(%v) = %v, want the activation in the schedule's zone", at.UTC(), direct.UTC())
				}
				at = Next(s, loc, at)
				if i == 0 && !at.Equal(next) {
					t.Errorf("Next %v, nextPassing %v", at, next)
				}
				if !at.Equal(want) {
					t.Fatalf("activation %d after %v: %v, want %v", i+1, tt.from, at.UTC(), want.UTC())
				}
			}
		})
	}
}

func TestStartOfNextDay(t *testing.T) {
	for _, tt := range []struct {
		zone string
		at   time.Time // in UTC
		want string    // in the zone
	}{
		{"UTC", time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC), "2027-01-01 00:00:00 UTC"},
		{"Europe/Paris", time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), "2026-03-29 00:00:00 CET"},
		{"America/Havana", time.Date(2026, 3, 7, 12, 0, 0, 0, time.UTC), "2026-03-08 01:00:00 CDT"},   // 00:00 does not exist
		{"America/Santiago", time.Date(2026, 9, 5, 12, 0, 0, 0, time.UTC), "2026-09-06 01:00:00 -03"}, // nor here
		{"Asia/Beirut", time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), "2026-03-29 01:00:00 EEST"},
		// Samoa crossed the date line: 2011-12-30 never was; time.Date answers 00:00 of the 29th.
		{"Pacific/Apia", time.Date(2011, 12, 29, 12, 0, 0, 0, time.UTC), "2011-12-31 00:00:00 +14"},
		{"Pacific/Kanton", time.Date(1994, 12, 30, 12, 0, 0, 0, time.UTC), "1995-01-01 00:00:00 +13"}, // 1994-12-31 neither
	} {
		t.Run(tt.zone, func(t *testing.T) {
			loc := mustLoad(t, tt.zone)
			if got := startOfNextDay(tt.at.In(loc)).Format("2006-01-02 15:04:05 MST"); got != tt.want {
				t.Errorf("startOfNextDay(%v) = %s, want %s", tt.at.In(loc), got, tt.want)
			}
		})
	}
}

// TestNextPassingWithoutExcludedDays: a schedule that excludes no day is read as Next reads it,
// in the zone given, and passes over no day.
func TestNextPassingWithoutExcludedDays(t *testing.T) {
	spec, err := cron.ParseStandard("0 9 * * *")
	if err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC)
	want := time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC) // 09:00 in Paris, on summer time from that night
	next, passed := NextPassing(spec, mustLoad(t, "Europe/Paris"), from)
	if !next.Equal(want) || passed != nil {
		t.Errorf("NextPassing(%v) = %v, passing %q; want %v, passing none", from, next.UTC(), passed, want)
	}
}
