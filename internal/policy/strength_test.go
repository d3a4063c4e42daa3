package policy

import (
	"encoding/json"
	"testing"

	"github.com/macaque-chaos/macaque/internal/kube"
)

// TestStrength: why each kind of workload is not at full strength, judged as the guard judges
// it before a kill and the recovery after: its latest change observed, every desired replica
// ready, and no rollout in progress by its kind's own rule.
func TestStrength(t *testing.T) {
	for _, tt := range []struct {
		name string
		kind kube.WorkloadKind
		obj  string // the workload as the API server serves it, name "w"
		want string
	}{
		{"a change not observed", kube.KindDeployment, `{"metadata":{"generation":2},"spec":{"replicas":3},"status":{"observedGeneration":1,"readyReplicas":3}}`, "w mid-rollout: its latest change is not yet observed"},
		{"a replica not ready", kube.KindReplicaSet, `{"spec":{"replicas":3},"status":{"readyReplicas":2,"availableReplicas":2}}`, "w: 2/3 ready"},
		{"replicas unset: one", kube.KindReplicaSet, `{"spec":{},"status":{"readyReplicas":1,"availableReplicas":1}}`, ""},
		{"a ReplicaSet's replica not yet available", kube.KindReplicaSet, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"availableReplicas":2}}`, "w: 2/3 available"},
		{"a ReplicationController at full strength", kube.KindRC, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"availableReplicas":3}}`, ""},
		{"a ReplicaSet whose revisions differ: no StatefulSet rule", kube.KindReplicaSet, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"availableReplicas":3,"currentRevision":"a","updateRevision":"b"}}`, ""},
		{"a Deployment stuck past its deadline", kube.KindDeployment, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"updatedReplicas":3,"replicas":3,"availableReplicas":3,"conditions":[{"type":"Progressing","reason":"ProgressDeadlineExceeded"}]}}`, "w mid-rollout: stuck past its progress deadline"},
		{"a Deployment's pods not all updated", kube.KindDeployment, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"updatedReplicas":2,"replicas":3,"availableReplicas":3}}`, "w mid-rollout: 2/3 updated"},
		{"a Deployment's old pods still running", kube.KindDeployment, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"updatedReplicas":3,"replicas":4,"availableReplicas":3}}`, "w mid-rollout: 1 old pods still running"},
		{"a Deployment's updated pod not yet available", kube.KindDeployment, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"updatedReplicas":3,"replicas":3,"availableReplicas":2}}`, "w: 2/3 available"},
		{"a Deployment with one unavailable", kube.KindDeployment, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"updatedReplicas":3,"replicas":3,"availableReplicas":3,"unavailableReplicas":1}}`, "w: 1 unavailable"},
		{"a Deployment at full strength, its rollout done", kube.KindDeployment, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"updatedReplicas":3,"replicas":3,"availableReplicas":3,"conditions":[{"type":"Available","reason":"ProgressDeadlineExceeded"},{"type":"Progressing","reason":"NewReplicaSetAvailable"}]}}`, ""},
		{"a StatefulSet's revision not on every pod", kube.KindStatefulSet, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"currentRevision":"w-1","updateRevision":"w-2"}}`, "w mid-rollout: revision w-2 not yet on every pod"},
		{"a StatefulSet not yet available is the guard's to see by its revision", kube.KindStatefulSet, `{"spec":{"replicas":3},"status":{"readyReplicas":3,"availableReplicas":2,"currentRevision":"w-1","updateRevision":"w-1"}}`, ""},
		{"a StatefulSet OnDelete: revisions may differ", kube.KindStatefulSet, `{"spec":{"replicas":3,"updateStrategy":{"type":"OnDelete"}},"status":{"readyReplicas":3,"currentRevision":"w-1","updateRevision":"w-2"}}`, ""},
		{"a partitioned StatefulSet short of its updates", kube.KindStatefulSet, `{"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}},"status":{"readyReplicas":3,"updatedReplicas":1,"currentRevision":"w-1","updateRevision":"w-2"}}`, "w mid-rollout: 1/2 updated"},
		{"a partitioned StatefulSet updated above it", kube.KindStatefulSet, `{"spec":{"replicas":3,"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}},"status":{"readyReplicas":3,"updatedReplicas":2,"currentRevision":"w-1","updateRevision":"w-2"}}`, ""},
		{"a DaemonSet's pod not ready", kube.KindDaemonSet, `{"status":{"desiredNumberScheduled":3,"numberReady":2}}`, "w: 2/3 ready"},
		{"a DaemonSet mid-rollout", kube.KindDaemonSet, `{"status":{"desiredNumberScheduled":3,"numberReady":3,"updatedNumberScheduled":2,"numberAvailable":3}}`, "w mid-rollout: 2/3 updated"},
		{"a DaemonSet OnDelete: not updated is no rollout", kube.KindDaemonSet, `{"spec":{"updateStrategy":{"type":"OnDelete"}},"status":{"desiredNumberScheduled":3,"numberReady":3,"updatedNumberScheduled":2,"numberAvailable":3}}`, ""},
		{"a DaemonSet's pod not yet available", kube.KindDaemonSet, `{"status":{"desiredNumberScheduled":3,"numberReady":3,"updatedNumberScheduled":3,"numberAvailable":2}}`, "w: 2/3 available"},
		{"a DaemonSet with one unavailable", kube.KindDaemonSet, `{"status":{"desiredNumberScheduled":3,"numberReady":3,"updatedNumberScheduled":3,"numberAvailable":3,"numberUnavailable":1}}`, "w: 1 unavailable"},
		{"a DaemonSet at full strength", kube.KindDaemonSet, `{"status":{"desiredNumberScheduled":3,"numberReady":3,"updatedNumberScheduled":3,"numberAvailable":3}}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var w kube.Workload
			if err := json.Unmarshal([]byte(tt.obj), &w); err != nil {
				t.Fatal(err)
			}
			w.Metadata.Name = "w"
			if got := Strength(tt.kind, w); got != tt.want {
				t.Errorf("Strength = %q, want %q", got, tt.want)
			}
		})
	}
}
