package cluster_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestDeploymentReplacesDeletedPod proves the parts a chaos monkey relies on:
// kwok runs pods bound to its node, and the real Deployment and ReplicaSet
// controllers replace a pod that is killed.
func TestDeploymentReplacesDeletedPod(t *testing.T) {
	ns := testCluster.Namespace(t)
	cs := testCluster.Clientset
	labels := map[string]string{"app": "victim"}
	deploy := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "victim"},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(3)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					// No scheduler runs: bind straight to the kwok node.
					NodeName:   testCluster.NodeName,
					Containers: []corev1.Container{{Name: "app", Image: "example.invalid/victim:1"}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), deploy, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create deployment: %v", err)
	}

	readyPods := func(ctx context.Context) ([]corev1.Pod, error) {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=victim"})
		if err != nil {
			return nil, err
		}
		var ready []corev1.Pod
		for _, p := range pods.Items {
			if cluster.PodReady(&p) {
				ready = append(ready, p)
			}
		}
		return ready, nil
	}
	threeReady := func(ctx context.Context) ([]corev1.Pod, error) {
		ready, err := readyPods(ctx)
		if err != nil {
			return nil, err
		}
		if len(ready) != 3 {
			return nil, fmt.Errorf("%d of 3 pods ready", len(ready))
		}
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "victim", metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		if d.Status.ReadyReplicas != 3 {
			return nil, fmt.Errorf("deployment reports %d ready replicas", d.Status.ReadyReplicas)
		}
		return ready, nil
	}

	var before []corev1.Pod
	cluster.Eventually(t, time.Minute, "3 ready pods", func(ctx context.Context) (err error) {
		before, err = threeReady(ctx)
		return err
	})

	victim := before[0]
	if err := cs.CoreV1().Pods(ns).Delete(t.Context(), victim.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete pod %s: %v", victim.Name, err)
	}
	cluster.Eventually(t, time.Minute, "deleted pod replaced", func(ctx context.Context) error {
		after, err := threeReady(ctx)
		if err != nil {
			return err
		}
		for _, p := range after {
			if p.UID == victim.UID {
				return fmt.Errorf("deleted pod %s still ready", victim.Name)
			}
		}
		return nil
	})
	// kwok finishes the deletion (no kubelet would): the pod object is gone.
	cluster.Eventually(t, time.Minute, "deleted pod gone", func(ctx context.Context) error {
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.UID == victim.UID {
				return fmt.Errorf("pod %s still exists (deletionTimestamp %v)", p.Name, p.DeletionTimestamp)
			}
		}
		return nil
	})
}
