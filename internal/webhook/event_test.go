package webhook

import (
	"encoding/json"
	"maps"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestEnvelope: an event marshals as structured mode has it: every attribute the
// specification requires (specversion 1.0, id, source, type) and those macaque always sets
// (time in RFC 3339 UTC, datacontenttype, subject when there is a pod), and data as an object.
func TestEnvelope(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 1, 500_000_000, time.FixedZone("CET", 3600))
	tests := []struct {
		name    string
		event   Event
		want    map[string]any
		subject bool // whether subject is there
	}{
		{
			name:  "kill",
			event: New("id-1", TypeKill, Source("prod-eu", "shop"), "web-1", at, Report{Outcome: "killed", Pod: "web-1"}),
			want: map[string]any{"specversion": "1.0", "id": "id-1", "source": "/macaque/clusters/prod-eu/namespaces/shop", "type": "dev.macaque.kill",
				"time": "2026-12-07T09:00:01.5Z", "datacontenttype": "application/json", "subject": "web-1"},
			subject: true,
		},
		{
			name:  "verdict",
			event: New("id-2", TypeVerdict, Source("", "shop"), "web-1", at, Verdict{Verdict: "recovered"}),
			want: map[string]any{"specversion": "1.0", "id": "id-2", "source": "/macaque/namespaces/shop", "type": "dev.macaque.verdict",
				"time": "2026-12-07T09:00:01.5Z", "datacontenttype": "application/json", "subject": "web-1"},
			subject: true,
		},
		{
			name:  "tick without a pod nor one namespace",
			event: New("id-3", TypeTick, Source("prod-eu", ""), "", at, Report{Outcome: "no candidates"}),
			want: map[string]any{"specversion": "1.0", "id": "id-3", "source": "/macaque/clusters/prod-eu", "type": "dev.macaque.tick",
				"time": "2026-12-07T09:00:01.5Z", "datacontenttype": "application/json"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.event)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (event %s)", k, got[k], v, raw)
				}
			}
			if _, ok := got["subject"]; ok != tt.subject {
				t.Errorf("subject present %v, want %v (event %s)", ok, tt.subject, raw)
			}
			if _, ok := got["data"].(map[string]any); !ok {
				t.Errorf("data = %v, want a JSON object (event %s)", got["data"], raw)
			}
			if len(got) != len(tt.want)+1 {
				t.Errorf("attributes %v, want exactly %v and data", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(tt.want)))
			}
		})
	}
}

// TestDataShape: the data's keys are all there whatever applies, null or empty when it does not,
// so a receiver can rely on the shape; the keys are the documented ones.
func TestDataShape(t *testing.T) {
	tests := []struct {
		name string
		data any
		keys []string
		null []string // keys whose value is null
	}{
		{
			name: "report of a tick with nothing",
			data: Report{Outcome: "no candidates", Passed: []string{}},
			keys: []string{"cluster", "outcome", "mode", "scope", "namespace", "selector", "pod", "uid", "owner", "node", "candidates",
				"tick", "deleted", "note", "passed", "killed_before", "resumed", "error"},
			null: []string{"deleted"},
		},
		{
			name: "verdict not reached",
			data: Verdict{Verdict: "unknown"},
			keys: []string{"cluster", "verdict", "namespace", "pod", "uid", "workload", "replacement", "tick", "created_seconds", "ready_seconds",
				"full_strength_seconds", "strength", "through", "why", "timeout_seconds", "summary"},
			null: []string{"created_seconds", "ready_seconds", "full_strength_seconds"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := json.Marshal(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, slices.Sorted(slices.Values(tt.keys))) {
				t.Errorf("keys %v, want %v", keys, slices.Sorted(slices.Values(tt.keys)))
			}
			for _, k := range tt.null {
				if got[k] != nil {
					t.Errorf("%s = %v, want null", k, got[k])
				}
			}
		})
	}
}

// TestNewIDIsUniqueUUID: ids are version-4 UUIDs, none repeated in many.
func TestNewIDIsUniqueUUID(t *testing.T) {
	uuid := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 10000 {
		id := NewID()
		if !uuid.MatchString(id) {
			t.Fatalf("id %q is not a version-4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("id %q repeated", id)
		}
		seen[id] = true
	}
}
