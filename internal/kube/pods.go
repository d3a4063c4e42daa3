package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// Pod is a pod as read back just before a kill: what the rules that may pass it over, the
// kill's preconditions and its report need.
type Pod struct {
	Namespace       string
	UID             types.UID
	ResourceVersion string
	Controller      *OwnerRef // the controlling owner, nil for a bare pod; the guard reads up from it
	Node            string
	Running         bool
	Ready           bool // the pod's Ready condition is True
	Terminating     bool
	Annotations     map[string]string // read for the opt-out annotation
	Labels          map[string]string // matched against PodDisruptionBudgets that refuse an eviction together
	Created         time.Time         // creationTimestamp, for MACAQUE_MIN_POD_AGE
	// ListRV is the resourceVersion of the list that read it back: the whole store's at that
	// moment, where a recovery's watches start when the kill's own answer carries none.
	ListRV string
}

// Owner is how a report names v's controlling owner ("Kind/name"), empty for a bare pod.
func (v Pod) Owner() string {
	if v.Controller == nil {
		return ""
	}
	return v.Controller.String()
}

// ListQuery selects one page of candidates: the Running pods in namespace (every namespace but
// excludeNamespaces when empty) that match selector, except the one named exclude.
type ListQuery struct {
	Namespace, Selector, Exclude string
	ExcludeNamespaces            []string
	Limit                        int64 // rows per page
	ContinueToken                string
}

// ListPage calls each with the name of every candidate on one page of q (a Running pod not being
// deleted) and returns the continue token of the next page, empty after the last.
func (p *Client) ListPage(ctx context.Context, q ListQuery, each func(name string)) (string, error) {
	terms := []fields.Selector{fields.OneTermEqualSelector("status.phase", "Running")}
	if q.Exclude != "" {
		// In a cluster-wide list this also leaves out a pod of the same name in another
		// namespace: a generated name (macaque-7d9f8-x2x4q), so in practice never another.
		terms = append(terms, fields.OneTermNotEqualSelector("metadata.name", q.Exclude))
	}
	sel := fields.AndSelectors(append(terms, notInNamespaces(q.ExcludeNamespaces)...)...)
	req := p.client.Get().Namespace(q.Namespace).Resource("pods").Param("fieldSelector", sel.String())
	return tablePage(ctx, req, q.Selector, q.Limit, q.ContinueToken, "pod", decodeTable, each)
}

// tablePage lists one page of req's resource, matching selector, as a Table without objects,
// calls each with the name of every row decode keeps, and returns the continue token of the
// next page, empty after the last.
func tablePage(ctx context.Context, req *rest.Request, selector string, limit int64, token, kind string,
	decode func(io.Reader, func(string)) (string, error), each func(name string)) (string, error) {
	req = req.SetHeader("Accept", TableAccept).
		Param("limit", strconv.FormatInt(limit, 10)).
		Param("includeObject", "None")
	if selector != "" {
		req = req.Param("labelSelector", selector)
	}
	if token != "" {
		req = req.Param("continue", token)
	}
	body, err := req.Stream(ctx)
	if err != nil {
		return "", err
	}
	defer func() {
		// Read the little that may follow the table (a newline) so that the connection is
		// reused: closing an unfinished body resets an HTTP/2 stream or drops an HTTP/1 connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
		_ = body.Close()
	}()
	next, err := decode(body, each)
	if err != nil {
		return "", fmt.Errorf("decode %s table: %w", kind, err)
	}
	return next, nil
}

// notInNamespaces are the terms selecting objects in none of namespaces: field selectors have
// no "notin", so one inequality each.
func notInNamespaces(namespaces []string) []fields.Selector {
	terms := make([]fields.Selector, 0, len(namespaces))
	for _, ns := range namespaces {
		terms = append(terms, fields.OneTermNotEqualSelector("metadata.namespace", ns))
	}
	return terms
}

// drainLimit bounds what is read past the end of a table before its response is closed.
const drainLimit = 64 << 10

// podObject is the part of a v1 Pod that a victim report and the steady-state guard need.
type podObject struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		NodeName string `json:"nodeName"`
	} `json:"spec"`
	Status struct {
		Phase      string `json:"phase"`
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// ready says whether the pod's Ready condition is True.
func (p podObject) ready() bool {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}

// Lookup reads one pod by name among those matching selector, through list (so no "get"
// permission is needed). A pod that does not exist or does not match is ErrGone.
func (p *Client) Lookup(ctx context.Context, namespace, name, selector string) (Pod, error) {
	// A list by metadata.name is served from a single key, like a get, but needs only "list";
	// the label selector re-checks the scope, in case the pod was relabelled since it was listed.
	found, err := p.readPods(ctx, namespace, fields.OneTermEqualSelector("metadata.name", name), selector)
	if err != nil {
		return Pod{}, err
	}
	if len(found) == 0 {
		return Pod{}, fmt.Errorf("pod %q: %w", name, ErrGone)
	}
	return found[0], nil
}

// Locate reads the pods named name in every namespace q lists, among those matching q's
// selector: a cluster-wide table row does not say its namespace. None is ErrGone.
func (p *Client) Locate(ctx context.Context, q ListQuery, name string) ([]Pod, error) {
	terms := append([]fields.Selector{fields.OneTermEqualSelector("metadata.name", name)}, notInNamespaces(q.ExcludeNamespaces)...)
	found, err := p.readPods(ctx, q.Namespace, fields.AndSelectors(terms...), q.Selector)
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("pod %q: %w", name, ErrGone)
	}
	return found, nil
}

