// Package kube is macaque's one Kubernetes API client and the wire types it reads and writes:
// pods (listed as a Table, read back as JSON), the workloads above them, watches, Events,
// ConfigMaps, access reviews and evictions, and the classification of the API server's errors
// (gone, RBAC's denial, an answer that leaves the outcome unknown, a PodDisruptionBudget's
// refusal). It is the one place a change of the Kubernetes API lands.
//
// It is hand-written over client-go's REST client rather than client-go's typed clients, which
// would double the binary. Each consumer declares the few methods it calls as an interface of
// its own, and *Client satisfies them all.
package kube
