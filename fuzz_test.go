package main

// Fuzz targets for two parsers of untrusted text: the settings a user writes, and the pod table
// an API server (or a proxy in front of it) answers; internal/schedule fuzzes the cron spec.
// `make fuzz` runs each for a while; plain `go test` runs their seeds and testdata/fuzz as unit tests.

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// settingVariables are the variables Config.check may blame.
var settingVariables = []string{"MACAQUE_CRONTAB", "MACAQUE_TIMEZONE", "MACAQUE_NAMESPACE", "MACAQUE_SELECTOR",
	"MACAQUE_SLACK_TOKEN", "MACAQUE_SLACK_CHANNEL", "MACAQUE_SLACK_API_URL", "MACAQUE_LOG_FORMAT", "MACAQUE_LOG_LEVEL"}

func FuzzConfigCheck(f *testing.F) {
	type seed struct {
		crontab, zone, namespace, selector, token, channel, apiURL, format, level string
		fast, dryRun                                                              bool
	}
	good := seed{"0 10-16 * * 1-5", "Europe/Paris", "shop", "app in (a,b),tier!=db", "", "", "https://slack.com/api/", "text", "info", false, false}
	edits := []func(*seed){
		func(*seed) {},
		func(s *seed) { s.crontab, s.fast = "@every 2s", true },
		func(s *seed) { s.crontab = "@every 2s" },
		func(s *seed) { s.crontab = "0 9 * * 7" },
		func(s *seed) { s.crontab = " " },
		func(s *seed) { s.crontab = "CRON_TZ=Asia/Tokyo 0 9 * * *" },
		func(s *seed) { s.zone = "" },
		func(s *seed) { s.zone = "Mars/Olympus" },
		func(s *seed) { s.zone = "../etc/passwd" },
		func(s *seed) { s.namespace = "Shop_Prod" },
		func(s *seed) { s.selector = "app in (a" },
		func(s *seed) { s.selector = "app=web,tier notin (db),!canary" },
		func(s *seed) { s.token, s.channel = "xoxb-1\n", " C1" },
		func(s *seed) { s.token = "xoxb-1" },
		func(s *seed) { s.token, s.channel = "\n", "C1" },
		func(s *seed) { s.apiURL = "slack.com/api" },
		func(s *seed) { s.apiURL = "http://[::1]:namedport" },
		func(s *seed) { s.format, s.level = "json", "debug" },
		func(s *seed) { s.format = "yaml" },
		func(s *seed) { s.level = "loud" },
		func(s *seed) { s.level = "warn+2" },
	}
	for _, edit := range edits {
		s := good
		edit(&s)
		f.Add(s.crontab, s.zone, s.namespace, s.selector, s.token, s.channel, s.apiURL, s.format, s.level, s.fast, s.dryRun)
	}
	f.Fuzz(func(t *testing.T, crontab, zone, namespace, selector, token, channel, apiURL, format, level string, fast, dryRun bool) {
		c := Config{Crontab: crontab, Timezone: zone, AllowFastSchedule: fast, Namespace: namespace, Selector: selector, DryRun: dryRun,
			SlackToken: token, SlackChannel: channel, SlackAPIUrl: apiURL, LogFormat: format, LogLevel: level, RecoveryTimeout: 5 * time.Minute}
		s, err := c.check()
		if err == nil {
			// Settings the daemon would start with must be usable as they are.
			if s.schedule == nil || s.location == nil || s.selector == nil {
				t.Fatalf("check(%#v) = settings with a nil schedule, zone or selector: %+v", c, s)
			}
			if (s.slack.token == "") != (s.slack.channel == "") || !strings.HasSuffix(s.slack.apiURL, "/") {
				t.Fatalf("check(%#v) = slack settings %+v", c, s.slack)
			}
			return
		}
		// main prints a configError as one line naming the variable to fix, and exits 2.
		var bad *configError
		if !errors.As(err, &bad) {
			t.Fatalf("check(%#v) = %v (%T), want a *configError", c, err, err)
		}
		if !slices.Contains(settingVariables, bad.variable) {
			t.Fatalf("check(%#v) blames %q, not one of the MACAQUE_ settings", c, bad.variable)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Fatalf("check(%#v) = %q: not one line", c, err.Error())
		}
	})
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
