package cluster_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/macaque-chaos/macaque/e2e/cluster"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// TestTokenKubeconfigAppliesRBAC proves a TokenKubeconfig carries exactly the
// ServiceAccount's permissions: nothing until a Role grants them. That is
// what lets e2e tests catch a daemon whose RBAC manifest is missing a verb.
func TestTokenKubeconfigAppliesRBAC(t *testing.T) {
	ns := testCluster.Namespace(t)
	admin := testCluster.Clientset
	const sa = "macaque"
	if _, err := admin.CoreV1().ServiceAccounts(ns).Create(t.Context(), &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: sa},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create ServiceAccount: %v", err)
	}

	path, err := testCluster.TokenKubeconfig(t.Context(), ns, sa)
	if err != nil {
		t.Fatal(err)
	}
	restConfig, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load token kubeconfig: %v", err)
	}
	if restConfig.CertData != nil || restConfig.KeyData != nil || restConfig.BearerToken == "" {
		t.Fatalf("token kubeconfig must authenticate with a bearer token only")
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		t.Fatalf("client from token kubeconfig: %v", err)
	}

	_, err = client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("listing pods without RBAC: got %v, want Forbidden", err)
	}
	// kubectl sees the same, and takes the namespace from the kubeconfig.
	out, err := testCluster.KubectlAs(t.Context(), path, "get", "pods")
	if err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Fatalf("kubectl get pods without RBAC: got %q, %v; want Forbidden", out, err)
	}
	if !strings.Contains(err.Error(), "system:serviceaccount:"+ns+":"+sa) {
		t.Errorf("kubectl error does not name the ServiceAccount: %v", err)
	}

	grantPodList(t, ns, sa)
	cluster.Eventually(t, 30*time.Second, "listing pods after the RoleBinding", func(ctx context.Context) error {
		_, err := client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err
	})
	if _, err := testCluster.KubectlAs(t.Context(), path, "get", "pods"); err != nil {
		t.Errorf("kubectl get pods with RBAC: %v", err)
	}
	// The Role is namespaced: other namespaces stay closed.
	if _, err := client.CoreV1().Pods(metav1.NamespaceSystem).List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("listing pods in kube-system: got %v, want Forbidden", err)
	}
}

// grantPodList lets the ServiceAccount list pods in its namespace.
func grantPodList(t *testing.T, ns, sa string) {
	t.Helper()
	rbac := testCluster.Clientset.RbacV1()
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-lister"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"list"}}},
	}
	if _, err := rbac.Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Role: %v", err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "pod-lister"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: ns}},
	}
	if _, err := rbac.RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create RoleBinding: %v", err)
	}
}
