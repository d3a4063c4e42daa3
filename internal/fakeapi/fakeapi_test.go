package fakeapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestListPagesAsTheAPIServer pins the paging the killer's strategy relies on, as kube-apiserver
// 1.37 does it (k8s.io/apiserver storage.PrepareContinueToken and the cacher's GetList): a
// continue request without a limit gets every remaining row, and remainingItemCount is only
// given for a list that no selector filters.
func TestListPagesAsTheAPIServer(t *testing.T) {
	const pods = 10
	tests := []struct {
		name          string
		query         url.Values // of the first request
		restLimit     string     // of the continue request; empty: none
		firstRows     int
		remaining     *int64 // on the first page
		restRows      int
		restContinues bool
	}{
		{name: "no selector: the count of the rest", query: url.Values{"limit": {"3"}}, restLimit: "3",
			firstRows: 3, remaining: ptr(int64(7)), restRows: 3, restContinues: true},
		{name: "field selector: no count", query: url.Values{"limit": {"3"}, "fieldSelector": {"status.phase=Running"}},
			restLimit: "3", firstRows: 3, restRows: 3, restContinues: true},
		{name: "label selector: no count", query: url.Values{"limit": {"3"}, "labelSelector": {"app=web"}},
			restLimit: "3", firstRows: 3, restRows: 3, restContinues: true},
		{name: "continue without a limit: all the rest", query: url.Values{"limit": {"3"}, "labelSelector": {"app=web"}},
			firstRows: 3, restRows: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			for i := range pods {
				s.Add(Pod("ns", fmt.Sprintf("web-%02d", i), map[string]string{"app": "web"}))
			}
			first := listTable(t, s, tt.query)
			if len(first.Rows) != tt.firstRows || first.Continue == "" {
				t.Fatalf("first page: %d rows, continue %q; want %d rows and a token", len(first.Rows), first.Continue, tt.firstRows)
			}
			switch {
			case tt.remaining == nil && first.RemainingItemCount != nil:
				t.Errorf("remainingItemCount %d, want none", *first.RemainingItemCount)
			case tt.remaining != nil && (first.RemainingItemCount == nil || *first.RemainingItemCount != *tt.remaining):
				t.Errorf("remainingItemCount %v, want %d", first.RemainingItemCount, *tt.remaining)
			}
			q := url.Values{"continue": {first.Continue}}
			for _, k := range []string{"labelSelector", "fieldSelector"} {
				if v := tt.query.Get(k); v != "" {
					q.Set(k, v)
				}
			}
			if tt.restLimit != "" {
				q.Set("limit", tt.restLimit)
			}
			rest := listTable(t, s, q)
			if len(rest.Rows) != tt.restRows || (rest.Continue != "") != tt.restContinues {
				t.Errorf("continue request: %d rows, continue %q; want %d rows, a token: %v", len(rest.Rows), rest.Continue, tt.restRows, tt.restContinues)
			}
		})
	}
}

// listTable lists the pods of namespace ns as a Table with q.
func listTable(t *testing.T, s *Server, q url.Values) metav1.Table {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/api/v1/namespaces/ns/pods?"+q.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %s", resp.Status)
	}
	var table metav1.Table
	if err := json.NewDecoder(resp.Body).Decode(&table); err != nil {
		t.Fatal(err)
	}
	return table
}

// TestConfigMapKeysAreValidated: a PUT of a ConfigMap holding a key kube-apiserver refuses is
// refused whole, 422 Invalid, as kube-apiserver does, and changes nothing.
func TestConfigMapKeysAreValidated(t *testing.T) {
	tests := []struct {
		name string
		key  string
		want int
	}{
		{"valid", "shop.Deployment.web", http.StatusOK},
		{"253 characters", strings.Repeat("a", 253), http.StatusOK},
		{"254 characters", strings.Repeat("a", 254), http.StatusUnprocessableEntity},
		{"a colon", "shop:web", http.StatusUnprocessableEntity},
		{"a leading ..", "..web", http.StatusUnprocessableEntity},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(t)
			s.AddConfigMap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "state"}})
			cm := s.ConfigMap("ns", "state")
			cm.Data = map[string]string{"other": "kept with it", tt.key: "x"}
			body, err := json.Marshal(cm)
			if err != nil {
				t.Fatal(err)
			}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, s.URL+"/api/v1/namespaces/ns/configmaps/state", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var st metav1.Status
			_ = json.NewDecoder(resp.Body).Decode(&st)
			if resp.StatusCode != tt.want {
				t.Fatalf("PUT: %s %q, want %d", resp.Status, st.Message, tt.want)
			}
			stored := len(s.ConfigMap("ns", "state").Data)
			if tt.want != http.StatusOK && (st.Reason != metav1.StatusReasonInvalid || !strings.Contains(st.Message, `ConfigMap "state" is invalid: data[`) || stored != 0) {
				t.Errorf("refused as %s %q, %d keys stored; want Invalid naming the key, nothing stored", st.Reason, st.Message, stored)
			}
		})
	}
}
