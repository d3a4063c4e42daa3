package kube

import (
	"testing"

	"github.com/macaque-chaos/macaque/internal/testkit"

	"github.com/macaque-chaos/macaque/internal/fakeapi"
	corev1 "k8s.io/api/core/v1"
)

// TestContainerWhy checks what a not-ready container's status says of it.
func TestContainerWhy(t *testing.T) {
	status := func(edit func(*corev1.ContainerStatus)) containerStatus {
		c := corev1.ContainerStatus{Name: "app"}
		edit(&c)
		return testkit.Served[containerStatus](t, c)
	}
	tests := []struct {
		name string
		c    containerStatus
		want string
	}{
		{"ready says nothing", status(func(c *corev1.ContainerStatus) {
			c.Ready, c.RestartCount = true, 3
			c.State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}
		}), ""},
		{"not ready, nothing to say", status(func(*corev1.ContainerStatus) {}), ""},
		{"image not pulled", status(func(c *corev1.ContainerStatus) {
			c.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}
		}), "app: ImagePullBackOff"},
		{"exited, with an earlier exit not repeated", status(func(c *corev1.ContainerStatus) {
			c.RestartCount = 1
			c.State.Terminated = &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled"}
			c.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 2}
		}), "app: exited 137 (OOMKilled), restarted 1 time"},
		{"restarting, its last exit without a reason", status(func(c *corev1.ContainerStatus) {
			c.RestartCount = 2
			c.State.Running = &corev1.ContainerStateRunning{}
			c.LastTerminationState.Terminated = &corev1.ContainerStateTerminated{ExitCode: 1}
		}), "app: restarted 2 times, last exit 1 (no reason given)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.why(); got != tt.want {
				t.Errorf("why() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestWatchedPodReady: Ready is the Ready condition's status, whatever the others say.
func TestWatchedPodReady(t *testing.T) {
	type cond = corev1.PodCondition
	for _, tt := range []struct {
		name  string
		conds []cond
		want  bool
	}{
		{"no conditions", nil, false},
		{"ready", []cond{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}, true},
		{"scheduled, not ready", []cond{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: corev1.ConditionFalse}}, false},
		{"ready, a condition before it false", []cond{{Type: corev1.ContainersReady, Status: corev1.ConditionFalse}, {Type: corev1.PodReady, Status: corev1.ConditionTrue}}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := fakeapi.Pod(testNamespace, "web-1", nil)
			p.Status.Conditions = tt.conds
			if got := testkit.Served[WatchedPod](t, p).ready(); got != tt.want {
				t.Errorf("ready() = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestWatchQueryString: an error names the watch by its resource, namespace and selector.
func TestWatchQueryString(t *testing.T) {
	pods := WatchQuery{Prefix: "/api/v1", Namespace: "shop", Resource: "pods", LabelSelector: "app=web"}
	ctl := WatchQuery{Prefix: "/apis/apps/v1", Namespace: "shop", Resource: "deployments", FieldSelector: "metadata.name=web"}
	if got, want := pods.String(), `pods in "shop" (app=web)`; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	if got, want := ctl.String(), `deployments in "shop" (metadata.name=web)`; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestRVBefore: resourceVersions compared as numbers when both are; otherwise not older.
func TestRVBefore(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want bool
	}{
		{"9", "10", true}, {"10", "9", false}, {"10", "10", false},
		{"x", "10", false}, {"9", "x", false}, {"", "10", false}, {"9", "", false},
	} {
		if got := RVBefore(tt.a, tt.b); got != tt.want {
			t.Errorf("rvBefore(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}
