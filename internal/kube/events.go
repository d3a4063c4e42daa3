package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// EventsAPI is the path of the events.k8s.io/v1 API.
const EventsAPI = "/apis/events.k8s.io/v1"

// ReportingController is the reportingController of every Event macaque writes (its kills', its
// skipped ticks', its verdicts'): a qualified name, as validation requires.
const ReportingController = "macaque"

// Event is the part of an events.k8s.io/v1 Event macaque writes.
type Event struct {
	APIVersion          string           `json:"apiVersion"`
	Kind                string           `json:"kind"`
	Metadata            EventMeta        `json:"metadata"`
	EventTime           metav1.MicroTime `json:"eventTime"`
	ReportingController string           `json:"reportingController"`
	ReportingInstance   string           `json:"reportingInstance"`
	Action              string           `json:"action"`
	Reason              string           `json:"reason"`
	Regarding           ObjectRef        `json:"regarding"`
	Related             *ObjectRef       `json:"related,omitempty"`
	Note                string           `json:"note"`
	Type                string           `json:"type"`
}

// EventMeta is an Event's metadata: a name unique per Event, in the namespace of its objects.
type EventMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// ObjectRef is the object an Event is about (regarding) or mentions (related).
type ObjectRef struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid,omitempty"`
}

// CreateEvent creates e; with dryRun the API server checks and authorizes it but stores nothing.
func (p *Client) CreateEvent(ctx context.Context, e Event, dryRun bool) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	req := p.client.Post().AbsPath(EventsAPI, "namespaces", e.Metadata.Namespace, "events").Body(body)
	if dryRun {
		req = req.Param("dryRun", "All")
	}
	return req.Do(ctx).Error()
}

// SeenEvent is the part of an events.k8s.io/v1 Event that a verdict quotes.
type SeenEvent struct {
	Type                string           `json:"type"`
	Reason              string           `json:"reason"`
	Note                string           `json:"note"`
	ReportingController string           `json:"reportingController"`
	EventTime           metav1.MicroTime `json:"eventTime"`
	Series              *struct {
		LastObservedTime metav1.MicroTime `json:"lastObservedTime"`
	} `json:"series"`
	// DeprecatedLastTimestamp is when an Event written through the core/v1 API (as most
	// controllers and the scheduler still do) was last seen; EventTime is then empty.
	DeprecatedLastTimestamp metav1.Time `json:"deprecatedLastTimestamp"`
}

// Last is when the Event was last seen, whichever API wrote it.
func (e SeenEvent) Last() time.Time {
	t := e.EventTime.Time
	if e.Series != nil && e.Series.LastObservedTime.After(t) {
		t = e.Series.LastObservedTime.Time
	}
	if e.DeprecatedLastTimestamp.After(t) {
		t = e.DeprecatedLastTimestamp.Time
	}
	return t
}

// maxEventsRead bounds the list of one object's Events: they are few, as recorders aggregate
// repeats into a series, and the latest is wanted, which a list cannot sort by.
const maxEventsRead = 500

// ListEvents lists the Events about the object uid in namespace.
func (p *Client) ListEvents(ctx context.Context, namespace string, uid types.UID) ([]SeenEvent, error) {
	var list struct {
		Items []SeenEvent `json:"items"`
	}
	body, err := p.client.Get().AbsPath(EventsAPI, "namespaces", namespace, "events").
		Param("fieldSelector", "regarding.uid="+string(uid)).Param("limit", strconv.Itoa(maxEventsRead)).
		DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode events: %w", err)
	}
	return list.Items, nil
}
