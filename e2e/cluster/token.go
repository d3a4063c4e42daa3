package cluster

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

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
	token, err := c.serviceAccountToken(ctx, namespace, serviceAccount)
	if err != nil {
		return "", err
	}
	path := c.layout.tokenKubeconfig(namespace, serviceAccount)
	if err := writeKubeconfig(path, c.Server, c.caPEM, tokenAuth(token), namespace); err != nil {
		return "", fmt.Errorf("kubeconfig for ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	return path, nil
}

// ServiceAccountFiles writes into dir what the kubelet mounts into a pod at
// /var/run/secrets/kubernetes.io/serviceaccount: a fresh token for the
// ServiceAccount, the cluster's CA as ca.crt, and the namespace. With them and
// InClusterEnv, a process finds the API server the way it would in a pod.
func (c *Cluster) ServiceAccountFiles(ctx context.Context, namespace, serviceAccount, dir string) error {
	token, err := c.serviceAccountToken(ctx, namespace, serviceAccount)
	if err != nil {
		return err
	}
	for name, data := range map[string][]byte{"token": []byte(token), "ca.crt": c.caPEM, "namespace": []byte(namespace)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("service account files: %w", err)
		}
	}
	return nil
}

// InClusterEnv is the pair of variables the kubelet sets in every pod for the
// kubernetes Service, pointing at this API server.
func (c *Cluster) InClusterEnv() ([]string, error) {
	u, err := url.Parse(c.Server)
	if err != nil {
		return nil, fmt.Errorf("API server URL: %w", err)
	}
	return []string{"KUBERNETES_SERVICE_HOST=" + u.Hostname(), "KUBERNETES_SERVICE_PORT=" + u.Port()}, nil
}

// serviceAccountToken mints a token through the TokenRequest API.
func (c *Cluster) serviceAccountToken(ctx context.Context, namespace, serviceAccount string) (string, error) {
	req := &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(tokenLifetime)},
	}
	resp, err := c.Clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount, req, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("request token for ServiceAccount %s/%s: %w", namespace, serviceAccount, err)
	}
	return resp.Status.Token, nil
}
