package imagetest

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// cdxBOM is the part of a CycloneDX SBOM (JSON) that TestSBOM checks.
type cdxBOM struct {
	BOMFormat   string `json:"bomFormat"`
	SpecVersion string `json:"specVersion"`
	Metadata    struct {
		Component  cdxComponent  `json:"component"`
		Properties []cdxProperty `json:"properties"`
	} `json:"metadata"`
	Components []cdxComponent `json:"components"`
}

type cdxComponent struct {
	Type    string    `json:"type"`
	Name    string    `json:"name"`
	Version string    `json:"version"`
	PURL    string    `json:"purl"`
	Hashes  []cdxHash `json:"hashes"`
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProperty struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TestSBOM runs the release workflow's own SBOM step, with the cyclonedx-gomod that
// tools/release/go.mod pins, on the binary this tree builds for each platform of the image (as the
// Dockerfile builds it: TestImage checks that the image's binary is the same bytes), and checks
// each SBOM against that binary's build information, what `go version -m` prints: the main module
// at the release's version; every module the binary was built from, replaced ones as their
// replacement, at its version and go.sum hash, none missing and none extra; the standard library
// at the Go version that built it; the binary's own SHA-256; purls for the binary's platform. Then
// that the step gives the same bytes a second time (the release says anyone can remake them), and
// that the check fails on SBOMs broken in each of those ways. It needs no buildah: it runs
// wherever Go does.
func TestSBOM(t *testing.T) {
	r := readRelease(t)
	sbomStep, _ := r.step(t, "that makes the SBOMs (runs "+sbomStepRun+")", func(s step) bool { return strings.Contains(s.Run, sbomStepRun) })
	tool := releaseTool(t, r.repo, cyclonedxGomod)

	// The workspace as the step finds it in the job: each binary where the binaries step puts it.
	ws := t.TempDir()
	binaries := map[string][]byte{}
	for _, p := range platforms {
		start := time.Now()
		b := hostBuild(t, r.repo, p)
		t.Logf("%s: built the binary (%d bytes) in %s", p, len(b), time.Since(start).Round(time.Millisecond))
		binaries[p.String()] = b
		writeBinary(t, ws, p, b)
	}
	// HOME, as on a runner: cyclonedx-gomod takes the purls' platform from `go env`, which fails
	// without one (no GOCACHE), and then writes purls with an empty goos and goarch.
	env := append([]string{"GITHUB_REF_NAME=" + r.tag, "HOME=" + t.TempDir()}, onPath(t, map[string]string{"cyclonedx-gomod": tool})...)
	start := time.Now()
	runStep(t, sbomStep, ws, env)
	t.Logf("the SBOM step ran in %s", time.Since(start).Round(time.Millisecond))
	sboms := map[string][]byte{}
	for _, p := range platforms {
		b, err := os.ReadFile(filepath.Join(ws, sbomFile(p)))
		if err != nil {
			t.Fatalf("the SBOM step wrote no %s: %v", sbomFile(p), err)
		}
		sboms[p.String()] = b
	}
	runStep(t, sbomStep, ws, env)
	for _, p := range platforms {
		if b, err := os.ReadFile(filepath.Join(ws, sbomFile(p))); err != nil || !bytes.Equal(b, sboms[p.String()]) {
			t.Errorf("%s: the SBOM step wrote other bytes the second time (%v): no one could make the release's SBOM again and compare", sbomFile(p), err)
		}
	}

	var amd64 cdxBOM
	var amd64Info *debug.BuildInfo
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			var bom cdxBOM
			if err := json.Unmarshal(sboms[p.String()], &bom); err != nil {
				t.Fatalf("%s: %v", sbomFile(p), err)
			}
			bi, err := buildinfo.Read(bytes.NewReader(binaries[p.String()]))
			if err != nil {
				t.Fatalf("the %s binary has no build information: %v", p, err)
			}
			for _, problem := range sbomProblems(bom, bi, binaries[p.String()], r.tag) {
				t.Errorf("%s: %s", sbomFile(p), problem)
			}
			t.Logf("%s: CycloneDX %s, %s %s, %d components (%d modules and the standard library of %s)",
				sbomFile(p), bom.SpecVersion, bom.Metadata.Component.Name, bom.Metadata.Component.Version, len(bom.Components), len(bi.Deps), bi.GoVersion)
			if p.arch == "amd64" {
				amd64, amd64Info = bom, bi
			}
		})
	}
	if amd64Info == nil {
		t.Fatal("no linux/amd64 SBOM to break")
	}
	t.Run("broken", func(t *testing.T) { checkSBOMChecks(t, amd64, amd64Info, binaries["linux/amd64"], r.tag) })
}

