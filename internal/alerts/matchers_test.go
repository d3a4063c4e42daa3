package alerts

import (
	"strings"
	"testing"
)

func TestParseMatchers(t *testing.T) {
	critical := map[string]string{"alertname": "HighErrorRate", "severity": "critical", "team": "payments"}
	warning := map[string]string{"alertname": "SlowDisk", "severity": "warning", "team": "payments"}
	tests := []struct {
		name, in string
		want     string // the matchers as Alertmanager prints them; "" for a refusal
		critical bool   // whether they select critical
		warning  bool   // whether they select warning
		wantErr  string
	}{
		{name: "the default", in: `severity="critical"`, want: `{severity="critical"}`, critical: true},
		{name: "in braces, with a regexp", in: `{severity="critical",team=~"pay.*"}`, want: `{severity="critical",team=~"pay.*"}`, critical: true},
		{name: "a regexp is anchored", in: `team=~"pay"`, want: `{team=~"pay"}`},
		{name: "unquoted value", in: `severity=critical`, want: `{severity="critical"}`, critical: true},
		{name: "negative matchers", in: `severity!="warning", team!~"ops|infra"`, want: `{severity!="warning",team!~"ops|infra"}`, critical: true},
		{name: "every alert", in: `{}`, want: `{}`, critical: true, warning: true},
		{name: "a UTF-8 label name", in: `"k8s.namespace"="shop"`, want: `{k8s.namespace="shop"}`},
		{name: "empty", in: ``, wantErr: "empty: want Alertmanager matchers"},
		{name: "blank", in: "  \n", wantErr: "empty: want Alertmanager matchers"},
		{name: "no operator", in: `severity`, wantErr: "expected an operator"},
		{name: "no label name", in: `=critical`, wantErr: "expected label name"},
		{name: "a bad regexp", in: `team=~"("`, wantErr: "error parsing regexp"},
		{name: "an unclosed brace", in: `{severity="critical"`, wantErr: "expected close brace"},
		{name: "PromQL's double equals", in: `severity=="critical"`, wantErr: "is not a list of Alertmanager matchers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ParseMatchers(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseMatchers(%q) = %v, %v; want an error saying %q", tt.in, m, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseMatchers(%q): %v", tt.in, err)
			}
			if m.String() != tt.want {
				t.Errorf("ParseMatchers(%q) = %s, want %s", tt.in, m, tt.want)
			}
			if m.Match(critical) != tt.critical || m.Match(warning) != tt.warning {
				t.Errorf("%s selects critical %v and warning %v, want %v and %v", m, m.Match(critical), m.Match(warning), tt.critical, tt.warning)
			}
		})
	}
}
