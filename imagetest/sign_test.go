package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/macaque-chaos/macaque/imagetest/ocilayout"
)

// cosignStandIn is the release job's `cosign` in checkSignatures: the pinned cosign, signing with
// the test's key where the job gets a certificate from Fulcio for its OIDC identity, with no
// transparency log (Rekor) and no Sigstore service configuration from TUF (both online), against
// the test's plain-HTTP registry. The rest of each command line is the workflow's.
const cosignStandIn = `#!/usr/bin/env bash
set -euo pipefail
sub=$1
shift
case $sub in
sign | attest) exec "$COSIGN_BIN" "$sub" --key "$COSIGN_KEY" --tlog-upload=false --use-signing-config=false --allow-http-registry "$@" ;;
sign-blob) exec "$COSIGN_BIN" "$sub" --key "$COSIGN_KEY" --tlog-upload=false --use-signing-config=false "$@" ;;
*)
	echo "cosign stand-in: the release job does not run cosign $sub" >&2
	exit 1
	;;
esac
`

// checkSignatures is TestImage's last check, on the image it built: it pushes the image index to a
// registry of its own (in this process, on 127.0.0.1), makes the SBOMs of the image's binaries and
// runs the release workflow's signing steps, with the cosign that tools/release/go.mod pins and a
// throwaway key in place of the keyless certificate (see cosignStandIn), and checks with the
// public key, as a user would with the certificate's identity, that:
//
//   - the index, each platform's image and the tag verify, signed for their digests;
//   - each platform's image carries its binary's SBOM as a CycloneDX attestation, and the index
//     both, each for the digest it is attached to;
//   - each release file verifies against its bundle, and the same file with one byte changed
//     does not;
//   - an image with one layer more, pushed under the same tag, with every signature and
//     attestation of the real one copied onto it as an attacker could (the same referrers, their
//     subject pointed at the new digests), verifies neither by digest nor by tag, while the real
//     one still does.
//
// Nothing leaves 127.0.0.1: cosign's proxy for anywhere else is a server that fails the test.
func checkSignatures(t *testing.T, repo, oci string, images []ocilayout.Image, binaries map[string][]byte) {
	r := readRelease(t)
	start := time.Now()
	cosign := releaseTool(t, repo, cosignTool)
	cyclonedx := releaseTool(t, repo, cyclonedxGomod)
	t.Logf("tools ready in %s", time.Since(start).Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	reg := startRegistry(t)
	repoName := reg + "/" + strings.ToLower(r.repository)
	tag, err := name.NewTag(repoName + ":" + r.version)
	if err != nil {
		t.Fatal(err)
	}
	index := indexFromLayout(t, oci, images[0].Index)
	if err := remote.WriteIndex(tag, index, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push %s: %v", tag, err)
	}
	digests := map[string]v1.Hash{} // platform → image digest
	for _, im := range images {
		digests[im.Platform.OS+"/"+im.Platform.Architecture] = im.Digest
	}
	t.Logf("pushed %s@%s (%d platforms)", tag, images[0].Index, len(images))

	// The workspace of the release job after the push: the binaries out of the image, the stamped
	// manifests, the SBOMs (the workflow's steps make the last two).
	ws := t.TempDir()
	for _, p := range platforms {
		b, ok := binaries[p.String()]
		if !ok {
			t.Fatalf("no %s binary: its image failed the checks above", p)
		}
		writeBinary(t, ws, p, b)
	}
	for _, f := range []string{"macaque.yml", clusterManifest} {
		if err := os.WriteFile(filepath.Join(ws, f), r.read(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	values := r.github()
	values["steps.name.outputs.name"] = repoName
	values["steps.name.outputs.image"] = tag.String()
	values["steps.push.outputs.digest"] = images[0].Index.String()
	for p, d := range digests {
		values["steps.binaries.outputs."+strings.Replace(p, "/", "_", 1)] = d.String()
	}
	home := t.TempDir()
	outside := startOutside(t)
	env := []string{
		"GITHUB_REPOSITORY=" + r.repository, "GITHUB_REF_NAME=" + r.tag, "HOME=" + home, "TUF_ROOT=" + filepath.Join(home, "tuf"),
		"HTTPS_PROXY=" + outside.url, "HTTP_PROXY=" + outside.url, "https_proxy=" + outside.url, "http_proxy=" + outside.url,
		"COSIGN_PASSWORD=throwaway-" + fmt.Sprint(time.Now().UnixNano()),
	}
	for _, s := range []struct{ what, run string }{{"that stamps the manifests' image: lines", `>"release/$m"`}, {"that makes the SBOMs", sbomStepRun}} {
		st, _ := r.step(t, s.what, func(st step) bool { return strings.Contains(st.Run, s.run) })
		runStep(t, st, ws, append(append(slices.Clone(env), onPath(t, map[string]string{"cyclonedx-gomod": cyclonedx})...), stepEnv(t, st, values)...))
	}

	keys := t.TempDir()
	c := cosignRunner{t: t, bin: cosign, dir: keys, env: env}
	c.mustRun(ctx, "generate-key-pair")
	standIn := t.TempDir()
	if err := os.WriteFile(filepath.Join(standIn, "cosign"), []byte(cosignStandIn), 0o755); err != nil {
		t.Fatal(err)
	}
	signEnv := append(slices.Clone(env), "PATH="+standIn+string(os.PathListSeparator)+os.Getenv("PATH"),
		"COSIGN_BIN="+cosign, "COSIGN_KEY="+filepath.Join(keys, "cosign.key"))
	for _, s := range []struct{ what, run string }{{"that signs the image", "cosign sign --yes --recursive "}, {"that signs the release files", "cosign sign-blob "}} {
		st, _ := r.step(t, s.what, func(st step) bool { return strings.Contains(st.Run, s.run) })
		start := time.Now()
		runStep(t, st, ws, append(slices.Clone(signEnv), stepEnv(t, st, values)...))
		t.Logf("step %q ran in %s", st.Name, time.Since(start).Round(time.Millisecond))
	}

	// What a user checks, with the public key in place of the certificate's identity.
	pub := filepath.Join(keys, "cosign.pub")
	verify := []string{"--key", pub, "--insecure-ignore-tlog", "--allow-http-registry"}
	sboms := map[string]any{}
	for _, p := range platforms {
		sboms[p.String()] = readJSON(t, filepath.Join(ws, sbomFile(p)))
	}
	s := signed{c: c, ctx: ctx, verify: verify, pub: pub, ws: ws, repoName: repoName, tag: tag,
		index: index, images: images, digests: digests, sboms: sboms}
	t.Run("image", s.checkImage)
	t.Run("release files", s.checkReleaseFiles)
	t.Run("tampered image", s.checkTamperedImage)
}

// signed is the release checkSignatures pushed, signed and attested, for its subtests to verify.
type signed struct {
	c        cosignRunner
	ctx      context.Context
	verify   []string // cosign's flags to verify with the throwaway public key, offline
	pub      string   // the public key's file
	ws       string   // the release job's workspace
	repoName string
	tag      name.Tag
	index    v1.ImageIndex
	images   []ocilayout.Image
	digests  map[string]v1.Hash // platform → image digest
	sboms    map[string]any     // platform → its SBOM, as JSON
}

// checkImage verifies the signatures and SBOM attestations of the index, the tag and each
// platform's image.
func (s signed) checkImage(t *testing.T) {
	c := s.c.on(t)
	ctx, verify, repoName, images, tag, digests, sboms := s.ctx, s.verify, s.repoName, s.images, s.tag, s.digests, s.sboms
	for ref, digest := range map[string]v1.Hash{
		repoName + "@" + images[0].Index.String(): images[0].Index,
		tag.String(): images[0].Index, // what `docker pull` of the tag gets
		repoName + "@" + digests["linux/amd64"].String(): digests["linux/amd64"],
		repoName + "@" + digests["linux/arm64"].String(): digests["linux/arm64"],
	} {
		c.verifySignature(ctx, verify, ref, digest)
	}
	c.verifySBOMs(ctx, verify, repoName+"@"+images[0].Index.String(), images[0].Index, []any{sboms["linux/amd64"], sboms["linux/arm64"]})
	for _, p := range platforms {
		c.verifySBOMs(ctx, verify, repoName+"@"+digests[p.String()].String(), digests[p.String()], []any{sboms[p.String()]})
	}
}

// checkReleaseFiles verifies each release file's bundle, and that one byte changed in the stamped
// manifest fails.
func (s signed) checkReleaseFiles(t *testing.T) {
	c := s.c.on(t)
	ctx, pub, ws := s.ctx, s.pub, s.ws
	for _, f := range []string{stampedManifest, "release/" + clusterManifest, sbomFile(platforms[0]), sbomFile(platforms[1])} {
		file := filepath.Join(ws, f)
		c.mustRun(ctx, "verify-blob", "--key", pub, "--insecure-ignore-tlog", "--bundle", file+bundleSuffix, file)
	}
	// One byte changed: a character of the image: line, what an attacker would change.
	b, err := os.ReadFile(filepath.Join(ws, stampedManifest))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("image: ")) + len("image: ")
	b[i] ^= 0x20
	tampered := filepath.Join(t.TempDir(), "macaque.yml")
	if err := os.WriteFile(tampered, b, 0o644); err != nil {
		t.Fatal(err)
	}
	c.mustFail(ctx, "macaque.yml with one byte changed", "verify-blob", "--key", pub, "--insecure-ignore-tlog",
		"--bundle", filepath.Join(ws, stampedManifest+bundleSuffix), tampered)
}

// checkTamperedImage pushes a tampered image under the tag with the real image's signatures and
// attestations copied onto it, and checks that none of them verifies it.
func (s signed) checkTamperedImage(t *testing.T) {
	c := s.c.on(t)
	ctx, verify, repoName, images, tag, digests, sboms, index := s.ctx, s.verify, s.repoName, s.images, s.tag, s.digests, s.sboms, s.index
	evil, evilDigests := tamper(t, index, images)
	if err := remote.WriteIndex(tag, evil, remote.WithContext(ctx)); err != nil {
		t.Fatalf("push the tampered index as %s: %v", tag, err)
	}
	evilIndex, err := evil.Digest()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("pushed %s@%s: linux/amd64 with one layer more (%s)", tag, evilIndex, evilDigests["linux/amd64"])
	repository := tag.Context()
	copied := copyReferrers(ctx, t, repository, images[0].Index, evil)
	for p, d := range digests {
		if evilDigests[p] != d {
			im, err := evil.Image(evilDigests[p])
			if err != nil {
				t.Fatal(err)
			}
			copied += copyReferrers(ctx, t, repository, d, im)
		}
	}
	t.Logf("copied %d signatures and attestations of the real image onto the tampered one", copied)
	signature := append([]string{"verify"}, verify...)
	sbom := append([]string{"verify-attestation", "--type", "cyclonedx"}, verify...)
	for _, check := range []struct {
		what    string
		command []string
		ref     string
	}{
		{"the signature of the tampered index", signature, repoName + "@" + evilIndex.String()},
		{"the signature of the tag, now on the tampered index", signature, tag.String()},
		{"the signature of the tampered linux/amd64 image", signature, repoName + "@" + evilDigests["linux/amd64"].String()},
		{"the SBOM attestations of the tampered index", sbom, repoName + "@" + evilIndex.String()},
		{"the SBOM attestation of the tampered linux/amd64 image", sbom, repoName + "@" + evilDigests["linux/amd64"].String()},
	} {
		c.mustFail(ctx, check.what, append(slices.Clone(check.command), check.ref)...)
	}
	// The real image's signatures are still there and still good: the failures above are the
	// tampered content's, not a registry that lost them.
	c.verifySignature(ctx, verify, repoName+"@"+images[0].Index.String(), images[0].Index)
	c.verifySBOMs(ctx, verify, repoName+"@"+digests["linux/amd64"].String(), digests["linux/amd64"], []any{sboms["linux/amd64"]})
}

// startRegistry serves an OCI registry (with the referrers API, where cosign puts signatures and
// attestations) from this process on 127.0.0.1, and returns its host:port.
func startRegistry(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(registry.New(registry.WithReferrersSupport(true), registry.Logger(log.New(io.Discard, "", 0))))
	if err := srv.Listener.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return l.Addr().String()
}

// outsideWorld is the proxy cosign is given for anything but 127.0.0.1: it refuses each request
// (a CONNECT for HTTPS), and the test fails when there was any, however it ended.
type outsideWorld struct {
	url      string
	mu       sync.Mutex
	requests []string
}

func startOutside(t *testing.T) *outsideWorld {
	t.Helper()
	o := &outsideWorld{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.requests = append(o.requests, r.Method+" "+r.Host)
		o.mu.Unlock()
		http.Error(w, "the image test is offline", http.StatusForbidden)
	}))
	t.Cleanup(func() {
		srv.Close()
		if reached := o.reached(); len(reached) > 0 {
			t.Errorf("cosign tried to reach %q: the signing test must need nothing but 127.0.0.1", reached)
		}
	})
	o.url = srv.URL
	return o
}

func (o *outsideWorld) reached() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.requests)
}

