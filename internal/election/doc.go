// Package election elects one leader among macaque's replicas on a coordination.k8s.io/v1
// Lease, so that two replicas keep the chaos going through a drain without ever both killing.
//
// It runs the algorithm of client-go's tools/leaderelection (a holder, a lease duration
// counted from the renewal a replica last saw, renewals that give up before the lease can run
// out, a release on a clean stop) on macaque's own API client: client-go's lock pulls in the
// typed clients, which made the binary twice its size (40.1 MB against 19.9 MB, measured
// 2026-12-07). One thing more than client-go: Hold, which the killer asks before every kill, says whether the lease outlasts
// that kill as the leader counts it (from the start of its last successful renewal), so a
// replica whose renewals fail, or that was frozen past its lease, kills nothing.
package election
