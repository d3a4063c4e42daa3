package webhook

import "time"

// Report is the data of a kill or tick event: one report of a tick, as the log line and the
// Slack message have it. Every field is always present (null or empty when it does not
// apply), so a receiver can rely on the shape.
type Report struct {
	Cluster    string     `json:"cluster"`    // MACAQUE_CLUSTER_NAME; "" when unset
	Outcome    string     `json:"outcome"`    // killed, dry-run, no candidates, not found, skipped, blocked, paused, forbidden, denied, unknown, error
	Mode       string     `json:"mode"`       // delete or evict
	Scope      string     `json:"scope"`      // the namespaces in scope: shop, shop,cart, or * (except ...)
	Namespace  string     `json:"namespace"`  // the victim's; for a tick without one, the scope's only namespace, or ""
	Selector   string     `json:"selector"`   // MACAQUE_SELECTOR; "" for every pod
	Pod        string     `json:"pod"`        // the victim, or ""
	UID        string     `json:"uid"`        // the victim's UID, or ""
	Owner      string     `json:"owner"`      // Kind/name of the victim's controller; "" for a bare pod
	Node       string     `json:"node"`       // the victim's node
	Candidates int        `json:"candidates"` // pods in scope when the tick listed them
	Tick       time.Time  `json:"tick"`       // the tick's scheduled time
	Deleted    *time.Time `json:"deleted"`    // when the API server accepted the kill; null unless killed
	Note       string     `json:"note"`       // a fact beside the outcome (a kill confirmed by a read-back...)
	Passed     []string   `json:"passed"`     // picks passed over first, "namespace/pod: why" each; [] for none
	// KilledBefore counts the victims the tick killed before the pick a failure report is about.
	KilledBefore int    `json:"killed_before"`
	Resumed      string `json:"resumed"` // on the first tick after a pause, how it ended
	Error        string `json:"error"`   // why, for a failure
}

// Verdict is the data of a verdict event: a kill's recovery, as the verdict's log line has it.
type Verdict struct {
	Cluster     string    `json:"cluster"`     // MACAQUE_CLUSTER_NAME; "" when unset
	Verdict     string    `json:"verdict"`     // recovered, not recovered, not replaced (no controller), unknown
	Namespace   string    `json:"namespace"`   //
	Pod         string    `json:"pod"`         // the victim
	UID         string    `json:"uid"`         // the victim's UID, as its kill event's data has it
	Workload    string    `json:"workload"`    // Kind/name of the workload followed; "" for a bare pod
	Replacement string    `json:"replacement"` // the replacement pod, once seen
	Tick        time.Time `json:"tick"`        // the kill's tick
	// The seconds from the kill to each stage of the recovery; null when it was not seen.
	CreatedSeconds      *float64 `json:"created_seconds"`
	ReadySeconds        *float64 `json:"ready_seconds"`
	FullStrengthSeconds *float64 `json:"full_strength_seconds"`
	Strength            string   `json:"strength"`        // ready/desired as last seen: 3/3
	Through             string   `json:"through"`         // how it got back other than by its replacement (a rollout, a scale)
	Why                 string   `json:"why"`             // what is missing, or why the verdict is unknown
	TimeoutSeconds      float64  `json:"timeout_seconds"` // MACAQUE_RECOVERY_TIMEOUT
	Summary             string   `json:"summary"`         // the verdict in one line, as Slack says it
}
