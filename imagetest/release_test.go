package imagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// workflow is the part of a GitHub Actions workflow that the release test reads.
type workflow struct {
	On struct {
		Push struct {
			Tags []string `yaml:"tags"`
		} `yaml:"push"`
	} `yaml:"on"`
	Defaults struct {
		Run struct {
			Shell string `yaml:"shell"`
		} `yaml:"run"`
	} `yaml:"defaults"`
	Jobs map[string]job `yaml:"jobs"`
}

type job struct {
	Needs       any               `yaml:"needs"` // a job name or a list of them
	Permissions map[string]string `yaml:"permissions"`
	Steps       []step            `yaml:"steps"`
}

type step struct {
	ID   string            `yaml:"id"`
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	With map[string]string `yaml:"with"`
	Env  map[string]string `yaml:"env"`
	Run  string            `yaml:"run"`
}

const (
	releaseWorkflow = ".github/workflows/image.yml"
	imageOutput     = "${{ steps.name.outputs.image }}" // the image, as later steps read it
	nameOutput      = "${{ steps.name.outputs.name }}"  // the image's repository, without the tag
	digestOutput    = "${{ steps.push.outputs.digest }}"
	stampedManifest = "release/macaque.yml"  // what the stamp step writes
	clusterManifest = "macaque-cluster.yml"  // the cluster-wide manifest, stamped beside it
	releaseTools    = "tools/release"        // the module that pins the tools the release runs
	bundleSuffix    = ".sigstore.json"       // of the Sigstore bundle signed beside each release file
	sbomStepRun     = "cyclonedx-gomod bin " // what only the SBOM step runs
	chartDir        = "charts/macaque"       // the Helm chart the release packages and pushes
	helmBuild       = `go install "helm.sh/helm/v4/cmd/helm@$version"`
	chartOutput     = "${{ steps.chart.outputs.chart }}" // the chart's repository, without oci://
)

var imageLine = regexp.MustCompile(`(?m)^ *image: *(\S+) *$`)

// release is what the release tests read from the repository.
type release struct {
	repo       string // the repository's root
	version    string // the Makefile's VERSION
	tag        string // v + version: the tag that releases it
	repository string // OWNER/REPO on GitHub, from go.mod's module path
	wf         workflow
}

func readRelease(t *testing.T) release {
	t.Helper()
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	r := release{repo: repo}
	r.version = submatch(t, "Makefile", r.read(t, "Makefile"), `(?m)^VERSION\s*\?=\s*(\S+)\s*$`)
	r.tag = "v" + r.version
	module := submatch(t, "go.mod", r.read(t, "go.mod"), `(?m)^module\s+(\S+)\s*$`)
	var ok bool
	if r.repository, ok = strings.CutPrefix(module, "github.com/"); !ok {
		t.Fatalf("go.mod: module %s is not on github.com: cannot tell the repository the workflow runs in", module)
	}
	if err := yaml.Unmarshal(r.read(t, releaseWorkflow), &r.wf); err != nil {
		t.Fatalf("%s: %v", releaseWorkflow, err)
	}
	return r
}

