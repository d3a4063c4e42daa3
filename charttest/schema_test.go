package charttest

import (
	"strings"
	"testing"
)

// TestValuesRefused checks that values.schema.json (each value alone) and the chart's own checks
// (values together) refuse what would deploy a macaque that cannot start or that kills where it
// should not, naming the value: helm install stops there, before anything reaches the cluster.
func TestValuesRefused(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		name   string
		values map[string]any
		want   string // in the error
	}{
		{"unknown key", map[string]any{"schedulle": "@hourly"}, "schedulle"},
		{"unknown key in slack", map[string]any{"slack": map[string]any{"token": "xoxb-1"}}, "token"},
		{"schedule a number", map[string]any{"schedule": 5}, "schedule"},
		{"schedule empty", map[string]any{"schedule": ""}, "schedule"},
		{"schedule of three fields", map[string]any{"schedule": "0 10 *"}, "schedule"},
		{"scope neither", map[string]any{"scope": "everywhere"}, "scope"},
		{"mode neither", map[string]any{"mode": "kill"}, "mode"},
		{"killCount zero", map[string]any{"killCount": 0}, "killCount"},
		{"killCount over 100", map[string]any{"killCount": 101}, "killCount"},
		{"killCount a fraction", map[string]any{"killCount": 1.5}, "killCount"},
		{"killCount a word", map[string]any{"killCount": "all"}, "killCount"},
		{"killCount percentage over 100", map[string]any{"killCount": "150%"}, "killCount"},
		{"dryRun a string", map[string]any{"dryRun": "yes"}, "dryRun"},
		{"requireHealthy a string", map[string]any{"requireHealthy": "false"}, "requireHealthy"},
		{"cooldown not a duration", map[string]any{"cooldown": "1 hour"}, "cooldown"},
		{"cooldown a number", map[string]any{"cooldown": 3600}, "cooldown"},
		{"recoveryTimeout zero", map[string]any{"recoveryTimeout": "0s"}, "recoveryTimeout"},
		{"minPodAge negative", map[string]any{"minPodAge": "-10m"}, "minPodAge"},
		{"gracePeriod negative", map[string]any{"gracePeriod": -1}, "gracePeriod"},
		{"namespaces a string", map[string]any{"namespaces": "shop,cart"}, "namespaces"},
		{"namespace not a name", map[string]any{"namespaces": []any{"Shop"}}, "namespaces"},
		{"excludedDays not a day", map[string]any{"excludedDays": []any{"christmas"}}, "excludedDays"},
		{"ownerKinds lower case", map[string]any{"ownerKinds": []any{"job"}}, "ownerKinds"},
		{"logLevel unknown", map[string]any{"logLevel": "trace"}, "logLevel"},
		{"logFormat unknown", map[string]any{"logFormat": "xml"}, "logFormat"},
		{"slack channel a name", map[string]any{"slack": map[string]any{"channel": "#chaos"}}, "channel"},
		{"httpAddr without a port", map[string]any{"httpAddr": "localhost"}, "httpAddr"},
		{"image digest not sha256", map[string]any{"image": map[string]any{"digest": "latest"}}, "digest"},
		{"every namespace in scope namespace", map[string]any{"namespaces": []any{"*"}}, "needs scope: cluster"},
		{"slack channel without its Secret", map[string]any{"slack": map[string]any{"channel": "C0123456789", "existingSecret": ""}}, "slack.existingSecret"},
		{"podMonitor with no server", map[string]any{"httpAddr": "", "metrics": map[string]any{"podMonitor": map[string]any{"enabled": true}}}, "httpAddr is empty"},
		{"httpAddr on any port", map[string]any{"httpAddr": ":0"}, "port 0"},
		{"no ServiceAccount named", map[string]any{"serviceAccount": map[string]any{"create": false}}, "serviceAccount.name"},
		{"no election with the default two replicas", map[string]any{"leaderElection": false}, "replicas"},
		{"no election with three replicas", map[string]any{"leaderElection": false, "replicas": 3}, "replicas"},
		{"replicas zero", map[string]any{"replicas": 0}, "replicas"},
		{"replicas a string", map[string]any{"replicas": "2"}, "replicas"},
		{"leaderElection a string", map[string]any{"leaderElection": "false", "replicas": 1}, "leaderElection"},
		{"unknown key in podDisruptionBudget", map[string]any{"podDisruptionBudget": map[string]any{"minAvailable": 1}}, "minAvailable"},
		{"topologySpreadConstraints an object", map[string]any{"topologySpreadConstraints": map[string]any{"maxSkew": 1}}, "topologySpreadConstraints"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Render(ch, c.values, testRelease)
			if err == nil {
				t.Fatalf("values %v rendered, want them refused", c.values)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want it to name %q", err, c.want)
			}
		})
	}
}

// TestValuesAccepted checks the schema against what it must let through: each form a setting
// may take.
func TestValuesAccepted(t *testing.T) {
	ch := loadChart(t)
	cases := []struct {
		name   string
		values map[string]any
	}{
		{"descriptor schedule", map[string]any{"schedule": "@every 30m", "allowFastSchedule": true}},
		{"killCount a percentage", map[string]any{"killCount": "10%"}},
		{"killCount a number as a string", map[string]any{"killCount": "3"}},
		{"killCount 100", map[string]any{"killCount": 100}},
		{"gracePeriod seconds", map[string]any{"gracePeriod": 0}},
		{"gracePeriod a duration", map[string]any{"gracePeriod": "1m30s"}},
		{"durations", map[string]any{"cooldown": "24h", "minPodAge": "1h30m", "recoveryTimeout": "90s"}},
		{"every namespace with its exclusions", map[string]any{"scope": "cluster", "namespaces": []any{"*", "kube-system"}, "excludeNamespaces": []any{"vault"}}},
		{"days", map[string]any{"excludedDays": []any{"12-25", "2026-01-01"}}},
		{"owner kinds", map[string]any{"ownerKinds": []any{"Job", "Rollout"}}},
		{"an existing ServiceAccount", map[string]any{"serviceAccount": map[string]any{"create": false, "name": "chaos"}}},
		{"image by digest", map[string]any{"image": map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)}}},
		{"no election with one replica", map[string]any{"leaderElection": false, "replicas": 1}},
		{"election with one replica", map[string]any{"replicas": 1}},
		{"election with three replicas", map[string]any{"replicas": 3}},
		{"no PodDisruptionBudget", map[string]any{"podDisruptionBudget": map[string]any{"enabled": false}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Render(ch, c.values, testRelease); err != nil {
				t.Errorf("values %v refused: %v", c.values, err)
			}
		})
	}
}
