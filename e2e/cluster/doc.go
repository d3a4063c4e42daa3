// Package cluster runs a real Kubernetes control plane on the test machine
// for macaque's end-to-end tests: etcd, kube-apiserver (client-certificate and
// ServiceAccount-token authentication, Node+RBAC authorization) and
// kube-controller-manager built from source by hack/controlplane.sh, plus
// kwok faking a Ready node whose pods it plays as Running and Ready. There is
// no kubelet, no container runtime and no scheduler: pods are bound with
// spec.nodeName, and everything the daemon talks to (the API, RBAC,
// Deployments replacing killed pods, garbage collection) is the real thing.
//
// Start and Stop manage one control plane; ForTest ties one to a test and
// RunMain shares one among a package's tests. Every component runs in its
// own process group and is SIGKILLed by the kernel if the test binary dies,
// so an interrupted test run leaves no process behind; a dir left behind is
// removed by the next Start.
package cluster
