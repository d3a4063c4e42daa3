package cluster

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// createNode registers the fake node that kwok brings to Ready. It looks
// like a kubelet-registered Linux node so workloads with the usual node
// selectors fit on it.
func (c *Cluster) createNode(ctx context.Context) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        c.NodeName,
			Annotations: map[string]string{kwokNodeAnnotation: kwokNodeValue},
			Labels: map[string]string{
				"type":                   "kwok",
				"kubernetes.io/hostname": c.NodeName,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"kubernetes.io/role":     "agent",
			},
		},
	}
	return c.poll(ctx, "node "+c.NodeName+" to be created", func(ctx context.Context) (bool, error) {
		_, err := c.Clientset.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return false, fmt.Errorf("create node: %w", err)
		}
		return true, nil
	})
}

// waitNodeReady waits for kwok to report the node Ready, which also proves
// kwok runs and loaded its stages.
func (c *Cluster) waitNodeReady(ctx context.Context) error {
	return c.poll(ctx, "node "+c.NodeName+" Ready (kwok)", func(ctx context.Context) (bool, error) {
		node, err := c.Clientset.CoreV1().Nodes().Get(ctx, c.NodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, cond := range node.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				return cond.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}
