package main

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kelseyhightower/envconfig"
)

// TestUsageIsEnvconfigs checks macaque's own listing of its settings against envconfig's, which
// reads them: the same variables, and `macaque -h`'s table as envconfig's DefaultTableFormat
// writes it, byte for byte. A new setting of a type settingType does not name fails here.
func TestUsageIsEnvconfigs(t *testing.T) {
	var want strings.Builder
	if err := envconfig.Usagef(envPrefix, &Config{}, &want, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(knownSettings(), "\n") + "\n"; got != want.String() {
		t.Errorf("knownSettings:\n%s\nenvconfig reads:\n%s", got, want.String())
	}
	want.Reset()
	if err := envconfig.Usagef(envPrefix, &Config{}, &want, envconfig.DefaultTableFormat); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	if err := usageTable(&got); err != nil {
		t.Fatal(err)
	}
	if got.String() != want.String() {
		t.Errorf("usageTable:\n%s\nenvconfig's:\n%s", got.String(), want.String())
	}
}

// TestSettingKey checks the split_words names of the shapes Config's fields take.
func TestSettingKey(t *testing.T) {
	for _, tt := range []struct{ field, want string }{
		{"Crontab", "MACAQUE_CRONTAB"},
		{"AllowFastSchedule", "MACAQUE_ALLOW_FAST_SCHEDULE"},
		{"SlackAPIUrl", "MACAQUE_SLACK_API_URL"},
		{"HTTPAddr", "MACAQUE_HTTP_ADDR"},
		{"MinPodAge", "MACAQUE_MIN_POD_AGE"},
	} {
		t.Run(tt.field, func(t *testing.T) {
			if got := settingKey(tt.field); got != tt.want {
				t.Errorf("settingKey(%q) = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
}

// TestNoTemplateInTheDaemon keeps templates out of the daemon's code: a template's reflective
// method calls make the linker keep every exported method of every type, 4.4 MB of the 20.0 MB
// the binary was (see usage.go). envconfig imports text/template for its Usage functions, which
// cost nothing until called; tests may call them, the daemon may not.
func TestNoTemplateInTheDaemon(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	internal, err := filepath.Glob("internal/*/*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, name := range append(files, internal...) {
		if strings.HasSuffix(name, "_test.go") || strings.Contains(name, "test") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); p == "text/template" || p == "html/template" {
				t.Errorf("%s imports %s", name, p)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "Usage") {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "envconfig" {
					t.Errorf("%s calls envconfig.%s, which executes a template: use usageTable", name, sel.Sel.Name)
				}
			}
			return true
		})
	}
	if checked < 20 {
		t.Fatalf("checked %d files: not the daemon's", checked)
	}
}

// failingWriter refuses every write, as a closed stdout does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errClosedOutput }

var errClosedOutput = errors.New("write /dev/stdout: file already closed")

// TestUsageTableStopsAtAFailedWrite: usageTable returns the first write's error, for
// printUsage to return, rather than dropping it.
func TestUsageTableStopsAtAFailedWrite(t *testing.T) {
	if err := usageTable(failingWriter{}); !errors.Is(err, errClosedOutput) {
		t.Errorf("usageTable = %v, want %v", err, errClosedOutput)
	}
}
