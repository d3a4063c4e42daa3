// Package recovery is macaque's recovery verdict: a kill in, a verdict out. After each kill the
// API server accepted, the Follower follows the victim's controller until the workload is back
// at full strength, or MACAQUE_RECOVERY_TIMEOUT (from the kill) has passed, and says how long
// after the kill each step took (the replacement created, Ready, the workload back at full
// strength), from the API server's own timestamps; the notifier posts the Verdict in the kill's
// Slack thread, and an Event on the workload and the metrics record it.
//
// It follows with watches started from the resourceVersion of the kill, never with a list, so
// that no list of the controller's pods is ever held: memory stays flat however many pods it
// has, and each watch event is decoded on its own into a small struct (follow.go). The follows
// in a namespace share its watches, one of its pods and one of each workload kind, each event
// handed to the follows it concerns (feeds.go): a hundred kills a tick cost two watches, not
// two hundred. The new pods of a workload are matched to its kills one to one (claims.go).
//
// It reads the cluster through the few methods of API, writes its Event through EventWriter and
// tells Observer its measures: interfaces of its own, which *kube.Client and *telemetry.Metrics
// satisfy.
package recovery
