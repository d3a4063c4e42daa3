package policy

import (
	"strings"
	"testing"
	"time"
)

// TestExcludedBy pins how the opt-out annotation's value is read: only "false" opts back in.
func TestExcludedBy(t *testing.T) {
	tests := []struct {
		name  string
		value *string // nil: no annotation
		want  string  // "" when the object does not exclude
	}{
		{name: "no annotation", want: ""},
		{name: "true", value: new("true"), want: "excluded by chaos.macaque.dev/exclude on Deployment/web"},
		{name: "false opts back in", value: new("false"), want: ""},
		{name: "False in any case opts back in", value: new("FALSE"), want: ""},
		{name: "another value excludes, quoted", value: new("yes"), want: `excluded by chaos.macaque.dev/exclude="yes" on Deployment/web (any value but "false" excludes)`},
		{name: "an empty value excludes", value: new(""), want: `excluded by chaos.macaque.dev/exclude="" on Deployment/web`},
		{name: "True is not true: quoted", value: new("True"), want: `chaos.macaque.dev/exclude="True"`},
		{name: "a long value is cut", value: new(strings.Repeat("x", 300)), want: `="` + strings.Repeat("x", maxQuoted-3) + `..." on`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ann := map[string]string{"other": "true"}
			if tt.value != nil {
				ann[ExcludeAnnotation] = *tt.value
			}
			got := excludedBy(ann, "Deployment/web")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("excludedBy(%q) = %q, want one containing %q", ann, got, tt.want)
			}
		})
	}
}

// TestTooYoung pins MACAQUE_MIN_POD_AGE: off at 0, a pod exactly as old as the minimum is old
// enough, and one created in the future (clock skew) is young.
func TestTooYoung(t *testing.T) {
	tests := []struct {
		name   string
		age    time.Duration
		minAge time.Duration
		want   string
	}{
		{name: "off", age: time.Second, minAge: 0, want: ""},
		{name: "off, even for a pod created in the future", age: -time.Minute, minAge: 0, want: ""},
		{name: "older", age: 11 * time.Minute, minAge: 10 * time.Minute, want: ""},
		{name: "exactly the minimum", age: 10 * time.Minute, minAge: 10 * time.Minute, want: ""},
		{name: "younger", age: 3*time.Minute + 12*time.Second + 300*time.Millisecond, minAge: 10 * time.Minute, want: "3m12s old, younger than MACAQUE_MIN_POD_AGE (10m)"},
		{name: "a second short", age: 10*time.Minute - time.Second, minAge: 10 * time.Minute, want: "9m59s old"},
		{name: "created in the future", age: -time.Minute, minAge: time.Second, want: "-1m old, younger than MACAQUE_MIN_POD_AGE (1s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tooYoung(tick0.Add(-tt.age), tick0, tt.minAge)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("tooYoung(age %v, min %v) = %q, want one containing %q", tt.age, tt.minAge, got, tt.want)
			}
		})
	}
}

// TestShortDuration: durations as people write them.
func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		10 * time.Minute: "10m", time.Hour: "1h", 90 * time.Minute: "1h30m", 3*time.Minute + 12*time.Second: "3m12s",
		20 * time.Second: "20s", 1500 * time.Millisecond: "2s", 2*time.Hour + 5*time.Second: "2h0m5s", 0: "0s",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestTruncate: a cut never splits a UTF-8 character and says it was made.