func (r release) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(r.repo, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// step returns the release job's one step that match picks, and its index in the job.
func (r release) step(t *testing.T, what string, match func(step) bool) (step, int) {
	t.Helper()
	steps := r.wf.Jobs["release"].Steps
	var found []int
	for i, s := range steps {
		if match(s) {
			found = append(found, i)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s: %d steps of job release %s, want 1", releaseWorkflow, len(found), what)
	}
	return steps[found[0]], found[0]
}

// github is the github context of a run of the tag, as the release test stands it in.
func (r release) github() map[string]string {
	return map[string]string{
		"github.server_url":    "https://github.com",
		"github.repository":    r.repository,
		"github.actor":         "release-test",
		"github.token":         "token-of-the-release-test",
		"secrets.GITHUB_TOKEN": "token-of-the-release-test",
	}
}

// TestReleaseNamesTheManifestsImage checks that macaque.yml, as the repository holds it, names the
// image that the release workflow pushes for the Makefile's VERSION, and that the release attaches
// macaque.yml with its image stamped to the tag's. It runs the workflow's own shell steps (with
// bash, in a temporary directory) rather than repeating what they compute.
func TestReleaseNamesTheManifestsImage(t *testing.T) {
	r := readRelease(t)
	manifest := r.read(t, "macaque.yml")
	lines := imageLine.FindAllSubmatch(manifest, -1)
	if len(lines) != 1 {
		t.Fatalf("macaque.yml has %d image: lines, want 1", len(lines))
	}
	manifestImage := string(lines[0][1])

	if !slices.Contains(r.wf.On.Push.Tags, "v*") {
		t.Errorf("%s: runs on tags %q, want v*", releaseWorkflow, r.wf.On.Push.Tags)
	}
	// The pre-release mutation check gates the release: a job that pushes cannot start without it.
	mutationJob, releaseJob := r.wf.Jobs["mutation"], r.wf.Jobs["release"]
	if !slices.ContainsFunc(mutationJob.Steps, func(s step) bool { return strings.TrimSpace(s.Run) == "make mutation" }) {
		t.Errorf("%s: no job mutation running `make mutation`", releaseWorkflow)
	}
	if fmt.Sprint(releaseJob.Needs) != "mutation" && fmt.Sprint(releaseJob.Needs) != "[mutation]" {
		t.Errorf("%s: job release needs %v, want mutation", releaseWorkflow, releaseJob.Needs)
	}

	// What the tag v$VERSION pushes: run the step that names the image as Actions would.
	env := []string{"GITHUB_REPOSITORY=" + r.repository, "GITHUB_REF_NAME=" + r.tag}
	naming, _ := r.step(t, "with id name (it names the image)", func(s step) bool { return s.ID == "name" })
	outputs := runStep(t, naming, t.TempDir(), env)
	pushed := outputs["image"]
	t.Logf("tag %s of %s pushes %s", r.tag, r.repository, pushed)
	if manifestImage != pushed {
		t.Errorf("macaque.yml's image is %s, but the release workflow pushes %s for the Makefile's VERSION %s", manifestImage, pushed, r.version)
	}
	if want := "ghcr.io/" + strings.ToLower(r.repository) + ":" + r.version; pushed != want {
		t.Errorf("the workflow names the image %s, want %s (GitHub's container registry, the tag without its v)", pushed, want)
	}
	if name := outputs["name"]; name+":"+r.version != pushed {
		t.Errorf("the workflow names the image's repository %q, want the image without its tag (%s)", name, pushed)
	}
	if mk := submatch(t, "Makefile", r.read(t, "Makefile"), `(?m)^IMAGE\s*\?=\s*(\S+)\s*$`); strings.ReplaceAll(mk, "$(VERSION)", r.version) != pushed {
		t.Errorf("the Makefile's IMAGE is %s, want the image the release pushes: %s", mk, pushed)
	}

	// The push: that image, both platforms.
	push, _ := r.step(t, "that runs docker buildx build --push", func(s step) bool { return strings.Contains(s.Run, "--push") })
	if push.Env["IMAGE"] != imageOutput || !strings.Contains(push.Run, `-t "$IMAGE"`) {
		t.Errorf("the push step does not tag the image the name step names (env IMAGE %q, want %q, and -t \"$IMAGE\")", push.Env["IMAGE"], imageOutput)
	}
	if !strings.Contains(push.Run, "--platform linux/amd64,linux/arm64") {
		t.Errorf("the push step does not build --platform linux/amd64,linux/arm64:\n%s", push.Run)
	}

	// The stamp: run it on the repository's macaque.yml with the image of another version, so that
	// a stamp that changes nothing cannot pass.
	stamp, _ := r.step(t, "that stamps the manifests' image: lines", func(s step) bool {
		return strings.Contains(s.Run, "image: ") && strings.Contains(s.Run, "release/$m")
	})
	if stamp.Env["IMAGE"] != imageOutput {
		t.Errorf("the stamp step's env IMAGE is %q, want %q", stamp.Env["IMAGE"], imageOutput)
	}
	dir := t.TempDir()
	cluster := r.read(t, clusterManifest)
	if err := os.WriteFile(filepath.Join(dir, "macaque.yml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, clusterManifest), cluster, 0o644); err != nil {
		t.Fatal(err)
	}
	other := "ghcr.io/" + strings.ToLower(r.repository) + ":99.0.1-rc.1"
	runStep(t, stamp, dir, append(env, "IMAGE="+other))
	stamped, err := os.ReadFile(filepath.Join(dir, stampedManifest))
	if err != nil {
		t.Fatalf("the stamp step wrote no %s: %v", stampedManifest, err)
	}
	wantStamped := bytes.Replace(manifest, lines[0][0], bytes.Replace(lines[0][0], lines[0][1], []byte(other), 1), 1)
	if !bytes.Equal(stamped, wantStamped) {
		t.Errorf("the stamp step wrote a %s that is not macaque.yml with image %s:\n%s", stampedManifest, other, stamped)
	}
	// macaque-cluster.yml is macaque.yml made cluster-wide (TestClusterManifest): the same image.
	stampedCluster, err := os.ReadFile(filepath.Join(dir, "release", clusterManifest))
	if err != nil {
		t.Fatalf("the stamp step wrote no release/%s: %v", clusterManifest, err)
	}
	clusterLines := imageLine.FindAllSubmatch(cluster, -1)
	if len(clusterLines) != 1 || !bytes.Equal(clusterLines[0][1], lines[0][1]) {
		t.Fatalf("%s names images %q, want the one of macaque.yml, %s", clusterManifest, clusterLines, lines[0][1])
	}
	if want := bytes.Replace(cluster, clusterLines[0][0], bytes.Replace(clusterLines[0][0], clusterLines[0][1], []byte(other), 1), 1); !bytes.Equal(stampedCluster, want) {
		t.Errorf("the stamp step wrote a release/%s that is not %s with image %s:\n%s", clusterManifest, clusterManifest, other, stampedCluster)
	}

	// The release: the tag's, with the stamped manifest attached (as macaque.yml, the name the
	// README's curl -LO .../releases/latest/download/macaque.yml asks for).
	publish, _ := r.step(t, "that runs gh release create", func(s step) bool { return strings.Contains(s.Run, "gh release create") })
	if !strings.Contains(publish.Run, `gh release create "$GITHUB_REF_NAME" `+stampedManifest+" release/"+clusterManifest+" ") {
		t.Errorf("the release step does not attach %s and release/%s to the tag's release:\n%s", stampedManifest, clusterManifest, publish.Run)
	}
}

// runStep runs a workflow step's script as GitHub Actions runs `run:` with `shell: bash` (bash
// --noprofile --norc -eo pipefail), in dir with nothing in its environment but PATH, a fresh
// $GITHUB_OUTPUT and env (where a later PATH replaces the first), and returns the outputs the step
// wrote to $GITHUB_OUTPUT.
func runStep(t *testing.T, s step, dir string, env []string) map[string]string {
	t.Helper()
	if s.Run == "" {
		t.Fatalf("step %q runs no script", s.Name)
	}
	out := filepath.Join(t.TempDir(), "github-output")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.Run)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "GITHUB_OUTPUT=" + out}, env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step %q: %v\n%s", s.Name, err, b)
	}
	outputs := map[string]string{}
	b, err := os.ReadFile(out)
	if errors.Is(err, os.ErrNotExist) {
		return outputs
	} else if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		key, value, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !ok {
			t.Fatalf("step %q wrote %q to $GITHUB_OUTPUT: not KEY=VALUE", s.Name, line)
		}
		outputs[key] = value
	}
	return outputs
}

