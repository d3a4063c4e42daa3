package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// leasesPrefix starts the path of every Lease: /apis/coordination.k8s.io/v1/namespaces/{ns}/leases[/{name}].
const leasesPrefix = "/apis/coordination.k8s.io/v1/namespaces/"

// isLease says whether req is about Leases.
func isLease(req Request) bool {
	return strings.HasPrefix(req.Path, leasesPrefix) && strings.Contains(req.Path, "/leases")
}

// Lease returns a copy of a stored Lease, or nil.
func (s *Server) Lease(namespace, name string) *coordinationv1.Lease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.leases[namespace+"/"+name].DeepCopy()
}

// SetLease stores (or replaces) a Lease, giving it a new resourceVersion, as another replica's
// write would.
func (s *Server) SetLease(l *coordinationv1.Lease) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.storeLease(l.DeepCopy())
}

// storeLease keeps l with the next resourceVersion; s.mu must be held.
func (s *Server) storeLease(l *coordinationv1.Lease) {
	if s.leases == nil {
		s.leases = map[string]*coordinationv1.Lease{}
	}
	s.rv++
	l.ResourceVersion = strconv.Itoa(s.rv)
	s.leases[l.Namespace+"/"+l.Name] = l
}

// serveLease answers a GET of a Lease, a POST that creates one (409 AlreadyExists when it
// exists) and a PUT that replaces it when its resourceVersion is current (409 Conflict
// otherwise), as the API server does; dryRun=All changes nothing.
func (s *Server) serveLease(w http.ResponseWriter, req Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(req.Path, leasesPrefix), "/"), "/") // {ns}/leases[/{name}]
	ns, name := parts[0], ""
	if len(parts) == 3 {
		name = parts[2]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case req.Method == http.MethodGet && name != "":
		if cur := s.leases[ns+"/"+name]; cur != nil {
			writeJSON(w, http.StatusOK, cur)
			return
		}
		writeStatus(w, notFoundLease(name))
	case req.Method == http.MethodPost && name == "":
		s.createLease(w, req, ns)
	case req.Method == http.MethodPut && name != "":
		s.replaceLease(w, req, ns, name)
	default:
		writeStatus(w, status(http.StatusMethodNotAllowed, metav1.StatusReasonMethodNotAllowed, "not supported by fakeapi"))
	}
}

// createLease stores the Lease in req's body, unless one of its name exists; s.mu is held.
func (s *Server) createLease(w http.ResponseWriter, req Request, ns string) {
	var l coordinationv1.Lease
	if err := json.Unmarshal(req.Body, &l); err != nil || l.Name == "" {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("bad Lease: %v", err)))
		return
	}
	if s.leases[ns+"/"+l.Name] != nil {
		writeStatus(w, status(http.StatusConflict, metav1.StatusReasonAlreadyExists, fmt.Sprintf("leases.coordination.k8s.io %q already exists", l.Name)))
		return
	}
	l.Namespace = ns
	if !slices.Contains(req.Query["dryRun"], "All") {
		s.storeLease(&l)
	}
	writeJSON(w, http.StatusCreated, &l)
}

// replaceLease replaces the Lease name with req's body if its resourceVersion is current; s.mu is held.
func (s *Server) replaceLease(w http.ResponseWriter, req Request, ns, name string) {
	cur := s.leases[ns+"/"+name]
	if cur == nil {
		writeStatus(w, notFoundLease(name))
		return
	}
	var next coordinationv1.Lease
	if err := json.Unmarshal(req.Body, &next); err != nil || next.Name != name {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, fmt.Sprintf("bad Lease: %v", err)))
		return
	}
	if next.ResourceVersion != cur.ResourceVersion {
		writeStatus(w, status(http.StatusConflict, metav1.StatusReasonConflict,
			fmt.Sprintf("Operation cannot be fulfilled on leases.coordination.k8s.io %q: the object has been modified; please apply your changes to the latest version and try again", name)))
		return
	}
	next.Namespace = ns
	if !slices.Contains(req.Query["dryRun"], "All") {
		s.storeLease(&next)
	}
	writeJSON(w, http.StatusOK, &next)
}

// notFoundLease is the API server's 404 for the Lease name.
func notFoundLease(name string) *metav1.Status {
	return status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("leases.coordination.k8s.io %q not found", name))
}
