package cluster_test

import (
	"strings"
	"testing"
)

// TestServerVersion checks the API server reports the Kubernetes release it
// was built from, as clients that adapt to the server version rely on.
func TestServerVersion(t *testing.T) {
	v, err := testCluster.Clientset.Discovery().ServerVersion()
	if err != nil {
		t.Fatalf("server version: %v", err)
	}
	if v.GitVersion != "v1.37.2" || v.Major != "1" || v.Minor != "37" {
		t.Errorf("server version = %s (major %q, minor %q), want v1.37.2", v.GitVersion, v.Major, v.Minor)
	}
	out, err := testCluster.Kubectl("version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Client Version: v1.37.2") || !strings.Contains(out, "Server Version: v1.37.2") {
		t.Errorf("kubectl version:\n%s", out)
	}
}