var expression = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// stepEnv is the step's env: with each ${{ x }} replaced by values[x], as Actions evaluates it
// (steps.ID.outputs.KEY for what an earlier step wrote). An expression it does not know fails the
// test: a step reading an output no step writes would get an empty string on GitHub.
func stepEnv(t *testing.T, s step, values map[string]string) []string {
	t.Helper()
	var env []string
	for k, v := range s.Env {
		v = expression.ReplaceAllStringFunc(v, func(e string) string {
			x := expression.FindStringSubmatch(e)[1]
			value, ok := values[x]
			if !ok {
				t.Fatalf("step %q: %s reads ${{ %s }}, which no earlier step or context sets", s.Name, k, x)
			}
			return value
		})
		env = append(env, k+"="+v)
	}
	return env
}

// submatch returns the first group of re in b, and fails the test when re does not match.
func submatch(t *testing.T, what string, b []byte, re string) string {
	t.Helper()
	m := regexp.MustCompile(re).FindSubmatch(b)
	if m == nil {
		t.Fatalf("%s: nothing matches %s", what, re)
	}
	return string(m[1])
}

// TestReleaseSignsWhatItPushes runs the release job's shell steps in order, as Actions would, with
// stand-ins for docker, cyclonedx-gomod, cosign, helm and gh that record how they are called (and write
// what the next steps read: buildx's metadata, the image index, the binaries, the SBOMs and the
// bundles), and checks what the job asks of them: that everything is signed and attested by the
// digest that was pushed, never by the tag; each platform's SBOM attested to that platform's image
// and made from the binary copied out of it; the Helm chart stamped to the image, packaged, pushed
// and signed by the digest pushed; every file of the release signed; and the release
// attaching the manifests, the SBOMs and every bundle, after checking all of it as a user would
// (cosign verify, verify-attestation and verify-blob with the workflow's exact identity, and gh
// attestation verify). The steps' env is evaluated as Actions would, so an output that no step
// writes fails here. TestSBOM runs the SBOM step with the real
// cyclonedx-gomod, and TestImage/signature the signing steps with the real cosign.
func TestReleaseSignsWhatItPushes(t *testing.T) {
	r := readRelease(t)
	if _, err := exec.LookPath("jq"); err != nil {
		t.Fatal("jq is not installed: the release job's steps read buildx's JSON with it, as GitHub's runners have it: apt-get install jq")
	}
	releaseJob := r.wf.Jobs["release"]
	checkReleaseJobSettings(t, r, releaseJob)
	toolsAt := checkReleaseToolsStep(t, r, releaseJob)
	helmAt := checkHelmBuildStep(t, r, toolsAt)
	checkProvenanceStep(t, r)

	run := runReleaseJob(t, r, releaseJob, toolsAt, helmAt)
	run.checkPushAndBinaries(t)
	run.checkChart(t, r)
	sboms := run.checkSBOMs(t)
	run.checkSignedByDigest(t, sboms)
	attached, wantSigned := run.checkFilesSigned(t, sboms)
	run.checkVerified(t, r, wantSigned)
	run.checkPublishedLast(t, r, attached)
}

// checkReleaseJobSettings checks the release job's permissions and the workflow's shell.
func checkReleaseJobSettings(t *testing.T, r release, releaseJob job) {
	t.Helper()
	// Keyless signing needs the job's OIDC token (id-token), the provenance GitHub's attestation
	// store (attestations); the image, its signatures and attestations go to the registry (packages).
	for scope, want := range map[string]string{"contents": "write", "packages": "write", "id-token": "write", "attestations": "write"} {
		if got := releaseJob.Permissions[scope]; got != want {
			t.Errorf("%s: job release has permission %s: %q, want %q", releaseWorkflow, scope, got, want)
		}
	}
	// runStep runs scripts as `shell: bash` does: with -o pipefail, which the default shell lacks.
	if r.wf.Defaults.Run.Shell != "bash" {
		t.Errorf("%s: defaults.run.shell is %q, want bash (bash -eo pipefail: a failing command in a pipeline fails the step)", releaseWorkflow, r.wf.Defaults.Run.Shell)
	}
}

