package schedule

import (
	"cmp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func TestNext(t *testing.T) {
	utc := time.UTC
	tests := []struct {
		name, spec, zone string
		from             time.Time
		want             []time.Time // successive activations, in UTC
	}{
		{
			name: "daily 09:00 in Paris follows the wall clock across spring forward",
			spec: "0 9 * * *", zone: "Europe/Paris", from: time.Date(2026, 3, 27, 12, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 3, 28, 8, 0, 0, 0, utc), time.Date(2026, 3, 29, 7, 0, 0, 0, utc), time.Date(2026, 3, 30, 7, 0, 0, 0, utc)},
		},
		{
			name: "a time in the hour skipped at spring forward does not fire that day",
			spec: "30 2 * * *", zone: "Europe/Paris", from: time.Date(2026, 3, 28, 12, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 3, 30, 0, 30, 0, 0, utc)},
		},
		{
			name: "a time in the hour repeated at fall back fires in both",
			spec: "30 1 * * *", zone: "America/New_York", from: time.Date(2026, 10, 31, 16, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 11, 1, 5, 30, 0, 0, utc), time.Date(2026, 11, 1, 6, 30, 0, 0, utc), time.Date(2026, 11, 2, 6, 30, 0, 0, utc)},
		},
		{
			name: "weekdays in Tokyo: Friday afternoon to Monday morning",
			spec: "0 9 * * 1-5", zone: "Asia/Tokyo", from: time.Date(2026, 11, 27, 6, 0, 0, 0, utc), // Fri 15:00 JST
			want: []time.Time{time.Date(2026, 11, 30, 0, 0, 0, 0, utc)},
		},
		{
			name: "the same spec in UTC",
			spec: "0 9 * * 1-5", zone: "UTC", from: time.Date(2026, 11, 27, 6, 0, 0, 0, utc),
			want: []time.Time{time.Date(2026, 11, 27, 9, 0, 0, 0, utc)},
		},
		{
			name: "@every ignores the zone",
			spec: "@every 30s", zone: "Australia/Lord_Howe", from: time.Date(2026, 4, 5, 14, 59, 50, 0, utc),
			want: []time.Time{time.Date(2026, 4, 5, 15, 0, 20, 0, utc), time.Date(2026, 4, 5, 15, 0, 50, 0, utc)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sched, err := cron.ParseStandard(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			at := tt.from
			for i, want := range tt.want {
				at = Next(sched, mustLoad(t, tt.zone), at)
				if !at.Equal(want) {
					t.Fatalf("activation %d = %v (%v), want %v", i, at.UTC(), at, want)
				}
			}
		})
	}
}

