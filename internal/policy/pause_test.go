package policy

import (
	"testing"
	"time"
)

func TestReadPause(t *testing.T) {
	now := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		value   string
		present bool
		want    pauseState
	}{
		{name: "absent", want: pauseState{}},
		{name: "false", value: "false", present: true, want: pauseState{}},
		{name: "true", value: "true", present: true, want: pauseState{paused: true}},
		{name: "a time ahead", value: "2026-12-01T09:00:00Z", present: true,
			want: pauseState{paused: true, until: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}},
		{name: "a time ahead with an offset", value: "2026-11-30T10:30:00+01:00", present: true,
			want: pauseState{paused: true, until: time.Date(2026, 11, 30, 9, 30, 0, 0, time.UTC)}},
		{name: "a time passed", value: "2026-11-30T08:59:59Z", present: true,
			want: pauseState{until: time.Date(2026, 11, 30, 8, 59, 59, 0, time.UTC)}},
		{name: "the very time: over", value: "2026-11-30T09:00:00Z", present: true,
			want: pauseState{until: now}},
		{name: "empty value: paused to be safe", value: "", present: true, want: pauseState{paused: true, bad: true}},
		{name: "True: paused to be safe", value: "True", present: true, want: pauseState{paused: true, bad: true}},
		{name: "FALSE: paused to be safe", value: "FALSE", present: true, want: pauseState{paused: true, bad: true}},
		{name: "yes: paused to be safe", value: "yes", present: true, want: pauseState{paused: true, bad: true}},
		{name: "a date without a time: paused to be safe", value: "2026-12-01", present: true, want: pauseState{paused: true, bad: true}},
		{name: "a time without a zone: paused to be safe", value: "2026-12-01T09:00:00", present: true, want: pauseState{paused: true, bad: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readPause(tt.value, tt.present, now)
			if got.paused != tt.want.paused || got.bad != tt.want.bad || !got.until.Equal(tt.want.until) {
				t.Errorf("readPause(%q, %v) = %+v, want %+v", tt.value, tt.present, got, tt.want)
			}
		})
	}
}
