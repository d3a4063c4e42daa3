package charttest

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// schemaNode is the part of values.schema.json that says which values the chart has.
type schemaNode struct {
	Properties map[string]schemaNode `json:"properties"`
}

// leaves lists the values of a schema by their dotted paths: a value with properties of its own
// is their parent, any other (a string, a list, a free-form object) a leaf.
func (n schemaNode) leaves(prefix string) []string {
	var out []string
	for name, child := range n.Properties {
		if len(child.Properties) > 0 {
			out = append(out, child.leaves(prefix+name+".")...)
		} else {
			out = append(out, prefix+name)
		}
	}
	return out
}

// docValues returns the values docs/chart.md's values table names: the code spans of each row's
// first cell, where ".x" is x beside the previous span (`a.b`, `.c` is a.b and a.c).
func docValues(t *testing.T) []string {
	t.Helper()
	_, table, ok := strings.Cut(repoFile(t, "docs/chart.md"), "\n## Values\n")
	if !ok {
		t.Fatal("docs/chart.md has no ## Values")
	}
	var names []string
	for line := range strings.Lines(table) {
		if strings.HasPrefix(line, "## ") {
			break
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 || !strings.HasPrefix(line, "| `") {
			continue
		}
		previous := ""
		for _, m := range codeSpan.FindAllStringSubmatch(cells[1], -1) {
			name := m[1]
			if strings.HasPrefix(name, ".") {
				name = previous[:strings.LastIndex(previous, ".")] + name
			}
			names = append(names, name)
			previous = name
		}
	}
	return names
}

// TestDocsListEveryValue keeps docs/chart.md's values table equal to values.schema.json (which
// refuses any other key): every value has a row, and every row is a value.
func TestDocsListEveryValue(t *testing.T) {
	ch := loadChart(t)
	var schema schemaNode
	if err := json.Unmarshal(ch.Schema, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	values := schema.leaves("")
	documented := docValues(t)
	for _, v := range values {
		if v != "global" && !slices.Contains(documented, v) {
			t.Errorf("docs/chart.md's values table has no row for %s", v)
		}
	}
	for _, d := range documented {
		if !slices.Contains(values, d) {
			t.Errorf("docs/chart.md's values table names %s, which values.schema.json does not have", d)
		}
	}
	if !regexp.MustCompile(`(?m)^\| value \| default \|`).MatchString(repoFile(t, "docs/chart.md")) {
		t.Error("docs/chart.md's values table is not headed | value | default |")
	}
}
