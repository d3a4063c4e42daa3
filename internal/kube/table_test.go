package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/client-go/rest"
)

// tableJSON prints a pod table the way kube-apiserver lays it out: metadata, then columns, then rows.
func tableJSON(next string, cols []string, rows ...[]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{"resourceVersion":"42","continue":%q},"columnDefinitions":[`, next)
	for i, c := range cols {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"name":%q,"type":"string","format":"","description":"","priority":0}`, c)
	}
	b.WriteString(`],"rows":[`)
	for i, r := range rows {
		if i > 0 {
			b.WriteString(",")
		}
		cells, _ := json.Marshal(r)
		fmt.Fprintf(&b, `{"cells":%s,"object":null}`, cells)
	}
	b.WriteString("]}\n")
	return b.String()
}

// cutAfter returns s up to the end of the first mark, as a connection dropped there would.
func cutAfter(s, mark string) string { return s[:strings.Index(s, mark)+len(mark)] }

// testNamespace is the namespace the tests' pods are in.
const testNamespace = "shop"

func TestDecodeTable(t *testing.T) {
	podCols := []string{"Name", "Ready", "Status", "Restarts", "Age"}
	tests := []struct {
		name      string
		body      string
		wantNames []string
		wantNext  string
		wantErr   string // a substring of the error; empty when none is wanted
	}{
		{
			name: "a page with more to come, skipping a terminating pod",
			body: tableJSON("tok-2", podCols,
				[]string{"web-1", "1/1", "Running", "0", "5m"},
				[]string{"web-2", "1/1", "Terminating", "0", "5m"},
				[]string{"web-3", "0/1", "Running", "3", "1m"}),
			wantNames: []string{"web-1", "web-3"},
			wantNext:  "tok-2",
		},
		{
			name:      "the last page",
			body:      tableJSON("", podCols, []string{"web-1", "1/1", "Running", "0", "5m"}),
			wantNames: []string{"web-1"},
		},
		{
			name:      "columns found by name, not position",
			body:      tableJSON("", []string{"Status", "Extra", "Name"}, []string{"Running", "x", "web-1"}, []string{"Terminating", "x", "web-2"}),
			wantNames: []string{"web-1"},
		},
		{name: "no rows", body: tableJSON("", podCols)},
		{name: "rows null", body: `{"kind":"Table","metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":null}`},
		{name: "no rows field", body: `{"kind":"Table","metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}]}`},
		{
			name:      "pods printed Unknown are going away on a lost node: not candidates",
			body:      tableJSON("", podCols, []string{"web-1", "1/1", "Unknown", "0", "5m"}, []string{"web-2", "1/1", "Running", "0", "5m"}),
			wantNames: []string{"web-2"},
		},
		{
			name:    "a PodList (a proxy dropped the Accept header) is not an empty table",
			body:    `{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"web-1"}}]}`,
			wantErr: "not a pod Table: got kind \"PodList\"",
		},
		{
			name:    "a table without column definitions",
			body:    `{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},"rows":[]}`,
			wantErr: "not a pod Table",
		},
		{
			name:    "columns but no kind",
			body:    `{"metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[]}`,
			wantErr: "not a pod Table",
		},
		{
			name:    "rows before columns cannot be read as they come",
			body:    `{"rows":[{"cells":["web-1","Running"]}],"columnDefinitions":[{"name":"Name"},{"name":"Status"}]}`,
			wantErr: "rows come before the column definitions",
		},
		{name: "no Status column", body: tableJSON("", []string{"Name", "Ready"}), wantErr: "no Name or Status column"},
		{
			name:    "short row",
			body:    tableJSON("", podCols, []string{"web-1", "1/1"}),
			wantErr: "row has 2 cells",
		},
		{
			name:    "name not a string",
			body:    `{"kind":"Table","columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":[7,"Running"]}]}`,
			wantErr: "pod name",
		},
		{
			name:      "cut off mid-row",
			body:      cutAfter(tableJSON("", podCols, []string{"web-1", "1/1", "Running", "0", "5m"}, []string{"web-2", "1/1", "Running", "0", "5m"}), `"web-2",`),
			wantNames: []string{"web-1"},
			wantErr:   "unexpected EOF",
		},
		{name: "a Status instead of a table", body: `["not", "a", "table"]`, wantErr: "want {"},
		{
			name:      "a null name is refused, not read as the previous row's",
			body:      `{"kind":"Table","columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":["web-1","Running"]},{"cells":[null,"Running"]}]}`,
			wantNames: []string{"web-1"},
			wantErr:   "pod name: null cell",
		},
		{
			name:    "a null status is refused, not read as the previous row's",
			body:    `{"kind":"Table","columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":["web-1","Terminating"]},{"cells":["web-2",null]}]}`,
			wantErr: "pod status: null cell",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var names []string
			next, err := decodeTable(strings.NewReader(tt.body), func(name string) { names = append(names, name) })
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if !slices.Equal(names, tt.wantNames) {
				t.Errorf("names = %q, want %q", names, tt.wantNames)
			}
			if err == nil && next != tt.wantNext {
				t.Errorf("next = %q, want %q", next, tt.wantNext)
			}
		})
	}
}

