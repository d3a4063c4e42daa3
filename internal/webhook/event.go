package webhook

import (
	"crypto/rand"
	"fmt"
	"time"
)

// The attributes every event macaque sends has in common.
const (
	// SpecVersion is the CloudEvents specification the events follow.
	SpecVersion = "1.0"
	// ContentType is the Content-Type of a POST in structured mode: the body is the whole event.
	ContentType = "application/cloudevents+json"
	// DataContentType is the media type of every event's data.
	DataContentType = "application/json"
)

// The types of the events macaque sends, reverse-DNS as the specification recommends.
const (
	// TypeKill is a kill the API server accepted: data is a Report whose outcome is killed.
	TypeKill = "dev.macaque.kill"
	// TypeTick is every other report of a tick (a dry run, nothing to kill, a guard that
	// passed every pick over, a pause, a failure...): data is a Report, its outcome says which.
	TypeTick = "dev.macaque.tick"
	// TypeVerdict is a kill's recovery verdict: data is a Verdict.
	TypeVerdict = "dev.macaque.verdict"
)

// Event is one CloudEvent as structured JSON mode writes it: the required attributes (id,
// source, specversion, type), the optional ones macaque always knows (time, datacontenttype,
// subject when there is a pod), and the data.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Time            time.Time `json:"time"` // RFC 3339, as encoding/json writes a time.Time
	DataContentType string    `json:"datacontenttype"`
	Subject         string    `json:"subject,omitempty"` // the pod; none for a tick that picked none
	Data            any       `json:"data"`
}

// New is an event of type typ about subject (a pod, or "") in source, with data, which
// happened at the time at (kept in UTC); id must be unique per event (NewID).
func New(id, typ, source, subject string, at time.Time, data any) Event {
	return Event{SpecVersion: SpecVersion, ID: id, Source: source, Type: typ, Time: at.UTC(),
		DataContentType: DataContentType, Subject: subject, Data: data}
}

// Source is the source of an event about namespace in cluster, a URI reference a receiver can
// filter on: /macaque/clusters/<cluster>/namespaces/<namespace>, without the cluster's part
// when it has no name (MACAQUE_CLUSTER_NAME empty), without the namespace's for a tick over
// several namespaces that picked no pod. Both are names macaque validated (letters, digits,
// '-', '_', '.'), so neither needs escaping.
func Source(cluster, namespace string) string {
	s := "/macaque"
	if cluster != "" {
		s += "/clusters/" + cluster
	}
	if namespace != "" {
		s += "/namespaces/" + namespace
	}
	return s
}

// NewID is a random UUID (version 4): unique per event, whichever replica or restart sent it.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
