package imagetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tools of tools/release/go.mod that the tests run, by package.
const (
	cyclonedxGomod = "github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod"
	cosignTool     = "github.com/sigstore/cosign/v3/cmd/cosign"
)

// goMod is what `go mod edit -json` prints of a go.mod.
type goMod struct {
	Require []struct {
		Path    string
		Version string
	}
	Tool []struct {
		Path string
	}
}

// releaseToolsModule reads tools/release/go.mod, which pins the tools the release workflow runs.
func releaseToolsModule(t *testing.T, repo string) goMod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "mod", "edit", "-json")
	cmd.Dir = filepath.Join(repo, releaseTools)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v", cmd, cmd.Dir, err)
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("%s/go.mod: %v", releaseTools, err)
	}
	return m
}

// releaseTool returns the path of the binary of pkg, a tool of tools/release/go.mod, at the version
// that go.mod pins: .cache/bin/NAME-VERSION-SUM, built the first time (cosign takes minutes) and
// reused after, as hack/mutation.sh does with gremlins. SUM is the start of go.sum's SHA-256: the
// module also pins the tools' dependencies (some moved past the tools' own for known
// vulnerabilities), and a change to them must not leave a stale binary in use. So the tests run
// the very builds the release workflow makes from that module.
func releaseTool(t *testing.T, repo, pkg string) string {
	t.Helper()
	m := releaseToolsModule(t, repo)
	if !slices.ContainsFunc(m.Tool, func(tool struct{ Path string }) bool { return tool.Path == pkg }) {
		t.Fatalf("%s is not a tool of %s/go.mod", pkg, releaseTools)
	}
	// The module that provides pkg: the longest required path that is pkg or a folder above it.
	var module, version string
	for _, r := range m.Require {
		if (pkg == r.Path || strings.HasPrefix(pkg, r.Path+"/")) && len(r.Path) > len(module) {
			module, version = r.Path, r.Version
		}
	}
	if version == "" {
		t.Fatalf("%s/go.mod requires no module that provides %s", releaseTools, pkg)
	}
	sum, err := os.ReadFile(filepath.Join(repo, releaseTools, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	hash := sha256.Sum256(sum)
	bin := filepath.Join(repo, ".cache", "bin", fmt.Sprintf("%s-%s-%x", path.Base(pkg), version, hash[:6]))
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return bin
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	// Built beside, then renamed into place: an interrupted build, or another test process building
	// the same version, never leaves half a binary under the name.
	tmp, err := os.CreateTemp(filepath.Dir(bin), path.Base(pkg)+".building-*")
	if err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	// Gone after the rename below; only a failed build leaves it to remove.
	defer func() { _ = os.Remove(tmp.Name()) }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp.Name(), pkg)
	cmd.Dir = filepath.Join(repo, releaseTools)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s %s (%s in %s): %v\n%s", module, version, cmd, cmd.Dir, err, out)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		t.Fatal(err)
	}
	t.Logf("built %s of %s %s into %s in %s (once per version)", path.Base(pkg), module, version, bin, time.Since(start).Round(time.Second))
	return bin
}