// TestListPageReadsTheResponseToItsEnd checks the connection survives a page: a body closed
// before its end costs a new connection (HTTP/1) or a reset stream (HTTP/2) on every page.
func TestListPageReadsTheResponseToItsEnd(t *testing.T) {
	body := tableJSON("", []string{"Name", "Status"}, []string{"web-1", "Running"}) + strings.Repeat(" ", 8<<10)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	api, err := NewClient(&rest.Config{Host: srv.URL, QPS: -1})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		var names []string
		if _, err := api.ListPage(t.Context(), ListQuery{Namespace: testNamespace, Limit: 500}, func(n string) { names = append(names, n) }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, []string{"web-1"}) {
			t.Fatalf("names = %q", names)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("3 pages took %d connections, want 1", n)
	}
}

func FuzzDecodeTable(f *testing.F) {
	podCols := []string{"Name", "Ready", "Status", "Restarts", "Age"}
	seeds := []string{
		tableJSON("tok-2", podCols, []string{"web-1", "1/1", "Running", "0", "5m"}, []string{"web-2", "1/1", "Terminating", "0", "5m"},
			[]string{"web-3", "0/1", "Unknown", "3", "1m"}, []string{"web-4", "0/1", "CrashLoopBackOff", "3", "1m"}),
		tableJSON("", []string{"Status", "Extra", "Name"}, []string{"Running", "x", "web-1"}, []string{"Terminating", "x", "web-2"}),
		tableJSON("", podCols),
		`{"kind":"Table","metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":null}`,
		`{"kind":"Table","metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":["a","Running"]},{"cells":["b","Terminating"]}]}`,
		`{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"7"},"items":[{"metadata":{"name":"web-1"}}]}`,
		`{"kind":"Table","kind":"PodList","columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[]}`,
		`{"metadata":{},"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":["a","Running"]}]}`,
		`{"rows":[{"cells":["web-1","Running"]}],"columnDefinitions":[{"name":"Name"},{"name":"Status"}],"kind":"Table"}`,
		`{"kind":"Table","columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":[7,"Running"]}]}`,
		`{"kind":"T\u0061ble","columnDefinitions":[{"name":"Name"},{"name":"Status"}],"rows":[{"cells":["a","Runn\u0069ng"]},{"cells":["b","Termin\u0061ting"]}]}`,
		cutAfter(tableJSON("", podCols, []string{"web-1", "1/1", "Running", "0", "5m"}, []string{"web-2", "1/1", "Running", "0", "5m"}), `"web-2",`),
		`["not", "a", "table"]`,
		``,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var names []string
		_, err := decodeTable(bytes.NewReader(body), func(name string) { names = append(names, name) })

		// Every name is a cell of the body, and is given once per cell that holds it (a name
		// given twice would be twice as likely to be killed). This holds for the names given
		// before an error too: the killer has counted them by then.
		cells := cellStrings(body)
		given := map[string]int{}
		for _, name := range names {
			if given[name]++; given[name] > cells[name] {
				t.Fatalf("decodeTable gave %q %d times; the body holds it in %d cells: %q", name, given[name], cells[name], body)
			}
		}
		if err == nil {
			var top map[string]json.RawMessage
			var kind string
			if json.NewDecoder(bytes.NewReader(body)).Decode(&top) != nil || json.Unmarshal(top["kind"], &kind) != nil || kind != "Table" {
				t.Fatalf("decodeTable accepted a body whose kind is not \"Table\": %q", body)
			}
		}
		rows, ok := unambiguousRows(body)
		if !ok {
			return
		}
		for _, name := range names {
			if !slices.ContainsFunc(rows, func(r podRow) bool { return r.name == name && r.status != "Terminating" && r.status != "Unknown" }) {
				t.Fatalf("decodeTable gave %q, which no row of the body shows as other than Terminating or Unknown: %q", name, body)
			}
		}
	})
}

