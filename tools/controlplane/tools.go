//go:build tools

// Package tools pins the Kubernetes control-plane commands that
// hack/controlplane.sh builds, so `go build` of their import paths resolves
// through this module's go.mod and go.sum.
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
