package cluster

import (
	"context"
	"fmt"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tokenLifetime outlives any test; the API server rejects requests for less
// than 10 minutes.
const tokenLifetime int64 = 3600

// TokenKubeconfig mints a token for the ServiceAccount through the
// TokenRequest API and writes a kubeconfig that authenticates with only that
// bearer token, with namespace as its default namespace. Whatever runs with
// it (the daemon under test, kubectl) gets exactly the ServiceAccount's RBAC
// permissions, as it would in a pod. The ServiceAccount must exist.
func (c *Cluster) TokenKubeconfig(ctx context.Context, namespace, serviceAccount string) (string, error) {
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(tokenLifetime)},
	}
	resp, err := c.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token for ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	path := c.layout.tokenKubeconfig(namespace, serviceAccount)
	if err := writeKubeconfig(path, c.Server, c.caPEM, tokenAuth(resp.Status.Token), namespace); err != nil {
		return "", fmt.Errorf("kubeconfig for ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	return path, nil
}