// checkReleaseToolsStep checks that the tools are built from tools/release/go.mod, every tool it
// pins, after Go is set up and before any step runs one; it returns the tools step's index.
func checkReleaseToolsStep(t *testing.T, r release, releaseJob job) int {
	t.Helper()
	tools, toolsAt := r.step(t, "that builds the tools of "+releaseTools, func(s step) bool { return strings.Contains(s.Run, "cd "+releaseTools) })
	for _, line := range []string{"cd " + releaseTools, `go build -o "$RUNNER_TEMP/bin/" `, `echo "$RUNNER_TEMP/bin" >>"$GITHUB_PATH"`} {
		if !strings.Contains(tools.Run, line) {
			t.Errorf("the tools step does not run %q:\n%s", line, tools.Run)
		}
	}
	mod := releaseToolsModule(t, r.repo)
	for _, tool := range mod.Tool {
		if !slices.Contains(strings.Fields(tools.Run), tool.Path) {
			t.Errorf("the tools step does not build %s, a tool of %s/go.mod:\n%s", tool.Path, releaseTools, tools.Run)
		}
	}
	_, setupAt := r.step(t, "that sets up Go for "+releaseTools, func(s step) bool {
		return strings.HasPrefix(s.Uses, "actions/setup-go@") && s.With["go-version-file"] == releaseTools+"/go.mod"
	})
	if setupAt > toolsAt {
		t.Error("the tools step runs before Go is set up")
	}
	for _, s := range releaseJob.Steps[:toolsAt] {
		if strings.Contains(s.Run, "cosign ") || strings.Contains(s.Run, "cyclonedx-gomod ") {
			t.Errorf("step %q runs a release tool before the tools step has built it", s.Name)
		}
	}
	return toolsAt
}

// checkProvenanceStep checks that the provenance is of the index that was pushed, by digest,
// stored beside it in the registry.
func checkProvenanceStep(t *testing.T, r release) {
	t.Helper()
	provenance, provenanceAt := r.step(t, "that attests the build provenance", func(s step) bool {
		return strings.HasPrefix(s.Uses, "actions/attest-build-provenance@")
	})
	_, pushAt := r.step(t, "with id push", func(s step) bool { return s.ID == "push" })
	for key, want := range map[string]string{"subject-name": nameOutput, "subject-digest": digestOutput, "push-to-registry": "true"} {
		if got := provenance.With[key]; got != want {
			t.Errorf("the provenance step has %s: %q, want %q", key, got, want)
		}
	}
	if provenanceAt < pushAt {
		t.Error("the provenance step runs before the push")
	}
}

// The image index the docker stand-in says buildx pushed, its digest, and its two platforms'.
const (
	standInIndex = `{
  "schemaVersion": 2,
  "mediaType": "application/vnd.oci.image.index.v1+json",
  "manifests": [
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2", "size": 1, "platform": {"architecture": "arm64", "os": "linux"}},
    {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3", "size": 1, "platform": {"architecture": "unknown", "os": "unknown"},
     "annotations": {"vnd.docker.reference.digest": "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", "vnd.docker.reference.type": "attestation-manifest"}}
  ]
}`
	standInIndexDigest = "sha256:1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d"
	standInAmd64Digest = "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	standInArm64Digest = "sha256:a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2"
	standInChartDigest = "sha256:c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4" // what the helm stand-in says it pushed
)

// checkHelmBuildStep checks that helm is built at the version charttest/go.mod pins (the Go
// packages the chart's tests render and install with), onto the PATH the tools step set, before
// any step runs it; it returns the step's index.
func checkHelmBuildStep(t *testing.T, r release, toolsAt int) int {
	t.Helper()
	build, buildAt := r.step(t, "that builds helm", func(s step) bool { return strings.Contains(s.Run, helmBuild) })
	for _, line := range []string{`version=$(cd charttest && go list -m -f '{{.Version}}' helm.sh/helm/v4)`, `GOBIN="$RUNNER_TEMP/bin" ` + helmBuild} {
		if !strings.Contains(build.Run, line) {
			t.Errorf("the helm step does not run %q:\n%s", line, build.Run)
		}
	}
	if buildAt < toolsAt {
		t.Error("helm is built before the tools step puts $RUNNER_TEMP/bin on the PATH")
	}
	for _, s := range r.wf.Jobs["release"].Steps[:buildAt] {
		if strings.Contains(s.Run, "helm ") {
			t.Errorf("step %q runs helm before the step that builds it", s.Name)
		}
	}
	return buildAt
}

// chartImageLine matches the lines of the chart that name its image: values.yaml's
// image.repository and the image of Chart.yaml's artifacthub.io/images.
var chartImageLine = regexp.MustCompile(`(?m)^(  repository: |      image: )\S+$`)

// unstamped is a file of the chart with its image named as no release names it, so that a
// stamp that changes nothing fails.
func unstamped(b []byte) []byte {
	return chartImageLine.ReplaceAll(b, []byte("${1}example.invalid/unstamped"))
}

