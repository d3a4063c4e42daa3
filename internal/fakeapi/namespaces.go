package fakeapi

import (
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// SetNamespace stores namespace name with lbls, replacing its labels if it is stored, as a
// kubectl label --overwrite would. A namespace holding a pod exists even if never set, without
// labels, as on a real API server, where no pod is in a namespace that does not exist.
func (s *Server) SetNamespace(name string, lbls map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.namespaces == nil {
		s.namespaces = map[string]map[string]string{}
	}
	s.namespaces[name] = lbls
}

// isNamespaceList says whether req lists namespaces.
func isNamespaceList(req Request) bool {
	return req.Method == http.MethodGet && req.Path == "/api/v1/namespaces"
}

// listNamespaces answers a list of namespaces, with its label selector, limit and continue
// token, as a Table without objects (the only form macaque asks for: a list asking for another
// gets a 406, which a client that drops the Accept header must not take for an empty list).
func (s *Server) listNamespaces(w http.ResponseWriter, req Request) {
	if !strings.Contains(req.Accept, "as=Table") {
		writeStatus(w, status(http.StatusNotAcceptable, metav1.StatusReasonNotAcceptable, "fakeapi serves namespaces as a Table only"))
		return
	}
	_, lsel, err := selectors(req)
	if err != nil {
		writeStatus(w, status(http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error()))
		return
	}
	s.mu.Lock()
	all := map[string]map[string]string{}
	for _, p := range s.pods {
		all[p.Namespace] = nil
	}
	for name, l := range s.namespaces {
		all[name] = l
	}
	s.mu.Unlock()
	var names []string
	for name, l := range all {
		if lsel.Matches(labels.Set(l)) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	start, end, st := s.page(req, len(names))
	if st != nil {
		writeStatus(w, st)
		return
	}
	t := &metav1.Table{
		TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
		ColumnDefinitions: []metav1.TableColumnDefinition{
			{Name: "Name", Type: "string", Format: "name"}, {Name: "Status", Type: "string"}, {Name: "Age", Type: "string"},
		},
	}
	if end < len(names) {
		t.Continue = s.cursor(end)
	}
	for _, name := range names[start:end] {
		t.Rows = append(t.Rows, metav1.TableRow{Cells: []any{name, "Active", "5m"}})
	}
	writeJSON(w, http.StatusOK, t)
}