// checkSBOMChecks breaks a good SBOM, or the binary it describes, in each way sbomProblems must
// catch, and checks that it does; and that a replaced module named as its replacement passes.
func checkSBOMChecks(t *testing.T, good cdxBOM, bi *debug.BuildInfo, binary []byte, version string) {
	dep := slices.IndexFunc(good.Components, func(c cdxComponent) bool { return c.Name != "std" })
	std := slices.IndexFunc(good.Components, func(c cdxComponent) bool { return c.Name == "std" })
	if dep < 0 || std < 0 {
		t.Fatalf("the SBOM has no module or no standard library to break: %+v", good.Components)
	}
	replaced := slices.IndexFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == good.Components[dep].Name })
	replace := func(bi *debug.BuildInfo) {
		bi.Deps[replaced].Replace = &debug.Module{Path: "example.com/fork", Version: "v1.2.3"}
	}
	cases := []struct {
		name    string
		bom     func(*cdxBOM)
		bi      func(*debug.BuildInfo)
		binary  func([]byte)
		version string
		pass    bool // the change leaves the SBOM right
	}{
		{name: "a module missing", bom: func(b *cdxBOM) { b.Components = slices.Delete(b.Components, dep, dep+1) }},
		{name: "a module at another version", bom: func(b *cdxBOM) { b.Components[dep].Version += ".1" }},
		{name: "a module twice", bom: func(b *cdxBOM) { b.Components = append(b.Components, b.Components[dep]) }},
		{name: "a module the binary lacks", bom: func(b *cdxBOM) {
			b.Components = append(b.Components, cdxComponent{Type: "library", Name: "example.com/extra", Version: "v1.0.0",
				PURL: "pkg:golang/example.com/extra@v1.0.0?goarch=amd64&goos=linux&type=module"})
		}},
		{name: "a module with another hash", bom: func(b *cdxBOM) {
			b.Components[dep].Hashes = []cdxHash{{Alg: "SHA-256", Content: strings.Repeat("0", 64)}}
		}},
		{name: "a purl of another platform", bom: func(b *cdxBOM) {
			b.Components[dep].PURL = strings.Replace(b.Components[dep].PURL, "goarch=amd64", "goarch=arm64", 1)
		}},
		{name: "the standard library of another Go", bom: func(b *cdxBOM) { b.Components[std].Version = "go1.0" }},
		{name: "no standard library", bom: func(b *cdxBOM) { b.Components = slices.Delete(b.Components, std, std+1) }},
		{name: "the main module at another version", version: version + "-rc.1"},
		{name: "another binary", binary: func(b []byte) { b[len(b)/2] ^= 0xff }},
		{name: "a replaced module named as the original", bi: replace},
		{name: "a replaced module named as its replacement", bi: replace, pass: true, bom: func(b *cdxBOM) {
			b.Components[dep] = cdxComponent{Type: "library", Name: "example.com/fork", Version: "v1.2.3",
				PURL: "pkg:golang/example.com/fork@v1.2.3?goarch=amd64&goos=linux&type=module"}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var bom cdxBOM
			b, err := json.Marshal(good)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &bom); err != nil { // a deep copy
				t.Fatal(err)
			}
			info := *bi
			info.Deps = make([]*debug.Module, len(bi.Deps))
			for i, m := range bi.Deps {
				mod := *m
				info.Deps[i] = &mod
			}
			bin, v := slices.Clone(binary), version
			if c.bom != nil {
				c.bom(&bom)
			}
			if c.bi != nil {
				c.bi(&info)
			}
			if c.binary != nil {
				c.binary(bin)
			}
			if c.version != "" {
				v = c.version
			}
			problems := sbomProblems(bom, &info, bin, v)
			if c.pass && len(problems) > 0 {
				t.Errorf("the check fails a right SBOM: %q", problems)
			}
			if !c.pass && len(problems) == 0 {
				t.Error("the check passes the broken SBOM")
			}
			if len(problems) > 0 {
				t.Logf("%d problem(s), the first: %s", len(problems), problems[0])
			}
		})
	}
}

