package cluster

import (
	"fmt"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// contextName names the single cluster, user and context in every
// kubeconfig the harness writes.
const contextName = "macaque-e2e"

// writeKubeconfig writes a self-contained kubeconfig for server that trusts
// caPEM and authenticates with auth, with namespace as the default namespace
// when it is not empty. Everything is embedded so the file can be handed to
// kubectl, kwok or the daemon under test without the files next to it.
func writeKubeconfig(path, server string, caPEM []byte, auth *clientcmdapi.AuthInfo, namespace string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[contextName] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[contextName] = auth
	cfg.Contexts[contextName] = &clientcmdapi.Context{Cluster: contextName, AuthInfo: contextName, Namespace: namespace}
	cfg.CurrentContext = contextName
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// certAuth authenticates with a client certificate.
func certAuth(kp *keyPair) *clientcmdapi.AuthInfo {
	return &clientcmdapi.AuthInfo{ClientCertificateData: kp.certPEM, ClientKeyData: kp.keyPEM}
}

// tokenAuth authenticates with nothing but a bearer token, so the API server
// applies the token owner's RBAC permissions.
func tokenAuth(token string) *clientcmdapi.AuthInfo {
	return &clientcmdapi.AuthInfo{Token: token}
}
