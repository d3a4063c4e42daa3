package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// AddWorkload stores (or replaces) a ReplicaSet, Deployment, StatefulSet, DaemonSet or
// ReplicationController, served to a GET of its path as the API server would serve it.
// Each store gets a new resourceVersion (set on obj too) and is an event for watches of it.
func (s *Server) AddWorkload(obj metav1.Object) {
	path := workloadPath(obj)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rv++
	obj.SetResourceVersion(strconv.Itoa(s.rv))
	body, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("fakeapi: encode %s: %v", path, err))
	}
	if s.workloads == nil {
		s.workloads = map[string][]byte{}
	}
	kind := "ADDED"
	if _, ok := s.workloads[path]; ok {
		kind = "MODIFIED"
	}
	s.workloads[path] = body
	s.record(change{rv: s.rv, collection: path[:strings.LastIndex(path, "/")], name: obj.GetName(), kind: kind, object: body})
}

// RemoveWorkload deletes a workload stored by AddWorkload.
func (s *Server) RemoveWorkload(obj metav1.Object) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := workloadPath(obj)
	body, ok := s.workloads[path]
	if !ok {
		return
	}
	delete(s.workloads, path)
	s.rv++
	s.record(change{rv: s.rv, collection: path[:strings.LastIndex(path, "/")], name: obj.GetName(), kind: "DELETED", object: body})
}

// workloadPath is the URL path of obj, a workload of one of the kinds AddWorkload takes.
func workloadPath(obj metav1.Object) string {
	var resource string
	switch obj.(type) {
	case *appsv1.ReplicaSet:
		resource = "apis/apps/v1/namespaces/%s/replicasets/%s"
	case *appsv1.Deployment:
		resource = "apis/apps/v1/namespaces/%s/deployments/%s"
	case *appsv1.StatefulSet:
		resource = "apis/apps/v1/namespaces/%s/statefulsets/%s"
	case *appsv1.DaemonSet:
		resource = "apis/apps/v1/namespaces/%s/daemonsets/%s"
	case *corev1.ReplicationController:
		resource = "api/v1/namespaces/%s/replicationcontrollers/%s"
	default:
		panic(fmt.Sprintf("fakeapi: %T is not a workload it serves", obj))
	}
	return "/" + fmt.Sprintf(resource, obj.GetNamespace(), obj.GetName())
}

// workloadResources are the path segments of the workload collections served.
var workloadResources = []string{"/replicasets/", "/deployments/", "/statefulsets/", "/daemonsets/", "/replicationcontrollers/"}

// serveWorkload answers a GET of a workload, or a 404 like the API server's for one not
// stored; it returns false for any other path.
func (s *Server) serveWorkload(w http.ResponseWriter, path string) bool {
	isWorkload := false
	for _, r := range workloadResources {
		isWorkload = isWorkload || strings.Contains(path, r)
	}
	if !isWorkload {
		return false
	}
	s.mu.Lock()
	body, ok := s.workloads[path]
	s.mu.Unlock()
	if !ok {
		i := strings.LastIndex(path, "/")
		j := strings.LastIndex(path[:i], "/")
		writeStatus(w, status(http.StatusNotFound, metav1.StatusReasonNotFound, fmt.Sprintf("%s %q not found", path[j+1:i], path[i+1:])))
		return true
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return true
}