// readPods lists the pods in namespace (every namespace when empty) that match both selectors,
// as victims. Callers select by name, so the answer holds a pod, or a few in a cluster-wide list.
func (p *Client) readPods(ctx context.Context, namespace string, fieldSel fields.Selector, selector string) ([]Pod, error) {
	req := p.client.Get().Namespace(namespace).Resource("pods").Param("fieldSelector", fieldSel.String())
	if selector != "" {
		req = req.Param("labelSelector", selector)
	}
	body, err := req.DoRaw(ctx)
	if err != nil {
		return nil, err
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []podObject `json:"items"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("decode pod list: %w", err)
	}
	out := make([]Pod, 0, len(list.Items))
	for _, pod := range list.Items {
		v := Pod{
			Namespace:       pod.Metadata.Namespace,
			UID:             pod.Metadata.UID,
			ResourceVersion: pod.Metadata.ResourceVersion,
			Node:            pod.Spec.NodeName,
			Running:         pod.Status.Phase == "Running",
			Ready:           pod.ready(),
			Terminating:     pod.Metadata.DeletionTimestamp != nil,
			Annotations:     pod.Metadata.Annotations,
			Labels:          pod.Metadata.Labels,
			Created:         pod.Metadata.CreationTimestamp.Time,
			ListRV:          list.Metadata.ResourceVersion,
		}
		if ref := metav1.GetControllerOfNoCopy(&pod.Metadata); ref != nil {
			v.Controller = &OwnerRef{APIVersion: ref.APIVersion, Kind: ref.Kind, Name: ref.Name, UID: ref.UID, Controller: ref.Controller}
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete deletes the pod only if it still has v's UID and resourceVersion, with grace seconds to
// terminate (nil: the pod's own), and returns the deletion's resourceVersion ("" when the answer carries none).
func (p *Client) Delete(ctx context.Context, namespace, name string, v Pod, grace *int64) (string, error) {
	body, err := deleteOptions(preconditions(v), grace)
	if err != nil {
		return "", err
	}
	// Never resent: a second DELETE of a pod the first one killed answers 404, which would read
	// as "gone before we could delete it". client-go does not resend a request with a body
	// today; MaxRetries(0) keeps it so.
	res := p.client.Delete().Namespace(namespace).Resource("pods").Name(name).Body(body).MaxRetries(0).Do(ctx)
	if err := res.Error(); err != nil {
		return "", err
	}
	raw, _ := res.Raw()
	// The answer is the pod as deleted (a Status from an older server): its resourceVersion is
	// the kill's. One that does not decode leaves the read-back's.
	var gone struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	_ = json.Unmarshal(raw, &gone)
	return gone.Metadata.ResourceVersion, nil
}

// preconditions make a kill of v fail with 409 Conflict unless the pod still has v's UID and
// resourceVersion: it was not replaced nor changed since it was read back.
func preconditions(v Pod) *metav1.Preconditions {
	pre := metav1.NewUIDPreconditions(string(v.UID))
	if v.ResourceVersion != "" {
		pre.ResourceVersion = &v.ResourceVersion
	}
	return pre
}

// PreflightPod is a pod name that can never exist (names are lower case), so a dry-run delete
// of it tells whether delete is allowed without touching any pod: 404 if so, 403 if not.
const PreflightPod = "MACAQUE-PREFLIGHT-CHECK"

// ProbeDelete asks, with a dry-run delete of a pod that cannot exist, whether macaque may delete pods in namespace.
func (p *Client) ProbeDelete(ctx context.Context, namespace string) error {
	body, err := deleteOptions(nil, nil)
	if err != nil {
		return err
	}
	err = p.client.Delete().Namespace(namespace).Resource("pods").Name(PreflightPod).Param("dryRun", "All").Body(body).Do(ctx).Error()
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		return fmt.Errorf("a dry-run delete of pod %q succeeded, which no API server should allow", PreflightPod)
	}
	return err
}

// deleteOptions encodes the body of a DELETE; grace nil leaves the pod's own grace period.
func deleteOptions(pre *metav1.Preconditions, grace *int64) ([]byte, error) {
	opts := metav1.DeleteOptions{TypeMeta: metav1.TypeMeta{Kind: "DeleteOptions", APIVersion: "v1"}, Preconditions: pre, GracePeriodSeconds: grace}
	body, err := json.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("encode delete options: %w", err)
	}
	return body, nil
}
