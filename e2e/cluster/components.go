package cluster

import (
	_ "embed"
	"fmt"
	"strconv"
)

// kwokStages holds the kwok Stage configs (see kwok-stages.yaml); kwok
// simulates nothing without them.
//
//go:embed kwok-stages.yaml
var kwokStages string

// Cluster-wide settings shared by the components and the certificates.
const (
	serviceCIDR = "10.96.0.0/12"
	serviceIP   = "10.96.0.1" // first address of serviceCIDR: the kubernetes Service
	// podCIDR is kwok's pool of pod addresses. A /14 (262,142 addresses) holds the bench's
	// 100,000-pod row with its replacements; past a /16's 65,534, kwok's pool hands out
	// addresses outside its range rather than failing.
	podCIDR              = "10.244.0.0/14"
	serviceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

	// kwokNodeAnnotation marks the nodes kwok fakes; kwok manages only
	// nodes carrying it, so a test can add real-looking nodes it controls.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
	kwokNodeValue      = "fake"

	// nodeLeaseSeconds is how long a kwok node lease lasts; kwok renews it
	// and the node lifecycle controller reads it as the node's heartbeat.
	nodeLeaseSeconds = 40
)

// etcdArgs runs a single-member etcd on loopback. Durability is pointless for
// a throwaway cluster, so fsync is off to keep writes fast on slow disks.
func etcdArgs(l layout, p ports) []string {
	return []string{
		"--name=e2e",
		"--data-dir=" + l.etcdData(),
		"--listen-client-urls=" + p.etcdClientURL(),
		"--advertise-client-urls=" + p.etcdClientURL(),
		"--listen-peer-urls=" + p.etcdPeerURL(),
		"--initial-advertise-peer-urls=" + p.etcdPeerURL(),
		"--initial-cluster=e2e=" + p.etcdPeerURL(),
		"--initial-cluster-state=new",
		"--unsafe-no-fsync",
		// The bench's cluster-wide case holds 100,000 pods: about 10 KB each in the database
		// with the revisions not yet compacted, near etcd's 2 GiB default quota, past which
		// every write fails. 8 GiB is etcd's largest recommended; the file only grows as used.
		"--quota-backend-bytes=8589934592",
		"--log-level=warn",
	}
}

// apiServerArgs runs kube-apiserver with the authentication and
// authorization of a real cluster: client certificates from one CA,
// ServiceAccount tokens signed with the RSA key, and Node plus RBAC
// authorization, so permission bugs in the daemon show up in e2e tests.
func apiServerArgs(l layout, p ports) []string {
	return []string{
		"--advertise-address=127.0.0.1",
		// The endpoint reconcilers refuse a loopback advertise address, and
		// nothing here runs in a pod that would reach the API server through
		// the kubernetes Service, so its endpoints are left unmanaged.
		"--endpoint-reconciler-type=none",
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.apiServer),
		"--etcd-servers=" + p.etcdClientURL(),
		"--tls-cert-file=" + l.pki("apiserver.crt"),
		"--tls-private-key-file=" + l.pki("apiserver.key"),
		"--client-ca-file=" + l.pki("ca.crt"),
		"--authorization-mode=Node,RBAC",
		"--service-account-issuer=" + serviceAccountIssuer,
		"--service-account-key-file=" + l.pki("sa.key"),
		"--service-account-signing-key-file=" + l.pki("sa.key"),
		"--service-cluster-ip-range=" + serviceCIDR,
		"--allow-privileged=true",
		"--profiling=false",
	}
}

// controllerManagerArgs runs every default controller (Deployment,
// ReplicaSet, namespace, garbage collector, ServiceAccount, root CA
// publisher, node lifecycle...) as in a real cluster, each with its own
// ServiceAccount credentials. Its HTTPS endpoint is off: the harness checks it
// through the objects it creates, and no port can collide.
func controllerManagerArgs(l layout, qps int) []string {
	return []string{
		"--kubeconfig=" + l.controllerKubeconfig(),
		"--secure-port=0",
		"--controllers=*",
		"--leader-elect=false",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file=" + l.pki("sa.key"),
		"--root-ca-file=" + l.pki("ca.crt"),
		"--cluster-signing-cert-file=" + l.pki("ca.crt"),
		"--cluster-signing-key-file=" + l.pki("ca.key"),
		"--profiling=false",
		// Each controller gets its own ServiceAccount client; the default
		// 20 QPS throttles start-up by seconds for no benefit here (see
		// Options.ControllerQPS).
		"--kube-api-qps=" + strconv.Itoa(qps),
		"--kube-api-burst=" + strconv.Itoa(2*qps),
	}
}

// kwokArgs runs kwok in place of kubelets: it makes the annotated nodes
// Ready, keeps their leases fresh, and plays the pods bound to them through
// the stages in kwok-stages.yaml. It serves no port (no --server-address).
func kwokArgs(l layout) []string {
	return []string{
		"--kubeconfig=" + l.kwokKubeconfig(),
		"--config=" + l.kwokStages(),
		fmt.Sprintf("--manage-nodes-with-annotation-selector=%s=%s", kwokNodeAnnotation, kwokNodeValue),
		"--node-lease-duration-seconds=" + strconv.Itoa(nodeLeaseSeconds),
		"--cidr=" + podCIDR,
	}
}

// kwokEnv points kwok's work dir into the temp dir, so a ~/.kwok/kwok.yaml on
// the machine cannot change what the tests see.
func kwokEnv(l layout) []string {
	return []string{"KWOK_WORKDIR=" + l.kwokWorkDir()}
}
