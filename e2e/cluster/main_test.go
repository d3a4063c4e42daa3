package cluster_test

import (
	"os"
	"testing"

	"github.com/macaque-chaos/macaque/e2e/cluster"
)

// testCluster is the control plane shared by the tests of this package.
var testCluster *cluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(cluster.RunMain(m, cluster.Options{}, &testCluster))
}
