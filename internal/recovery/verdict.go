package recovery

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Status is what became of a kill's victim.
type Status string

// The verdicts a kill can get.
const (
	Recovered    Status = "recovered"
	NotRecovered Status = "not recovered"                // an alarm: the workload is still short after the timeout
	NotReplaced  Status = "not replaced (no controller)" // a bare pod: nothing recreates it
	Unknown      Status = "unknown"                      // the verdict could not be learnt; Why says why
)

// Milestone is how long after the kill a stage of the recovery was seen, if it was.
type Milestone struct {
	After   time.Duration // from the kill
	Reached bool          // false: the stage was not seen, and After means nothing
}

// String is how a verdict says it: "4.1 s", or to the millisecond under a second ("0.031 s"),
// where a replacement on a fast cluster is created.
func (m Milestone) String() string {
	d := m.After.Round(time.Millisecond)
	if d >= time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " s"
}

// Verdict is the verdict on one kill, sent from the recovery goroutine to the notifier.
type Verdict struct {
	Time        time.Time // the kill's tick, as its report has it
	Namespace   string
	Pod         string // the victim
	Workload    string // "Kind/name" of the workload followed (the victim's top controller)
	Status      Status
	Replacement string // the replacement pod, once one was seen
	Created     Milestone
	Ready       Milestone
	Full        Milestone
	Strength    string // "3/3": ready of desired, as last seen; empty when never seen
	Through     string // how it got back other than by its replacement: "a rollout to web-5c6d", "a scale from 3 to 2"
	Why         string // what is missing (not recovered), or why the verdict is unknown
	Timeout     time.Duration
	// UID is the victim's UID: which kill's Slack thread the verdict goes in.
	UID types.UID
}

// WorkloadName is the workload's name without its kind: "web".
func (v Verdict) WorkloadName() string {
	_, name, _ := strings.Cut(v.Workload, "/")
	return name
}

// Summary is the verdict in one line, as the log, the Event and Slack say it:
// "web lost web-7d9f-abc: replacement web-7d9f-xyz created in 0.3 s, Ready in 4.1 s, web back to 3/3 in 4.1 s".
func (v Verdict) Summary() string {
	if v.Status == NotReplaced {
		return fmt.Sprintf("%s was a bare pod: nothing will recreate it", v.Pod)
	}
	head := fmt.Sprintf("%s lost %s", v.WorkloadName(), v.Pod)
	var steps []string
	if v.Created.Reached {
		steps = append(steps, fmt.Sprintf("replacement %s created in %s", v.Replacement, v.Created))
	}
	if v.Ready.Reached {
		steps = append(steps, "Ready in "+v.Ready.String())
	}
	if v.Full.Reached {
		step := fmt.Sprintf("%s back to %s in %s", v.WorkloadName(), v.Strength, v.Full)
		if v.Through != "" {
			step += ", through " + v.Through
		}
		steps = append(steps, step)
	}
	text := head
	if len(steps) > 0 {
		text += ": " + strings.Join(steps, ", ")
	}
	if v.Why != "" {
		text += "; " + v.Why
	}
	return text
}
