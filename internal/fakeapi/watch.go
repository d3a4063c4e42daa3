package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

// Watches, served as kube-apiserver serves them: ?watch=true on a collection answers 200 and a
// chunked stream of {"type","object"} events, each object with its resourceVersion, starting
// after the resourceVersion asked for; a resourceVersion older than what is kept (see Compact)
// gets an ERROR event with a 410 Status; timeoutSeconds, or CloseWatches, ends the stream.

// change is one event in the log that watches replay: a pod or workload added, modified or deleted.
type change struct {
	rv         int
	collection string // the collection's URL path: /api/v1/namespaces/shop/pods
	name       string
	labels     map[string]string
	kind       string // ADDED, MODIFIED, DELETED
	object     []byte // as JSON, with its resourceVersion
}

// record appends an event to the log and wakes the watches; s.mu must be held.
func (s *Server) record(c change) {
	s.changes = append(s.changes, c)
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// Compact forgets the events logged so far, as etcd's compaction does: a watch from a
// resourceVersion before now gets 410 Gone.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.compacted = s.rv
	s.changes = nil
}

// CloseWatches ends every open watch, as the API server does when its watch timeout passes or
// it restarts; clients resume from the last resourceVersion they saw.
func (s *Server) CloseWatches() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closeWatches != nil {
		close(s.closeWatches)
	}
	s.closeWatches = make(chan struct{})
}

// Watches returns the watch requests received so far.
func (s *Server) Watches() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Query.Get("watch") == "true" {
			out = append(out, r)
		}
	}
	return out
}

// SetPodStatus replaces a stored pod's status by edit, as the kubelet's update would (MODIFIED).
func (s *Server) SetPodStatus(namespace, name string, edit func(*corev1.Pod)) {
	p := s.Pod(namespace, name)
	if p == nil {
		panic(fmt.Sprintf("fakeapi: no pod %s/%s", namespace, name))
	}
	edit(p)
	s.Add(p)
}

// podChange logs p (stored, with its resourceVersion) as kind; s.mu must be held.
func (s *Server) podChange(p *corev1.Pod, kind string) {
	body, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("fakeapi: encode pod: %v", err))
	}
	s.record(change{rv: s.rv, collection: "/api/v1/namespaces/" + p.Namespace + "/pods", name: p.Name, labels: p.Labels, kind: kind, object: body})
}

// serveWatch answers a watch of a collection of pods or workloads.
func (s *Server) serveWatch(w http.ResponseWriter, req Request) {
	fsel, lsel, err := selectors(req)
	if err != nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	from, tooOld, closing, st := s.startWatch(req)
	if st != nil {
		writeStatus(w, st)
		return
	}

	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	flush := func() {
		if flusher != nil {
			flusher.Flush()
		}
	}
	enc := json.NewEncoder(w)
	if tooOld {
		gone := status(http.StatusGone, metav1.StatusReasonExpired, fmt.Sprintf("too old resource version: %d (%d)", from, s.compacted))
		_ = enc.Encode(map[string]any{"type": "ERROR", "object": gone})
		flush()
		return
	}
	flush()
	var timeout <-chan time.Time
	if secs, _ := strconv.Atoi(req.Query.Get("timeoutSeconds")); secs > 0 {
		timeout = time.After(time.Duration(secs) * time.Second)
	}
	for {
		batch, next, changed := s.changesSince(req.Path, from, fsel, lsel)
		from = next
		for _, c := range batch {
			if err := enc.Encode(map[string]any{"type": c.kind, "object": json.RawMessage(c.object)}); err != nil {
				return
			}
		}
		flush()
		select {
		case <-changed:
		case <-closing:
			return
		case <-timeout:
			return
		case <-req.ctx.Done():
			return
		}
	}
}

// startWatch reads where a watch of req starts: the resourceVersion it gives (now when it gives
// none, or 0), whether that is older than what was compacted, and the channel closed when every
// watch must end. A Status (400) when the resourceVersion is not a number.
func (s *Server) startWatch(req Request) (from int, tooOld bool, closing <-chan struct{}, st *metav1.Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from = s.rv // no resourceVersion: from now on
	if rv := req.Query.Get("resourceVersion"); rv != "" && rv != "0" {
		n, err := strconv.Atoi(rv)
		if err != nil {
			return 0, false, nil, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("invalid resource version %q", rv))
		}
		from = n
	}
	if s.closeWatches == nil {
		s.closeWatches = make(chan struct{})
	}
	return from, from < s.compacted, s.closeWatches, nil
}

// changesSince returns the changes to collection after resourceVersion from that match the
// selectors, the resourceVersion the next call starts from, and the channel closed at the next
// change.
func (s *Server) changesSince(collection string, from int, fsel fields.Selector, lsel labels.Selector) ([]change, int, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch []change
	for _, c := range s.changes {
		if c.rv > from && c.collection == collection && lsel.Matches(labels.Set(c.labels)) && fsel.Matches(fields.Set{"metadata.name": c.name}) {
			batch = append(batch, c)
		}
	}
	if n := len(s.changes); n > 0 && s.changes[n-1].rv > from {
		from = s.changes[n-1].rv
	}
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return batch, from, s.changed
}

// isWatch says whether req asks for a watch of a collection.
func isWatch(req Request) bool {
	return req.Method == http.MethodGet && req.Query.Get("watch") == "true" && !strings.HasSuffix(req.Path, "/")
}