// indexFromLayout returns the image index with the given digest in the OCI layout at dir: index.json
// itself, or an index it lists (buildah's manifest list).
func indexFromLayout(t *testing.T, dir string, digest v1.Hash) v1.ImageIndex {
	t.Helper()
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatalf("read OCI layout %s: %v", dir, err)
	}
	var find func(idx v1.ImageIndex, depth int) v1.ImageIndex
	find = func(idx v1.ImageIndex, depth int) v1.ImageIndex {
		if d, err := idx.Digest(); err == nil && d == digest {
			return idx
		}
		m, err := idx.IndexManifest()
		if err != nil || depth > 4 {
			return nil
		}
		for _, desc := range m.Manifests {
			if !desc.MediaType.IsIndex() {
				continue
			}
			child, err := idx.ImageIndex(desc.Digest)
			if err != nil {
				t.Fatalf("OCI layout %s: index %s: %v", dir, desc.Digest, err)
			}
			if found := find(child, depth+1); found != nil {
				return found
			}
		}
		return nil
	}
	idx := find(root, 0)
	if idx == nil {
		t.Fatalf("OCI layout %s holds no index %s", dir, digest)
	}
	return idx
}

// tamper returns index with its linux/amd64 image replaced by the same image with one more layer
// (one file, /payload), and the new index's platform image digests.
func tamper(t *testing.T, index v1.ImageIndex, images []ocilayout.Image) (v1.ImageIndex, map[string]v1.Hash) {
	t.Helper()
	i := slices.IndexFunc(images, func(im ocilayout.Image) bool { return im.Platform.Architecture == "amd64" })
	if i < 0 {
		t.Fatal("no linux/amd64 image to tamper with")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	payload := []byte("#!/bin/sh\necho owned\n")
	if err := tw.WriteHeader(&tar.Header{Name: "payload", Mode: 0o755, Size: int64(len(payload)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil },
		tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	evil, err := mutate.AppendLayers(images[i].Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	platform := images[i].Platform
	tampered := mutate.AppendManifests(mutate.RemoveManifests(index, match.Digests(images[i].Digest)),
		mutate.IndexAddendum{Add: evil, Descriptor: v1.Descriptor{Platform: &platform}})
	digests := map[string]v1.Hash{}
	m, err := tampered.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range m.Manifests {
		if d.Platform != nil {
			digests[d.Platform.OS+"/"+d.Platform.Architecture] = d.Digest
		}
	}
	if digests["linux/amd64"] == images[i].Digest {
		t.Fatal("the tampered linux/amd64 image has the real one's digest")
	}
	return tampered, digests
}

// rawManifest is a manifest pushed as is.
type rawManifest struct {
	body      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.body, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// copyReferrers copies every referrer of the manifest from (cosign's signatures and attestations)
// onto to, as an attacker with push access could: the same manifest, with its subject set to to's
// descriptor. It returns how many it copied, and fails the test when there was none: the attack
// would not have been tried.
func copyReferrers(ctx context.Context, t *testing.T, repository name.Repository, from v1.Hash, to partial.Describable) int {
	t.Helper()
	subject, err := partial.Descriptor(to)
	if err != nil {
		t.Fatal(err)
	}
	referrers, err := remote.Referrers(repository.Digest(from.String()), remote.WithContext(ctx))
	if err != nil {
		t.Fatalf("referrers of %s: %v", from, err)
	}
	m, err := referrers.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) == 0 {
		t.Fatalf("%s@%s has no referrers: no signature or attestation to copy", repository, from)
	}
	for _, d := range m.Manifests {
		got, err := remote.Get(repository.Digest(d.Digest.String()), remote.WithContext(ctx))
		if err != nil {
			t.Fatalf("get referrer %s: %v", d.Digest, err)
		}
		var manifest map[string]any
		if err := json.Unmarshal(got.Manifest, &manifest); err != nil {
			t.Fatalf("referrer %s: %v", d.Digest, err)
		}
		manifest["subject"] = v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
		body, err := json.Marshal(manifest)
		if err != nil {
			t.Fatal(err)
		}
		h, _, err := v1.SHA256(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Put(repository.Digest(h.String()), rawManifest{body, got.MediaType}, remote.WithContext(ctx)); err != nil {
			t.Fatalf("push the copy of referrer %s: %v", d.Digest, err)
		}
	}
	return len(m.Manifests)
}

// cosignRunner runs the pinned cosign, each call bounded, in dir with only env.
type cosignRunner struct {
	t        *testing.T
	bin, dir string
	env      []string
}

func (c cosignRunner) on(t *testing.T) cosignRunner { c.t = t; return c }

// run runs cosign with args; a timeout fails the test rather than passing for a refusal.
func (c cosignRunner) run(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Dir = c.dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, c.env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		c.t.Fatalf("cosign %q: %v (stopped after %v)\n%s", args, err, ctx.Err(), errOut.String())
	}
	return out.String(), errOut.String(), err
}

func (c cosignRunner) mustRun(ctx context.Context, args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.run(ctx, args...)
	if err != nil {
		c.t.Fatalf("cosign %q: %v\n%s", args, err, stderr)
	}
	return stdout
}

// mustFail checks that cosign refuses what: it exits non-zero by itself, and says why.
func (c cosignRunner) mustFail(ctx context.Context, what string, args ...string) {
	c.t.Helper()
	var exit *exec.ExitError
	switch _, stderr, err := c.run(ctx, args...); {
	case err == nil:
		c.t.Errorf("cosign %q passes %s", args, what)
	case !errors.As(err, &exit):
		c.t.Errorf("cosign %q: %v", args, err)
	default:
		c.t.Logf("%s: refused: %s", what, lastLine(stderr))
	}
}

// simpleSigning is the part of a signed payload (what cosign verify prints) that names the image
// and what the signature is: cosign's own signature, or an attestation.
type simpleSigning struct {
	Critical struct {
		Image struct {
			Digest string `json:"docker-manifest-digest"`
		} `json:"image"`
		Type string `json:"type"`
	} `json:"critical"`
}

// cosignSignature is the type of what cosign sign signs (an attestation has its predicate type).
const cosignSignature = "https://sigstore.dev/cosign/sign/v1"

// verifySignature checks that cosign verify passes ref, that everything it verified names digest,
// and that a cosign signature is among them: cosign 3.1 verify also passes an image that only has
// an attestation (it prints it with the predicate's type), which is not what `cosign sign` makes.
func (c cosignRunner) verifySignature(ctx context.Context, verify []string, ref string, digest v1.Hash) {
	c.t.Helper()
	stdout := c.mustRun(ctx, append(append([]string{"verify"}, verify...), ref)...)
	var payloads []simpleSigning
	if err := json.Unmarshal([]byte(lastLine(stdout)), &payloads); err != nil {
		c.t.Fatalf("cosign verify %s printed no signed payloads: %v\n%s", ref, err, stdout)
	}
	if slices.ContainsFunc(payloads, func(p simpleSigning) bool { return p.Critical.Image.Digest != digest.String() }) ||
		!slices.ContainsFunc(payloads, func(p simpleSigning) bool { return p.Critical.Type == cosignSignature }) {
		c.t.Errorf("cosign verify %s: verified %+v, want a %s signature, everything for %s", ref, payloads, cosignSignature, digest)
	}
}

// verifySBOMs checks that cosign verify-attestation --type cyclonedx passes ref with exactly the
// SBOMs want, each an in-toto statement about digest.
func (c cosignRunner) verifySBOMs(ctx context.Context, verify []string, ref string, digest v1.Hash, want []any) {
	c.t.Helper()
	stdout := c.mustRun(ctx, append(append([]string{"verify-attestation", "--type", "cyclonedx"}, verify...), ref)...)
	var got []string
	for line := range strings.Lines(stdout) {
		var envelope struct {
			PayloadType string `json:"payloadType"`
			Payload     string `json:"payload"`
		}
		if err := json.Unmarshal([]byte(line), &envelope); err != nil {
			c.t.Fatalf("cosign verify-attestation %s: %v\n%s", ref, err, line)
		}
		payload, err := base64.StdEncoding.DecodeString(envelope.Payload)
		if err != nil {
			c.t.Fatalf("cosign verify-attestation %s: payload: %v", ref, err)
		}
		var statement struct {
			PredicateType string `json:"predicateType"`
			Subject       []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
			Predicate any `json:"predicate"`
		}
		if err := json.Unmarshal(payload, &statement); err != nil {
			c.t.Fatalf("cosign verify-attestation %s: statement: %v", ref, err)
		}
		if statement.PredicateType != "https://cyclonedx.org/bom" || len(statement.Subject) != 1 || statement.Subject[0].Digest["sha256"] != digest.Hex {
			c.t.Errorf("cosign verify-attestation %s: a %s statement about %+v, want https://cyclonedx.org/bom about %s", ref, statement.PredicateType, statement.Subject, digest)
		}
		got = append(got, canonical(c.t, statement.Predicate))
	}
	var wantJSON []string
	for _, w := range want {
		wantJSON = append(wantJSON, canonical(c.t, w))
	}
	if !sameElements(got, wantJSON) {
		c.t.Errorf("cosign verify-attestation %s: %d SBOMs, not the %d made of the image's binaries", ref, len(got), len(want))
	}
}

// canonical is v as JSON with its object keys sorted: equal for equal JSON values.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readJSON(t *testing.T, file string) any {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return v
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
