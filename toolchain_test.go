package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// TestToolchainPinned keeps every place that names the Go toolchain at go.mod's go line: a
// machine starts on its own Go and ignores go.mod's, so a script that forgets GOTOOLCHAIN, or a
// module or Dockerfile left on an older Go, builds (and ships) with the standard library's known
// vulnerabilities that the pin exists to leave behind.
func TestToolchainPinned(t *testing.T) {
	goMod := readRepoFile(t, "go.mod")
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+\.\d+)$`).FindStringSubmatch(goMod)
	if m == nil {
		t.Fatal("go.mod: no go line with an exact version (go X.Y.Z)")
	}
	version := m[1]
	t.Logf("go.mod: go %s", version)
	exact := regexp.QuoteMeta(version)
	cases := []struct {
		file string
		want string // a pattern that must match the file somewhere
	}{
		{"Makefile", `(?m)^export GOTOOLCHAIN := go` + exact + `$`},
		{".ci/run", `(?m)^export GOTOOLCHAIN=go` + exact + `$`},
		{"hack/image.sh", `(?m)^export GOTOOLCHAIN=\$\{GOTOOLCHAIN:-go` + exact + `\}$`},
		{"hack/controlplane.sh", `(?m)^export GOTOOLCHAIN=\$\{GOTOOLCHAIN:-go` + exact + `\}$`},
		{"hack/mutation.sh", `(?m)^export GOTOOLCHAIN=\$\{GOTOOLCHAIN:-go` + exact + `\}$`},
		{"hack/vulncheck.sh", `(?m)^export GOTOOLCHAIN=\$\{GOTOOLCHAIN:-go` + exact + `\}$`},
		{"hack/lint.sh", `(?m)^export GOTOOLCHAIN=\$\{GOTOOLCHAIN:-go` + exact + `\}$`},
		{"Dockerfile", `(?m)^FROM --platform=\$BUILDPLATFORM golang:` + exact + ` AS build$`},
		{"README.md", `export GOTOOLCHAIN=go` + exact + `\b`},
		{"e2e/go.mod", `(?m)^go ` + exact + `$`},
		{"imagetest/go.mod", `(?m)^go ` + exact + `$`},
		{"deploy/go.mod", `(?m)^go ` + exact + `$`},
		{"charttest/go.mod", `(?m)^go ` + exact + `$`},
		{"hack/chart.sh", `(?m)^export GOTOOLCHAIN=\$\{GOTOOLCHAIN:-go` + exact + `\}$`},
		{"tools/mutation/go.mod", `(?m)^go ` + exact + `$`},
		{"tools/vulncheck/go.mod", `(?m)^go ` + exact + `$`},
		{"tools/release/go.mod", `(?m)^go ` + exact + `$`},
		{"tools/golangci/go.mod", `(?m)^go ` + exact + `$`},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			if !regexp.MustCompile(c.want).MatchString(readRepoFile(t, c.file)) {
				t.Errorf("%s does not pin Go %s: nothing matches %s", c.file, version, c.want)
			}
		})
	}
}

// readRepoFile reads a file by its path from the repository's root (the root package's folder).
func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
