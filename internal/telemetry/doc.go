// Package telemetry is what macaque tells about itself: its Prometheus metrics, the liveness
// heartbeats of its goroutines, its readiness, and the HTTP server that serves them on
// MACAQUE_HTTP_ADDR (/metrics, /healthz, /readyz). It records plain facts (a namespace, an
// outcome's name, whether a tick succeeded) and judges none of them: what counts as a success is
// the killer's knowledge, and the checks behind readiness are the caller's. Every recording method
// is safe for concurrent use, and does nothing on a nil receiver, so a goroutine built without
// telemetry (in tests) needs no stub.
package telemetry
