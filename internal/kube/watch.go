package kube

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// WatchQuery is one collection watched: pods by label selector, or a workload by name.
type WatchQuery struct {
	Prefix, Namespace, Resource  string // /api/v1, shop, pods
	LabelSelector, FieldSelector string
}

// String names the watch in an error.
func (q WatchQuery) String() string {
	sel := q.LabelSelector
	if q.FieldSelector != "" {
		sel = q.FieldSelector
	}
	return fmt.Sprintf("%s in %q (%s)", q.Resource, q.Namespace, sel)
}

// WatchEvent is one event of a watch, decoded: a pod or a workload, or the error that ended it.
type WatchEvent struct {
	Kind     string // ADDED, MODIFIED, DELETED; kindExpired, kindReread
	Pod      *WatchedPod
	Workload *Workload
	MinReady time.Duration // the workload's spec.minReadySeconds
	Err      error
}

// WatchedPod is the part of a pod a recovery reads.
type WatchedPod struct {
	Metadata struct {
		Name              string            `json:"name"`
		UID               types.UID         `json:"uid"`
		ResourceVersion   string            `json:"resourceVersion"`
		CreationTimestamp metav1.Time       `json:"creationTimestamp"` // to the second
		OwnerReferences   []OwnerRef        `json:"ownerReferences"`
		Labels            map[string]string `json:"labels"` // a recovery's shared watch tells its workload's pods by them
	} `json:"metadata"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type               string      `json:"type"`
			Status             string      `json:"status"`
			Reason             string      `json:"reason"`
			Message            string      `json:"message"`
			LastTransitionTime metav1.Time `json:"lastTransitionTime"` // to the second
		} `json:"conditions"`
		ContainerStatuses []containerStatus `json:"containerStatuses"`
	} `json:"status"`
}

// containerStatus is the part of a container's status that says why it is not ready.
type containerStatus struct {
	Name         string `json:"name"`
	Ready        bool   `json:"ready"`
	RestartCount int32  `json:"restartCount"`
	State        struct {
		Waiting *struct {
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"waiting"`
		Terminated *containerExit `json:"terminated"`
	} `json:"state"`
	LastState struct {
		Terminated *containerExit `json:"terminated"`
	} `json:"lastState"`
}

// containerExit is how a container ended, now or the last time it ran.
type containerExit struct {
	Reason   string `json:"reason"`
	ExitCode int32  `json:"exitCode"`
}

// String is "1 (Error)".
func (e containerExit) String() string {
	return fmt.Sprintf("%d (%s)", e.ExitCode, cmp.Or(e.Reason, "no reason given"))
}

// why says what keeps the container from being ready, "" if nothing it reports does:
// "app: CrashLoopBackOff (back-off 5m0s restarting failed container), restarted 6 times, last
// exit 1 (Error)".
func (c containerStatus) why() string {
	if c.Ready {
		return ""
	}
	var parts []string
	if w := c.State.Waiting; w != nil && w.Reason != "" {
		parts = append(parts, w.Reason)
		if w.Message != "" {
			parts[0] += " (" + w.Message + ")"
		}
	}
	if t := c.State.Terminated; t != nil {
		parts = append(parts, "exited "+t.String())
	}
	if c.RestartCount > 0 {
		times := "times"
		if c.RestartCount == 1 {
			times = "time"
		}
		parts = append(parts, fmt.Sprintf("restarted %d %s", c.RestartCount, times))
	}
	if t := c.LastState.Terminated; t != nil && c.State.Terminated == nil {
		parts = append(parts, "last exit "+t.String())
	}
	if len(parts) == 0 {
		return ""
	}
	return c.Name + ": " + strings.Join(parts, ", ")
}

// ready says whether the pod's Ready condition is True.
func (p WatchedPod) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// ReadySince says whether the pod is Ready and since when, as its Ready condition says (zero
// when it does not).
func (p WatchedPod) ReadySince() (time.Time, bool) {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.LastTransitionTime.Time, c.Status == "True"
		}
	}
	return time.Time{}, false
}

// Why says what keeps the pod from being Ready: "web-7d9f-xyz is Pending: 0/1 nodes are
// available: ...", from the first of its conditions that is not True and says why, then each
// container not ready that says why.
func (p WatchedPod) Why() string {
	text := fmt.Sprintf("%s is %s", p.Metadata.Name, cmp.Or(p.Status.Phase, "Pending"))
	for _, c := range p.Status.Conditions {
		if c.Status != "True" && (c.Message != "" || c.Reason != "") {
			text += ": " + cmp.Or(c.Message, c.Reason)
			break
		}
	}
	// The conditions say which containers are not ready; their statuses say why (a crash
	// loop, an image that cannot be pulled).
	for _, c := range p.Status.ContainerStatuses {
		if w := c.why(); w != "" {
			text += "; " + w
		}
	}
	return text
}