// parseFrom is a Friday noon, UTC: Parse's cases count their activations from it.
var parseFrom = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// TestParse: what MACAQUE_CRONTAB accepts (its next three activations from parseFrom, in the
// zone) and what it refuses (a message saying why; config.go names the variable).
func TestParse(t *testing.T) {
	utc := func(day, hour, minute int) time.Time { return time.Date(2026, 11, day, hour, minute, 0, 0, time.UTC) }
	dec := func(day int) time.Time { return time.Date(2026, 12, day, 9, 0, 0, 0, time.UTC) }
	tests := []struct {
		name      string
		spec      string
		allowFast bool
		zone      string      // "" is Europe/Paris
		want      []time.Time // valid: the next three activations
		wantMsg   string      // invalid: what the error says
	}{
		{name: "weekdays 10 to 16 in Paris", spec: "0 10-16 * * 1-5", want: []time.Time{utc(27, 13, 0), utc(27, 14, 0), utc(27, 15, 0)}},
		{name: "descriptor", spec: "@every 30m", want: []time.Time{utc(27, 12, 30), utc(27, 13, 0), utc(27, 13, 30)}},
		{name: "once a minute needs no allowing", spec: "@every 1m", want: []time.Time{utc(27, 12, 1), utc(27, 12, 2), utc(27, 12, 3)}},
		{name: "fast schedule allowed", spec: "@every 2s", allowFast: true,
			want: []time.Time{parseFrom.Add(2 * time.Second), parseFrom.Add(4 * time.Second), parseFrom.Add(6 * time.Second)}},
		{name: "day-of-week 7 is Sunday", spec: "0 9 * * 7", zone: "UTC", want: []time.Time{utc(29, 9, 0), dec(6), dec(13)}},
		{name: "a range to 7 ends on Sunday", spec: "0 9 * * 6-7", zone: "UTC", want: []time.Time{utc(28, 9, 0), utc(29, 9, 0), dec(5)}},
		{name: "Sunday to Sunday is every day", spec: "0 9 * * 0-7", zone: "UTC", want: []time.Time{utc(28, 9, 0), utc(29, 9, 0), utc(30, 9, 0)}},
		{name: "a range to 7 stepped by 1 is every day", spec: "0 9 * * 1-7/1", zone: "UTC", want: []time.Time{utc(28, 9, 0), utc(29, 9, 0), utc(30, 9, 0)}},
		{name: "a stepped range to 7", spec: "0 9 * * 1-7/3", zone: "UTC", want: []time.Time{utc(29, 9, 0), utc(30, 9, 0), dec(3)}}, // Mon, Thu, Sun
		{name: "bad crontab", spec: "every day", wantMsg: "invalid cron spec"},
		{name: "six fields", spec: "0 0 10 * * *", wantMsg: "expected exactly 5 fields"},
		{name: "out of range", spec: "61 * * * *", wantMsg: "invalid cron spec"},
		{name: "day-of-week 8", spec: "0 9 * * 8", wantMsg: "invalid cron spec"},
		{name: "a range to 7 that does not start with a number", spec: "0 9 * * x-7", wantMsg: "want 0-7"},
		{name: "a range to 7 from 8", spec: "0 9 * * 8-7", wantMsg: "want 0-7"},
		{name: "a range to 7 stepped by 0", spec: "0 9 * * 1-7/0", wantMsg: "bad step"},
		{name: "a range to 7 stepped by a word", spec: "0 9 * * 1-7/x", wantMsg: "bad step"},
		{name: "never fires", spec: "0 0 30 2 *", wantMsg: "never fires"},
		{name: "negative interval", spec: "@every -5m", allowFast: true, wantMsg: "must be positive"},
		{name: "zero interval", spec: "@every 0s", allowFast: true, wantMsg: "must be positive"},
		{name: "sub-second interval", spec: "@every 100ms", allowFast: true, wantMsg: "whole number of seconds"},
		{name: "fractional seconds", spec: "@every 90.5s", wantMsg: "whole number of seconds"},
		{name: "faster than a minute", spec: "@every 30s", wantMsg: "MACAQUE_ALLOW_FAST_SCHEDULE=true"},
		{name: "bad interval", spec: "@every often", wantMsg: "invalid interval"},
		{name: "a value with a newline is quoted", spec: "@daily\nx", wantMsg: `"@daily\nx"`},
		{name: "CRON_TZ prefix", spec: "CRON_TZ=Asia/Tokyo 0 9 * * *", wantMsg: "set MACAQUE_TIMEZONE instead"},
		{name: "TZ prefix", spec: "TZ=UTC 0 9 * * *", wantMsg: "set MACAQUE_TIMEZONE instead"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(tt.spec, tt.allowFast)
			if tt.wantMsg != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
					t.Fatalf("Parse(%q, %v) = %v, want an error saying %s", tt.spec, tt.allowFast, err, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q, %v) = %v, want nil", tt.spec, tt.allowFast, err)
			}
			loc := mustLoad(t, cmp.Or(tt.zone, "Europe/Paris"))
			var got []time.Time
			for at := parseFrom; len(got) < 3; got = append(got, at.UTC()) {
				at = Next(s, loc, at)
			}
			if !slices.EqualFunc(got, tt.want, time.Time.Equal) {
				t.Errorf("Parse(%q) fires at %v, want %v", tt.spec, got, tt.want)
			}
		})
	}
}