// chartRepository is where the release pushes the chart: ghcr.io/OWNER/charts/macaque.
func (run releaseRun) chartRepository(r release) string {
	return "ghcr.io/" + strings.ToLower(strings.Split(r.repository, "/")[0]) + "/charts/macaque"
}

// checkChart checks the chart's way out: stamped to the image pushed, packaged at the tag's
// version, pushed to the owner's charts with the workflow's token, and signed by the digest
// helm push reported, after the push.
func (run releaseRun) checkChart(t *testing.T, r release) {
	t.Helper()
	image := run.values["steps.name.outputs.image"]
	stamped := map[string]string{"values.yaml": "  repository: " + run.name, "Chart.yaml": "      image: " + image}
	for file, line := range stamped {
		got := readWorkspace(t, run.ws, chartDir+"/"+file)
		want := chartImageLine.ReplaceAllLiteralString(string(r.read(t, chartDir+"/"+file)), line)
		if got != want || len(chartImageLine.FindAllString(want, -1)) != 1 {
			t.Errorf("the chart step left a %s that is not the repository's with its one image line %q:\n%s", file, line, got)
		}
	}
	packages := run.stand.calls(t, "helm", "package")
	if len(packages) != 1 || packages[0][1] != chartDir || flagValue(packages[0], "--version") != r.version || flagValue(packages[0], "--app-version") != r.version {
		t.Fatalf("helm package ran as %q, want once: package %s --version %s --app-version %s", packages, chartDir, r.version, r.version)
	}
	archive := filepath.Join(flagValue(packages[0], "-d"), "macaque-"+r.version+".tgz")
	charts := "oci://" + strings.TrimSuffix(run.chartRepository(r), "/macaque")
	if pushes := run.stand.calls(t, "helm", "push"); len(pushes) != 1 || !slices.Equal(pushes[0], []string{"push", archive, charts}) {
		t.Errorf("helm push ran as %q, want once: push %s %s", pushes, archive, charts)
	}
	if logins := run.stand.calls(t, "helm", "registry"); len(logins) != 1 || !slices.Equal(logins[0], []string{"registry", "login", "ghcr.io", "--username", "release-test", "--password-stdin"}) {
		t.Errorf("helm registry ran as %q, want once: registry login ghcr.io --username ACTOR --password-stdin", logins)
	}
	if password, err := os.ReadFile(run.stand.log + ".helm-password"); err != nil || strings.TrimSpace(string(password)) != run.token {
		t.Errorf("helm registry login read %q from its stdin (%v), want the workflow's token", password, err)
	}
	if got := run.values["steps.chart.outputs.chart"]; got != run.chartRepository(r) {
		t.Errorf("the chart step outputs chart=%q, want %s", got, run.chartRepository(r))
	}
	signed := run.chartRepository(r) + "@" + standInChartDigest
	var signs [][]string
	for _, c := range run.stand.calls(t, "cosign", "sign") {
		if strings.HasPrefix(c[len(c)-1], run.chartRepository(r)) {
			signs = append(signs, c)
		}
	}
	if len(signs) != 1 || !slices.Equal(signs[0], []string{"sign", "--yes", signed}) {
		t.Errorf("cosign sign of the chart ran as %q, want once: sign --yes %s (the digest helm push reported)", signs, signed)
	}
	order := map[string]int{}
	for i, c := range run.stand.calls(t, "") {
		if len(c) > 0 && c[len(c)-1] == signed {
			order["sign"] = i
		} else if len(c) > 0 && c[0] == "push" || len(c) > 1 && c[0] == "registry" {
			order[c[0]] = i
		}
	}
	if order["registry"] >= order["push"] || order["push"] >= order["sign"] {
		t.Errorf("helm registry login, helm push and the chart's signature ran in the order %v, want login, push, sign", order)
	}
}