// cellStrings counts the strings that are elements of a "cells" array anywhere in body, in the
// JSON read up to its first syntax error (a cut-off body's whole rows count). The key is matched
// as encoding/json matches struct fields, without regard to case.
func cellStrings(body []byte) map[string]int {
	type frame struct{ array, cells, wantKey bool }
	var stack []frame
	key := ""
	out := map[string]int{}
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		tok, err := dec.Token()
		if err != nil {
			return out
		}
		top := len(stack) - 1
		if s, isKey := tok.(string); isKey && top >= 0 && !stack[top].array && stack[top].wantKey {
			key, stack[top].wantKey = s, false
			continue
		}
		switch v := tok.(type) {
		case json.Delim:
			if v == '{' || v == '[' {
				inObject := top >= 0 && !stack[top].array
				stack = append(stack, frame{array: v == '[', cells: v == '[' && inObject && strings.EqualFold(key, "cells"), wantKey: v == '{'})
				continue
			}
			stack = stack[:top]
		case string:
			if top >= 0 && stack[top].cells {
				out[v]++
			}
		}
		// A value just ended: in an object, a key comes next.
		if n := len(stack) - 1; n >= 0 && !stack[n].array {
			stack[n].wantKey = true
		}
	}
}

// podRow is one row of a table, as its Name and Status columns show it.
type podRow struct{ name, status string }

// unambiguousRows reads body as a whole table and returns each row's name and status, or false
// when the body is not one: not whole JSON, a top-level key given twice, or a Name or Status
// column other than exactly once. Cells that are not strings read as "".
func unambiguousRows(body []byte) ([]podRow, bool) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	top := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, false
		}
		key := tok.(string)
		if _, dup := top[key]; dup {
			return nil, false
		}
		top[key] = value
	}
	var cols []struct {
		Name string `json:"name"`
	}
	var rows []struct {
		Cells []json.RawMessage `json:"cells"`
	}
	if json.Unmarshal(top["columnDefinitions"], &cols) != nil || json.Unmarshal(top["rows"], &rows) != nil {
		return nil, false
	}
	nameCol, statusCol, names, statuses := -1, -1, 0, 0
	for i, c := range cols {
		switch c.Name {
		case "Name":
			nameCol, names = i, names+1
		case "Status":
			statusCol, statuses = i, statuses+1
		}
	}
	if names != 1 || statuses != 1 {
		return nil, false
	}
	var out []podRow
	for _, r := range rows {
		var row podRow
		if len(r.Cells) > max(nameCol, statusCol) {
			_ = json.Unmarshal(r.Cells[nameCol], &row.name)
			_ = json.Unmarshal(r.Cells[statusCol], &row.status)
		}
		out = append(out, row)
	}
	return out, true
}
