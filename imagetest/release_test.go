package imagetest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// workflow is the part of a GitHub Actions workflow that the release test reads.
type workflow struct {
	On struct {
		Push struct {
			Tags []string `yaml:"tags"`
		} `yaml:"push"`
	} `yaml:"on"`
	Jobs map[string]struct {
		Needs any    `yaml:"needs"` // a job name or a list of them
		Steps []step `yaml:"steps"`
	} `yaml:"jobs"`
}

type step struct {
	ID   string            `yaml:"id"`
	Name string            `yaml:"name"`
	Uses string            `yaml:"uses"`
	Env  map[string]string `yaml:"env"`
	Run  string            `yaml:"run"`
}

const (
	releaseWorkflow = ".github/workflows/image.yml"
	imageOutput     = "${{ steps.name.outputs.image }}" // the image, as later steps read it
	stampedManifest = "release/macaque.yml"             // what the stamp step writes
	clusterManifest = "macaque-cluster.yml"             // the cluster-wide manifest, stamped beside it
)

var imageLine = regexp.MustCompile(`(?m)^ *image: *(\S+) *$`)

// TestReleaseNamesTheManifestsImage checks that macaque.yml, as the repository holds it, names the
// image that the release workflow pushes for the Makefile's VERSION, and that the release attaches
// macaque.yml with its image stamped to the tag's. It runs the workflow's own shell steps (with
// bash, in a temporary directory) rather than repeating what they compute.
func TestReleaseNamesTheManifestsImage(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(repo, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	version := submatch(t, "Makefile", read("Makefile"), `(?m)^VERSION\s*\?=\s*(\S+)\s*$`)
	module := submatch(t, "go.mod", read("go.mod"), `(?m)^module\s+(\S+)\s*$`)
	repository, ok := strings.CutPrefix(module, "github.com/")
	if !ok {
		t.Fatalf("go.mod: module %s is not on github.com: cannot tell the repository the workflow runs in", module)
	}
	manifest := read("macaque.yml")
	lines := imageLine.FindAllSubmatch(manifest, -1)
	if len(lines) != 1 {
		t.Fatalf("macaque.yml has %d image: lines, want 1", len(lines))
	}
	manifestImage := string(lines[0][1])

	var wf workflow
	if err := yaml.Unmarshal(read(releaseWorkflow), &wf); err != nil {
		t.Fatalf("%s: %v", releaseWorkflow, err)
	}
	if !slices.Contains(wf.On.Push.Tags, "v*") {
		t.Errorf("%s: runs on tags %q, want v*", releaseWorkflow, wf.On.Push.Tags)
	}
	// The pre-release mutation check gates the release: a job that pushes cannot start without it.
	mutationJob, releaseJob := wf.Jobs["mutation"], wf.Jobs["release"]
	if !slices.ContainsFunc(mutationJob.Steps, func(s step) bool { return strings.TrimSpace(s.Run) == "make mutation" }) {
		t.Errorf("%s: no job mutation running `make mutation`", releaseWorkflow)
	}
	if fmt.Sprint(releaseJob.Needs) != "mutation" && fmt.Sprint(releaseJob.Needs) != "[mutation]" {
		t.Errorf("%s: job release needs %v, want mutation", releaseWorkflow, releaseJob.Needs)
	}
	var steps []step
	for _, j := range wf.Jobs {
		steps = append(steps, j.Steps...)
	}
	find := func(what string, match func(step) bool) step {
		t.Helper()
		i := slices.IndexFunc(steps, match)
		if i < 0 {
			t.Fatalf("%s: no step %s", releaseWorkflow, what)
		}
		return steps[i]
	}

	// What the tag v$VERSION pushes: run the step that names the image as Actions would.
	tag := "v" + version
	env := []string{"GITHUB_REPOSITORY=" + repository, "GITHUB_REF_NAME=" + tag}
	naming := find("with id name (it names the image)", func(s step) bool { return s.ID == "name" })
	out := filepath.Join(t.TempDir(), "output")
	runStep(t, naming, t.TempDir(), append(env, "GITHUB_OUTPUT="+out))
	outputs, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	pushed := submatch(t, "the name step's $GITHUB_OUTPUT", outputs, `(?m)^image=(\S+)$`)
	t.Logf("tag %s of %s pushes %s", tag, repository, pushed)
	if manifestImage != pushed {
		t.Errorf("macaque.yml's image is %s, but the release workflow pushes %s for the Makefile's VERSION %s", manifestImage, pushed, version)
	}
	if want := "ghcr.io/" + strings.ToLower(repository) + ":" + version; pushed != want {
		t.Errorf("the workflow names the image %s, want %s (GitHub's container registry, the tag without its v)", pushed, want)
	}
	if mk := submatch(t, "Makefile", read("Makefile"), `(?m)^IMAGE\s*\?=\s*(\S+)\s*$`); strings.ReplaceAll(mk, "$(VERSION)", version) != pushed {
		t.Errorf("the Makefile's IMAGE is %s, want the image the release pushes: %s", mk, pushed)
	}

	// The push: that image, both platforms.
	push := find("that runs docker buildx build --push", func(s step) bool { return strings.Contains(s.Run, "--push") })
	if push.Env["IMAGE"] != imageOutput || !strings.Contains(push.Run, `-t "$IMAGE"`) {
		t.Errorf("the push step does not tag the image the name step names (env IMAGE %q, want %q, and -t \"$IMAGE\")", push.Env["IMAGE"], imageOutput)
	}
	if !strings.Contains(push.Run, "--platform linux/amd64,linux/arm64") {
		t.Errorf("the push step does not build --platform linux/amd64,linux/arm64:\n%s", push.Run)
	}

	// The stamp: run it on the repository's macaque.yml with the image of another version, so that
	// a stamp that changes nothing cannot pass.
	stamp := find("that writes the manifests into release/", func(s step) bool {
		return strings.Contains(s.Run, "release/") && !strings.Contains(s.Run, "gh release")
	})
	if stamp.Env["IMAGE"] != imageOutput {
		t.Errorf("the stamp step's env IMAGE is %q, want %q", stamp.Env["IMAGE"], imageOutput)
	}
	dir := t.TempDir()
	cluster := read(clusterManifest)
	if err := os.WriteFile(filepath.Join(dir, "macaque.yml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, clusterManifest), cluster, 0o644); err != nil {
		t.Fatal(err)
	}
	other := "ghcr.io/" + strings.ToLower(repository) + ":99.0.1-rc.1"
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
	release := find("that runs gh release create", func(s step) bool { return strings.Contains(s.Run, "gh release create") })
	if !strings.Contains(release.Run, `gh release create "$GITHUB_REF_NAME" `+stampedManifest+" release/"+clusterManifest+" ") {
		t.Errorf("the release step does not attach %s and release/%s to the tag's release:\n%s", stampedManifest, clusterManifest, release.Run)
	}
}

// runStep runs a workflow step's script with bash -e, as GitHub Actions runs `run:` on Linux, in
// dir with nothing in its environment but PATH and env.
func runStep(t *testing.T, s step, dir string, env []string) {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", s.Run)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("step %q: %v\n%s", s.Name, err, out)
	}
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
