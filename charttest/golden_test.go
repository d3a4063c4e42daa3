package charttest

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// updateGolden rewrites testdata/golden from the chart: go test -run TestGolden -update-golden.
var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/golden/*.yaml from the chart")

// TestGolden compares the chart's render of each value set with its reviewed copy in
// testdata/golden: a change to the chart shows there, object by object, in review.
func TestGolden(t *testing.T) {
	ch := loadChart(t)
	for _, vs := range valueSets {
		t.Run(vs.name, func(t *testing.T) {
			got := render(t, ch, vs.values)
			path := filepath.Join("testdata", "golden", strings.ReplaceAll(vs.name, " ", "-")+".yaml")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (go test -run TestGolden -update-golden writes it)", err)
			}
			if got != string(want) {
				line, g, w := firstDiff(got, string(want))
				t.Errorf("the render differs from %s at line %d: %q, want %q (review, then go test -run TestGolden -update-golden)", path, line, g, w)
			}
		})
	}
}
