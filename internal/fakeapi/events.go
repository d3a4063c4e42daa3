package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Events returns the events.k8s.io/v1 Events created so far (not those of dry runs), in order.
func (s *Server) Events() []eventsv1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]eventsv1.Event(nil), s.events...)
}

// AddEvent stores e as if another component (the scheduler, a controller) had written it.
func (s *Server) AddEvent(e eventsv1.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, e)
}

// serveEvent answers a POST to /apis/events.k8s.io/v1/namespaces/{ns}/events, checking the
// Event as kube-apiserver's validation does (the rules that a client can break), or a GET of
// that list, and says whether the path was one.
func (s *Server) serveEvent(w http.ResponseWriter, req Request) bool {
	parts := strings.Split(strings.Trim(req.Path, "/"), "/")
	if len(parts) != 6 || strings.Join(parts[:3], "/") != "apis/events.k8s.io/v1" || parts[3] != "namespaces" || parts[5] != "events" {
		return false
	}
	if req.Method == http.MethodGet {
		s.listEvents(w, req, parts[4])
		return true
	}
	if req.Method != http.MethodPost {
		return false
	}
	var e eventsv1.Event
	if err := json.Unmarshal(req.Body, &e); err != nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return true
	}
	if problems := validateEvent(e, parts[4]); len(problems) > 0 {
		writeStatus(w, status(http.StatusUnprocessableEntity, metav1.StatusReasonInvalid,
			fmt.Sprintf("Event.events.k8s.io %q is invalid: %s", e.Name, strings.Join(problems, "; "))))
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if req.Query.Get("dryRun") != "All" {
		for _, old := range s.events {
			if old.Namespace == e.Namespace && old.Name == e.Name {
				writeStatus(w, status(http.StatusConflict, metav1.StatusReasonAlreadyExists, fmt.Sprintf("events.events.k8s.io %q already exists", e.Name)))
				return true
			}
		}
		s.events = append(s.events, e)
	}
	writeJSON(w, http.StatusCreated, e)
	return true
}

// validateEvent lists what kube-apiserver would refuse in a new Event posted to namespace ns.
func validateEvent(e eventsv1.Event, ns string) []string {
	var out []string
	bad := func(ok bool, format string, args ...any) {
		if !ok {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	bad(e.APIVersion == "events.k8s.io/v1" && e.Kind == "Event", "apiVersion/kind %s/%s", e.APIVersion, e.Kind)
	bad(len(validation.IsDNS1123Subdomain(e.Name)) == 0, "metadata.name %q: not a DNS subdomain", e.Name)
	bad(e.Namespace == ns, "metadata.namespace %q: does not match the request's %q", e.Namespace, ns)
	bad(e.Regarding.Namespace == ns, "regarding.namespace %q: does not match event.namespace", e.Regarding.Namespace)
	bad(e.Related == nil || e.Related.Namespace == ns, "related.namespace: does not match event.namespace")
	bad(!e.EventTime.IsZero(), "eventTime: Required value")
	bad(e.ReportingController != "" && len(validation.IsQualifiedName(e.ReportingController)) == 0, "reportingController %q: not a qualified name", e.ReportingController)
	bad(e.ReportingInstance != "" && len(e.ReportingInstance) <= 128, "reportingInstance: 1 to 128 characters")
	bad(e.Action != "" && len(e.Action) <= 128, "action: 1 to 128 characters")
	bad(e.Reason != "" && len(e.Reason) <= 128, "reason: 1 to 128 characters")
	bad(len(e.Note) <= 1024, "note: can have at most 1024 characters")
	bad(e.Type == "Normal" || e.Type == "Warning", "type %q: Unsupported value", e.Type)
	return out
}

// listEvents answers a list of the Events in ns, filtered by the one field selector a client
// of this package uses, regarding.uid=... (kube-apiserver maps it to involvedObject.uid).
func (s *Server) listEvents(w http.ResponseWriter, req Request, ns string) {
	want := ""
	if sel := req.Query.Get("fieldSelector"); sel != "" {
		uid, ok := strings.CutPrefix(sel, "regarding.uid=")
		if !ok || strings.Contains(uid, ",") {
			writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("fakeapi: unsupported fieldSelector %q", sel)))
			return
		}
		want = uid
	}
	s.mu.Lock()
	list := eventsv1.EventList{TypeMeta: metav1.TypeMeta{APIVersion: "events.k8s.io/v1", Kind: "EventList"}}
	list.ResourceVersion = fmt.Sprint(s.rv)
	for _, e := range s.events {
		if e.Namespace == ns && (want == "" || string(e.Regarding.UID) == want) {
			list.Items = append(list.Items, e)
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}