// sbomProblems lists what bom says of the binary that its build information bi contradicts or does
// not say; version is the release's, which the binary does not know (it is built without VCS
// information, so its main module is "(devel)").
func sbomProblems(bom cdxBOM, bi *debug.BuildInfo, binary []byte, version string) []string {
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	goos, goarch := settings["GOOS"], settings["GOARCH"]
	// cyclonedx-gomod's purls: the module at its version, for the binary's platform.
	purl := func(path, version string) string {
		return fmt.Sprintf("pkg:golang/%s@%s?goarch=%s&goos=%s&type=module", path, version, goarch, goos)
	}

	if bom.BOMFormat != "CycloneDX" {
		fail("bomFormat is %q, want CycloneDX", bom.BOMFormat)
	}
	if m := bom.Metadata.Component; m.Type != "application" || m.Name != bi.Main.Path || m.Version != version || m.PURL != purl(bi.Main.Path, version) {
		fail("the main component is %s %s %s (%s), want application %s %s (%s): the binary's main module at the release's version",
			m.Type, m.Name, m.Version, m.PURL, bi.Main.Path, version, purl(bi.Main.Path, version))
	}
	if bi.Main.Version != "(devel)" && bi.Main.Version != version {
		fail("the binary's main module is at %s, the release at %s", bi.Main.Version, version)
	}
	properties := map[string]string{}
	for _, p := range bom.Metadata.Properties {
		properties[p.Name] = p.Value
	}
	sum := sha256.Sum256(binary)
	for name, want := range map[string]string{
		"cdx:gomod:build:env:GOVERSION": bi.GoVersion, // the toolchain, and so the standard library
		"cdx:gomod:build:env:GOOS":      goos,
		"cdx:gomod:build:env:GOARCH":    goarch,
		"cdx:gomod:binary:hash:SHA-256": hex.EncodeToString(sum[:]), // this binary, not another build
	} {
		if properties[name] != want {
			fail("property %s is %q, want %q", name, properties[name], want)
		}
	}

	// What is linked in: each module (a replaced one's code is its replacement's), and the
	// standard library at the Go version that built the binary.
	type module struct{ version, sha256 string }
	want := map[string]module{"std": {version: bi.GoVersion}}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		want[m.Path] = module{version: m.Version, sha256: goSumSHA256(m.Sum)}
	}
	seen := map[string]bool{}
	for _, c := range bom.Components {
		w, ok := want[c.Name]
		switch {
		case !ok:
			fail("names %s %s, which the binary was not built from", c.Name, c.Version)
			continue
		case seen[c.Name]:
			fail("names %s more than once", c.Name)
		case c.Version != w.version:
			fail("names %s %s, the binary has %s", c.Name, c.Version, w.version)
		}
		seen[c.Name] = true
		if c.PURL != purl(c.Name, w.version) {
			fail("%s has purl %s, want %s", c.Name, c.PURL, purl(c.Name, w.version))
		}
		// go.sum's h1: hash (a SHA-256), as cyclonedx-gomod copies it from the binary.
		i := slices.IndexFunc(c.Hashes, func(h cdxHash) bool { return h.Alg == "SHA-256" })
		if w.sha256 != "" && (i < 0 || c.Hashes[i].Content != w.sha256) {
			fail("%s has hashes %v, want SHA-256 %s (its go.sum hash)", c.Name, c.Hashes, w.sha256)
		}
	}
	var missing []string
	for path, m := range want {
		if !seen[path] {
			missing = append(missing, path+" "+m.version)
		}
	}
	slices.Sort(missing)
	for _, m := range missing {
		fail("misses %s, which the binary was built from", m)
	}
	return problems
}

// goSumSHA256 is the SHA-256 of a go.sum h1: hash, in hex ("" for no hash).
func goSumSHA256(sum string) string {
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sum, "h1:"))
	if !strings.HasPrefix(sum, "h1:") || err != nil {
		return ""
	}
	return hex.EncodeToString(b)
}

// sbomFile is where the SBOM step writes p's SBOM, and the release attaches it.
func sbomFile(p platform) string { return "release/macaque-" + p.os + "-" + p.arch + ".cdx.json" }

// writeBinary puts p's binary where the release job's binaries step copies it out of the image.
func writeBinary(t *testing.T, ws string, p platform, binary []byte) {
	t.Helper()
	dir := filepath.Join(ws, "dist", "image", p.os+"_"+p.arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "macaque"), binary, 0o755); err != nil {
		t.Fatal(err)
	}
}

// onPath returns the environment of a step that finds each command of commands (name → binary)
// first on PATH, as the release job finds the tools it built.
func onPath(t *testing.T, commands map[string]string) []string {
	t.Helper()
	dir := t.TempDir()
	for name, bin := range commands {
		if err := os.Symlink(bin, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"PATH=" + dir + string(os.PathListSeparator) + os.Getenv("PATH")}
}