// RVBefore says whether resourceVersion a is older than b. resourceVersions are opaque to
// clients, but kube-apiserver's are etcd revisions, one counter for every object: compared as
// numbers when both are, otherwise a is taken as not older (the order the events came in).
func RVBefore(a, b string) bool {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	return errA == nil && errB == nil && x < y
}

// ErrWatchExpired is a watch whose resourceVersion the API server no longer has (410 Gone).
var errWatchExpired = errors.New("the API server no longer has the resourceVersion to resume from (410 Gone)")

// DecodePod decodes a pod's watch event.
func DecodePod(kind string, obj json.RawMessage) (WatchEvent, error) {
	var p WatchedPod
	if err := json.Unmarshal(obj, &p); err != nil {
		return WatchEvent{}, fmt.Errorf("decode pod: %w", err)
	}
	return WatchEvent{Kind: kind, Pod: &p}, nil
}

// DecodeWorkload decodes a workload's watch event.
func DecodeWorkload(kind string, obj json.RawMessage) (WatchEvent, error) {
	var w Workload
	if err := json.Unmarshal(obj, &w); err != nil {
		return WatchEvent{}, fmt.Errorf("decode workload: %w", err)
	}
	var spec struct {
		Spec struct {
			MinReadySeconds int32 `json:"minReadySeconds"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(obj, &spec); err != nil {
		return WatchEvent{}, fmt.Errorf("decode workload: %w", err)
	}
	return WatchEvent{Kind: kind, Workload: &w, MinReady: time.Duration(spec.Spec.MinReadySeconds) * time.Second}, nil
}

// DecodeWatch reads a watch's stream of events ({"type": ..., "object": ...}, one after the
// other) one at a time, calling each with the type and object of every ADDED, MODIFIED or
// DELETED event, and returns the last resourceVersion seen (rv if none) for a resumption:
// bookmarks move it too. It ends when the stream does (io.EOF is no error), or with the error of
// an ERROR event: ErrWatchExpired for a 410.
func DecodeWatch(r io.Reader, rv string, each func(kind string, obj json.RawMessage) error) (string, error) {
	dec := json.NewDecoder(r)
	var ev struct {
		Type   string          `json:"type"`
		Object json.RawMessage `json:"object"`
	}
	var meta struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Code    int32  `json:"code"`
		Message string `json:"message"`
	}
	for {
		ev.Type, ev.Object = "", ev.Object[:0]
		err := dec.Decode(&ev)
		if errors.Is(err, io.EOF) {
			return rv, nil
		}
		if err != nil {
			return rv, fmt.Errorf("decode watch event: %w", err)
		}
		meta.Metadata.ResourceVersion, meta.Code, meta.Message = "", 0, ""
		if err := json.Unmarshal(ev.Object, &meta); err != nil {
			return rv, fmt.Errorf("decode %s event: %w", ev.Type, err)
		}
		if ev.Type == "ERROR" {
			if meta.Code == 410 {
				return rv, fmt.Errorf("%w: %s", errWatchExpired, meta.Message)
			}
			return rv, fmt.Errorf("the API server ended the watch: %d %s", meta.Code, meta.Message)
		}
		if meta.Metadata.ResourceVersion != "" {
			rv = meta.Metadata.ResourceVersion
		}
		if ev.Type == "BOOKMARK" {
			continue
		}
		if err := each(ev.Type, ev.Object); err != nil {
			return rv, err
		}
	}
}

// watchTimeout is how long the API server keeps one watch open before it closes it and macaque
// reopens it from where it was: within the server's own limit (5 to 10 minutes by default).
const watchTimeout = 5 * time.Minute

// Watch opens a watch of q from resourceVersion rv; the caller reads it with DecodeWatch and closes it.
func (p *Client) Watch(ctx context.Context, q WatchQuery, rv string) (io.ReadCloser, error) {
	req := p.client.Get().AbsPath(q.Prefix, "namespaces", q.Namespace, q.Resource).
		Param("watch", "true").Param("allowWatchBookmarks", "true").
		Param("timeoutSeconds", strconv.Itoa(int(watchTimeout.Seconds())))
	if rv != "" {
		req = req.Param("resourceVersion", rv)
	}
	if q.LabelSelector != "" {
		req = req.Param("labelSelector", q.LabelSelector)
	}
	if q.FieldSelector != "" {
		req = req.Param("fieldSelector", q.FieldSelector)
	}
	body, err := req.Stream(ctx)
	if err != nil {
		return nil, err
	}
	return body, nil
}

// Expired says whether err is a watch's 410: its resourceVersion is gone, as an ERROR event or
// as the request's answer.
func Expired(err error) bool {
	return errors.Is(err, errWatchExpired) || apierrors.IsGone(err) || apierrors.IsResourceExpired(err)
}
