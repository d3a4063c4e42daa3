package kube

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/macaque-chaos/macaque/internal/testkit"
	"k8s.io/client-go/rest"
)

// TestDecodeNamesKeepsEveryRow: a namespace Terminating is a namespace all the same, so that the
// namespaces left out of a cluster-wide list include it; a pod table leaves such rows out.
func TestDecodeNamesKeepsEveryRow(t *testing.T) {
	table := tableJSON("", []string{"Name", "Status", "Age"}, []string{"shop", "Active", "1d"}, []string{"old", "Terminating", "2d"})
	var names []string
	if _, err := decodeNames(strings.NewReader(table), func(n string) { names = append(names, n) }); err != nil || !slices.Equal(names, []string{"shop", "old"}) {
		t.Errorf("decodeNames = %q, %v; want both rows", names, err)
	}
	names = nil
	if _, err := decodeTable(strings.NewReader(table), func(n string) { names = append(names, n) }); err != nil || !slices.Equal(names, []string{"shop"}) {
		t.Errorf("decodeTable = %q, %v; want the Active row only", names, err)
	}
	for _, tt := range []struct{ name, body, want string }{
		{"a NamespaceList", `{"kind":"NamespaceList","items":[]}`, "not a namespace Table"},
		{"a Table without its columns", `{"kind":"Table","metadata":{},"rows":[]}`, "not a namespace Table"},
		{"no Status column", tableJSON("", []string{"Age", "Name"}, []string{"1d", "shop"}), "no Name or Status column"},
		{"no Name column", tableJSON("", []string{"Status", "Age"}, []string{"Active", "1d"}), "no Name or Status column"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeNames(strings.NewReader(tt.body), func(string) {}); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decodeNames = %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// TestListNamespacesPages: ListNamespaces asks for a Table of names, without objects, with the
// selector, and follows the continue token to the last page; the probe asks for one row.
func TestListNamespacesPages(t *testing.T) {
	var mu sync.Mutex
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		queries = append(queries, r.URL.RawQuery)
		mu.Unlock()
		if r.URL.Path != "/api/v1/namespaces" || !strings.Contains(r.Header.Get("Accept"), "as=Table") || r.URL.Query().Get("includeObject") != "None" {
			http.Error(w, "unexpected request", http.StatusBadRequest)
			return
		}
		cols := []string{"Name", "Status", "Age"}
		if r.URL.Query().Get("continue") == "" {
			fmt.Fprint(w, tableJSON("page-2", cols, []string{"a", "Active", "1d"}, []string{"b", "Active", "1d"}))
			return
		}
		fmt.Fprint(w, tableJSON("", cols, []string{"c", "Terminating", "1d"}))
	}))
	defer srv.Close()
	c, err := NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if err := c.ListNamespaces(testkit.Ctx(t), "chaos=on", func(n string) { names = append(names, n) }); err != nil || !slices.Equal(names, []string{"a", "b", "c"}) {
		t.Fatalf("ListNamespaces = %q, %v; want the rows of both pages", names, err)
	}
	if err := c.ProbeListNamespaces(testkit.Ctx(t), "chaos=on"); err != nil {
		t.Fatal(err)
	}
	want := []string{"includeObject=None&labelSelector=chaos%3Don&limit=5000", "continue=page-2&includeObject=None&labelSelector=chaos%3Don&limit=5000",
		"includeObject=None&labelSelector=chaos%3Don&limit=1"}
	if !slices.Equal(queries, want) {
		t.Errorf("queries %q, want %q", queries, want)
	}
}