// readWorkspace reads a file of the release job's workspace.
func readWorkspace(t *testing.T, ws, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(ws, filepath.FromSlash(name)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// releaseStandIns are the stand-ins for the commands the release job runs: each records its calls
// and writes what the next steps read.
func releaseStandIns(t *testing.T) standIns {
	t.Helper()
	return newStandIns(t, map[string]string{
		"docker": `case "$1 ${2:-}" in
"buildx build") # buildx's metadata after a push, where --metadata-file says
	while (($#)); do
		if [[ $1 == --metadata-file ]]; then printf '{"buildx.build.ref": "x", "containerimage.digest": "%s"}' "$STAND_IN_DIGEST" >"$2"; fi
		shift
	done ;;
"buildx imagetools") printf '%s\n' "$STAND_IN_INDEX" ;;
"create --platform") ref=${4:?}; echo "container-${ref//[\/:@]/-}" ;;
"cp "*) printf '%s' "${2%:/macaque}" >"${3:?}" ;; # the binary says which container it came from
"rm "*) ;;
*) echo "docker stand-in: the release job does not run docker $*" >&2; exit 1 ;;
esac`,
		"cyclonedx-gomod": `while (($#)); do
	if [[ $1 == -output ]]; then echo '{"bomFormat": "CycloneDX"}' >"$2"; fi
	shift
done`,
		"cosign": `case $1 in
sign | attest | verify | verify-attestation | verify-blob) ;;
sign-blob)
	while (($#)); do
		if [[ $1 == --bundle ]]; then echo '{}' >"$2"; fi
		shift
	done ;;
*) echo "cosign stand-in: the release job does not run cosign $1" >&2; exit 1 ;;
esac`,
		"helm": `case $1 in
package) # the archive, where -d says, named as helm names it
	dir=. version=
	while (($#)); do
		case $1 in --version) version=$2 ;; -d) dir=$2 ;; esac
		shift
	done
	printf 'chart %s\n' "$version" >"$dir/macaque-$version.tgz" ;;
registry) cat >"$STAND_IN_LOG.helm-password" ;; # --password-stdin
push) printf 'Pushed: %s/macaque:x\nDigest: %s\n' "${3#oci://}" "$STAND_IN_CHART_DIGEST" >&2 ;;
*) echo "helm stand-in: the release job does not run helm $1" >&2; exit 1 ;;
esac`,
		"gh": ``,
	})
}

// releaseRun is the release job run with the stand-ins: where it ran, what the stand-ins
// recorded, and the values (step outputs included) its expressions saw.
type releaseRun struct {
	ws              string
	stand           standIns
	values          map[string]string
	name            string            // the image's repository, without the tag
	platformDigests map[string]string // each platform's image in the index, by digest
	token           string            // the workflow's token, as the stand-ins were given it
}

// runReleaseJob runs the release job's steps, but the tools step, in a workspace that holds what
// the steps read from the checkout; an action's inputs must name what the steps before it set.
func runReleaseJob(t *testing.T, r release, releaseJob job, toolsAt, helmAt int) releaseRun {
	t.Helper()
	ws := t.TempDir()
	if err := os.MkdirAll(filepath.Join(ws, chartDir), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"Makefile", "macaque.yml", clusterManifest, chartDir + "/values.yaml", chartDir + "/Chart.yaml"} {
		if err := os.WriteFile(filepath.Join(ws, filepath.FromSlash(f)), unstamped(r.read(t, f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stand := releaseStandIns(t)
	env := append([]string{
		"GITHUB_SERVER_URL=https://github.com", "GITHUB_REPOSITORY=" + r.repository, "GITHUB_REPOSITORY_OWNER=" + strings.Split(r.repository, "/")[0],
		"GITHUB_REF=refs/tags/" + r.tag, "GITHUB_REF_NAME=" + r.tag, "RUNNER_TEMP=" + t.TempDir(),
		"STAND_IN_DIGEST=" + standInIndexDigest, "STAND_IN_INDEX=" + standInIndex, "STAND_IN_CHART_DIGEST=" + standInChartDigest,
	}, stand.env()...)
	values := r.github()
	for i, s := range releaseJob.Steps {
		if s.Uses != "" {
			// An action: its inputs must name what the steps before it set.
			stepEnv(t, step{Name: s.Uses, Env: s.With}, values)
			continue
		}
		if i == toolsAt || i == helmAt {
			continue // building cosign or helm takes minutes; TestSBOM, TestImage/signature and make chart build the same
		}
		outputs := runStep(t, s, ws, append(slices.Clone(env), stepEnv(t, s, values)...))
		for k, v := range outputs {
			if s.ID == "" {
				t.Errorf("step %q writes output %s but has no id: no step can read it", s.Name, k)
			}
			values["steps."+s.ID+".outputs."+k] = v
		}
	}
	return releaseRun{
		ws: ws, stand: stand, values: values, token: values["secrets.GITHUB_TOKEN"],
		name:            "ghcr.io/" + strings.ToLower(r.repository),
		platformDigests: map[string]string{"linux/amd64": standInAmd64Digest, "linux/arm64": standInArm64Digest},
	}
}

// checkPushAndBinaries checks the digest pushed, buildx's, passed on; and the binaries, each from
// its platform's image, pulled by that image's digest.
func (run releaseRun) checkPushAndBinaries(t *testing.T) {
	t.Helper()
	name, values, stand := run.name, run.values, run.stand
	if got := values["steps.push.outputs.digest"]; got != standInIndexDigest {
		t.Errorf("the push step outputs digest %q, want the one in buildx's metadata, %s", got, standInIndexDigest)
	}
	if builds := stand.calls(t, "docker", "buildx", "build"); len(builds) != 1 || !slices.Contains(builds[0], "--push") || !slices.Contains(builds[0], "--metadata-file") {
		t.Errorf("docker buildx build ran as %q, want once, with --push and --metadata-file", builds)
	}
	if inspects := stand.calls(t, "docker", "buildx", "imagetools"); len(inspects) != 1 || !slices.Equal(inspects[0], []string{"buildx", "imagetools", "inspect", "--raw", name + "@" + standInIndexDigest}) {
		t.Errorf("docker buildx imagetools ran as %q, want inspect --raw %s@%s", inspects, name, standInIndexDigest)
	}
	var creates [][]string
	for p, digest := range run.platformDigests {
		creates = append(creates, []string{"create", "--platform", p, name + "@" + digest})
		goos, goarch, _ := strings.Cut(p, "/")
		if got := values["steps.binaries.outputs."+goos+"_"+goarch]; got != digest {
			t.Errorf("the binaries step outputs %s_%s=%q, want the %s image's digest in the index, %s", goos, goarch, got, p, digest)
		}
		file := filepath.Join(run.ws, "dist", "image", goos+"_"+goarch, "macaque")
		want := "container-" + strings.NewReplacer("/", "-", ":", "-", "@", "-").Replace(name+"@"+digest)
		if b, err := os.ReadFile(file); err != nil || string(b) != want {
			t.Errorf("%s holds %q (%v), want the binary of the container of %s@%s (%q)", file, b, err, name, digest, want)
		}
	}
	if got := stand.calls(t, "docker", "create"); !sameElements(got, creates) {
		t.Errorf("docker create ran as %q, want %q: each platform's image by its digest", got, creates)
	}
}

// checkSBOMs checks that the SBOMs are made of those binaries, and returns each as
// [SBOM binary].
func (run releaseRun) checkSBOMs(t *testing.T) [][]string {
	t.Helper()
	var sboms [][]string
	for p := range run.platformDigests {
		goos, goarch, _ := strings.Cut(p, "/")
		sboms = append(sboms, []string{"release/macaque-" + goos + "-" + goarch + ".cdx.json", "dist/image/" + goos + "_" + goarch + "/macaque"})
	}
	var made [][]string
	for _, c := range run.stand.calls(t, "cyclonedx-gomod") {
		made = append(made, []string{flagValue(c, "-output"), c[len(c)-1]})
	}
	if !sameElements(made, sboms) {
		t.Errorf("cyclonedx-gomod made [SBOM binary] %q, want %q", made, sboms)
	}
	return sboms
}

// checkSignedByDigest checks that the image is signed, and attested, by digest only: each
// platform's SBOM to its image and to the index.
func (run releaseRun) checkSignedByDigest(t *testing.T, sboms [][]string) {
	t.Helper()
	name, stand := run.name, run.stand
	image := run.values["steps.name.outputs.image"]
	for _, c := range stand.calls(t, "cosign") {
		if !slices.Contains([]string{"sign", "attest", "sign-blob"}, c[0]) {
			continue // verifying the tag is what users do: it checks what the tag names now
		}
		for _, arg := range c {
			if strings.HasPrefix(arg, name) && !regexp.MustCompile(`@sha256:[0-9a-f]{64}$`).MatchString(arg) || strings.Contains(arg, image) {
				t.Errorf("cosign %q names the image by tag (%s): a tag can be moved to other content, sign its digest", c, arg)
			}
		}
	}
	var signs [][]string // of the image; the chart's are checkChart's
	for _, c := range stand.calls(t, "cosign", "sign") {
		if strings.HasPrefix(c[len(c)-1], name+"@") || strings.HasPrefix(c[len(c)-1], name+":") {
			signs = append(signs, c)
		}
	}
	if len(signs) != 1 || !slices.Contains(signs[0], "--yes") || !slices.Contains(signs[0], "--recursive") || signs[0][len(signs[0])-1] != name+"@"+standInIndexDigest {
		t.Errorf("cosign sign ran as %q, want once, --yes --recursive %s@%s: the pushed index and each platform's image", signs, name, standInIndexDigest)
	}
	var attests, wantAttests [][]string
	for _, c := range stand.calls(t, "cosign", "attest") {
		if flagValue(c, "--type") != "cyclonedx" || !slices.Contains(c, "--yes") {
			t.Errorf("cosign %q: want --yes --type cyclonedx", c)
		}
		attests = append(attests, []string{flagValue(c, "--predicate"), c[len(c)-1]})
	}
	for _, s := range sboms {
		p := strings.TrimSuffix(strings.TrimPrefix(s[0], "release/macaque-"), ".cdx.json")
		wantAttests = append(wantAttests, []string{s[0], name + "@" + run.platformDigests[strings.Replace(p, "-", "/", 1)]}, []string{s[0], name + "@" + standInIndexDigest})
	}
	if !sameElements(attests, wantAttests) {
		t.Errorf("cosign attest attested [predicate image] %q, want %q: each platform's SBOM to its image and to the index", attests, wantAttests)
	}
}

// checkFilesSigned checks that the release files are each signed, with its bundle beside it; it
// returns what the release must attach (every file and its bundle) and each [bundle file] signed.
func (run releaseRun) checkFilesSigned(t *testing.T, sboms [][]string) (attached []string, wantSigned [][]string) {
	t.Helper()
	files := []string{stampedManifest, "release/" + clusterManifest}
	for _, s := range sboms {
		files = append(files, s[0])
	}
	var signed [][]string
	for _, c := range run.stand.calls(t, "cosign", "sign-blob") {
		if !slices.Contains(c, "--yes") {
			t.Errorf("cosign %q: want --yes", c)
		}
		signed = append(signed, []string{flagValue(c, "--bundle"), c[len(c)-1]})
	}
	attached = slices.Clone(files)
	for _, f := range files {
		wantSigned = append(wantSigned, []string{f + bundleSuffix, f})
		attached = append(attached, f+bundleSuffix)
	}
	if !sameElements(signed, wantSigned) {
		t.Errorf("cosign sign-blob signed [bundle file] %q, want %q", signed, wantSigned)
	}
	return attached, wantSigned
}

// checkVerified checks that, before publishing, the job checks it all as the README tells users
// to, with its own identity.
func (run releaseRun) checkVerified(t *testing.T, r release, wantSigned [][]string) {
	t.Helper()
	stand := run.stand
	image := run.values["steps.name.outputs.image"]
	identity := "https://github.com/" + r.repository + "/" + releaseWorkflow + "@refs/tags/" + r.tag
	var verified [][]string
	for _, c := range stand.calls(t, "cosign") {
		if !strings.HasPrefix(c[0], "verify") {
			continue
		}
		verified = append(verified, []string{c[0], c[len(c)-1]})
		if c[0] == "verify-blob" {
			verified[len(verified)-1] = []string{c[0], flagValue(c, "--bundle"), c[len(c)-1]}
		}
		if flagValue(c, "--certificate-identity") != identity || flagValue(c, "--certificate-oidc-issuer") != "https://token.actions.githubusercontent.com" {
			t.Errorf("cosign %q: want --certificate-identity %s --certificate-oidc-issuer https://token.actions.githubusercontent.com", c, identity)
		}
	}
	wantVerified := [][]string{{"verify", image}, {"verify-attestation", image}, {"verify", run.chartRepository(r) + ":" + r.version}}
	for _, s := range wantSigned {
		wantVerified = append(wantVerified, []string{"verify-blob", s[0], s[1]})
	}
	if !sameElements(verified, wantVerified) {
		t.Errorf("the job verified %q, want %q: the image, its SBOMs and the chart by tag, as a user would, and every release file with its bundle", verified, wantVerified)
	}
	if c := stand.calls(t, "cosign", "verify-attestation"); len(c) != 1 || flagValue(c[0], "--type") != "cyclonedx" {
		t.Errorf("cosign verify-attestation ran as %q, want once with --type cyclonedx", c)
	}
	if c := stand.calls(t, "gh", "attestation"); len(c) != 1 || !slices.Equal(c[0], []string{"attestation", "verify", "oci://" + image, "--owner", strings.Split(r.repository, "/")[0]}) {
		t.Errorf("gh attestation ran as %q, want once: verify oci://%s --owner OWNER (the provenance)", c, image)
	}
}

// checkPublishedLast checks that the release is published last, of the tag, attaching attached.
func (run releaseRun) checkPublishedLast(t *testing.T, r release, attached []string) {
	t.Helper()
	gh := run.stand.calls(t, "gh", "release")
	if len(gh) != 1 || len(gh[0]) < 3 || !slices.Equal(gh[0][:3], []string{"release", "create", r.tag}) || !slices.Contains(gh[0], "--verify-tag") {
		t.Fatalf("gh release ran as %q, want once: release create %s ... --verify-tag", gh, r.tag)
	}
	if last := run.stand.calls(t, ""); !slices.Equal(last[len(last)-1][:2], []string{"release", "create"}) {
		t.Errorf("the job runs %q after publishing the release: the release must come last, once all is signed and verified", last[len(last)-1])
	}
	var published []string
	for _, arg := range gh[0] {
		if strings.HasPrefix(arg, "release/") {
			published = append(published, arg)
		}
	}
	if !sameElements(published, attached) {
		t.Errorf("the release attaches %q, want %q: the manifests, the SBOMs and the bundle of each", published, attached)
	}
}

// standIns are scripts named after commands, first on PATH, that record each call (their name and
// arguments) and then run a body of their own.
type standIns struct{ dir, log string }

func newStandIns(t *testing.T, bodies map[string]string) standIns {
	t.Helper()
	s := standIns{dir: t.TempDir()}
	s.log = filepath.Join(s.dir, "calls")
	for name, body := range bodies {
		// One record per call: the fields end with \x1f, the record with \x1e.
		script := "#!/usr/bin/env bash\nset -euo pipefail\n" +
			`{ printf '%s\x1f' "$(basename "$0")" "$@"; printf '\x1e'; } >>"$STAND_IN_LOG"` + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s standIns) env() []string {
	return []string{"PATH=" + s.dir + string(os.PathListSeparator) + os.Getenv("PATH"), "STAND_IN_LOG=" + s.log}
}

// calls returns the arguments of each call of command ("" for any) whose first arguments are
// prefix, in order.
func (s standIns) calls(t *testing.T, command string, prefix ...string) [][]string {
	t.Helper()
	b, err := os.ReadFile(s.log)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var calls [][]string
	for _, record := range strings.Split(string(b), "\x1e") {
		fields := strings.Split(record, "\x1f")
		if len(fields) < 2 || command != "" && fields[0] != command {
			continue
		}
		args := fields[1 : len(fields)-1]
		if len(args) >= len(prefix) && slices.Equal(args[:len(prefix)], prefix) {
			calls = append(calls, args)
		}
	}
	return calls
}

// flagValue returns the argument after the flag name in args ("" when it is not there).
func flagValue(args []string, name string) string {
	i := slices.Index(args, name)
	if i < 0 || i+1 >= len(args) {
		return ""
	}
	return args[i+1]
}

// sameElements tells whether a and b hold the same elements, in any order.
func sameElements[E any](a, b []E) bool {
	key := func(e E) string { return fmt.Sprintf("%#v", e) }
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i, e := range a {
		ka[i] = key(e)
	}
	for i, e := range b {
		kb[i] = key(e)
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}
