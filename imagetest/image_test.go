// Package imagetest checks macaque's multi-arch image, built from the real Dockerfile for
// linux/amd64 and linux/arm64, from the outside: the OCI index and config, the one file in its one
// layer, the static ELF binary in it (the very binary this tree's sources build to), and the binary
// run as uid 65532 in a root that holds nothing else (arm64 through qemu-user on an amd64 machine,
// and the other way round).
//
// It builds the unmodified Dockerfile with buildah through `hack/image.sh buildah-oci`, which needs
// no container registry (it assembles the golang base image from this machine's Go, which must be
// the Dockerfile's version); MACAQUE_IMAGE_OCI=DIR checks the OCI layout in DIR instead (such as
// the dist/image-oci that `make image` writes, with docker buildx or buildah). `make image-test`
// runs it. It needs root (for buildah's storage, chroot and setuid), buildah, CA certificates, and
// qemu-user-static for the foreign architecture:
//
//	apt-get install --no-install-recommends buildah qemu-user-static ca-certificates
//
// It fails when any of that is missing; MACAQUE_SKIP_IMAGE_TEST=1 skips it on purpose.
//
// Its last subtest, signature (sign_test.go), runs the release workflow's SBOM and signing steps
// on that image, pushed to a registry in the test process, with a throwaway key and no network.
// The release workflow's other checks (release_test.go, sbom_test.go) need none of the above.
package imagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/buildinfo"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/macaque-chaos/macaque/imagetest/ocilayout"
)

// platform is one architecture of the image.
type platform struct {
	os, arch string
	machine  elf.Machine
	qemu     string // qemu-user binary that runs it on another architecture
	goarch   string // runtime.GOARCH of a machine that runs it natively
}

func (p platform) String() string { return p.os + "/" + p.arch }

var platforms = []platform{
	{os: "linux", arch: "amd64", machine: elf.EM_X86_64, qemu: "qemu-x86_64-static", goarch: "amd64"},
	{os: "linux", arch: "arm64", machine: elf.EM_AARCH64, qemu: "qemu-aarch64-static", goarch: "arm64"},
}

const (
	nonRoot    = 65532 // the Dockerfile's USER
	aptHint    = "apt-get install --no-install-recommends buildah qemu-user-static ca-certificates"
	publicRoot = "ISRG Root X1"      // a root CA of the Web PKI that x509roots/fallback embeds
	ociEnv     = "MACAQUE_IMAGE_OCI" // an OCI layout to check instead of building one
)

func TestImage(t *testing.T) {
	if os.Getenv("MACAQUE_SKIP_IMAGE_TEST") == "1" {
		t.Skip("MACAQUE_SKIP_IMAGE_TEST=1: the image test is skipped on request")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checkPrerequisites(t, repo)
	t.Run("Dockerfile", func(t *testing.T) { checkPlatformArgs(t, filepath.Join(repo, "Dockerfile")) })

	oci := os.Getenv(ociEnv)
	if oci == "" {
		start := time.Now()
		oci = buildImage(t, repo)
		t.Logf("hack/image.sh built %s with buildah and wrote it as an OCI layout in %s", platformList(), time.Since(start).Round(time.Millisecond))
	} else {
		t.Logf("%s=%s: checking that OCI layout", ociEnv, oci)
	}
	images, err := ocilayout.Images(oci)
	if err != nil {
		t.Fatal(err)
	}
	if len(images) != len(platforms) {
		t.Errorf("the image lists %d platform images, want %d (%s)", len(images), len(platforms), platformList())
	}
	for _, im := range images {
		if im.Index == images[0].Index {
			continue
		}
		t.Errorf("platform images are spread over several indexes (%s, %s): want one manifest list", images[0].Index, im.Index)
	}

	tlsServer := startForgedTLSServer(t)
	var summary []string
	binaries := map[string][]byte{} // platform → the image's /macaque, for the signature check
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			i := slices.IndexFunc(images, func(im ocilayout.Image) bool {
				return im.Platform.OS == p.os && im.Platform.Architecture == p.arch
			})
			if i < 0 {
				t.Fatalf("the image index does not list %s", p)
			}
			im := images[i]
			c := checkImage(t, repo, p, im)
			if c == nil {
				return // checkImage failed: nothing to run
			}
			size, err := ocilayout.SizeOf(im.Image)
			if err != nil {
				t.Fatal(err)
			}
			line := fmt.Sprintf("%s: image %s pulled (%d bytes: compressed layer %d + config %d + manifest %d), layer %s uncompressed; binary %d bytes",
				p, ocilayout.MiB(size.Pulled()), size.Pulled(), size.Compressed, size.Config, size.Manifest,
				ocilayout.MiB(size.Uncompressed), len(c.binary))
			t.Log(line)
			summary = append(summary, line)
			binaries[p.String()] = c.binary
			runInEmptyRoot(t, p, c, tlsServer)
		})
	}
	// The release workflow's signing steps on this image, and what they let a user check.
	t.Run("signature", func(t *testing.T) { checkSignatures(t, repo, oci, images, binaries) })
	for _, line := range summary {
		t.Log("size " + line)
	}
}

// checkPrerequisites fails the test, saying what to install, when something it needs is missing.
func checkPrerequisites(t *testing.T, repo string) {
	var missing []string
	if _, err := os.Stat(filepath.Join(repo, "Dockerfile")); err != nil {
		missing = append(missing, fmt.Sprintf("no Dockerfile in %s: run the test from imagetest/ in macaque's repository", repo))
	}
	if oci := os.Getenv(ociEnv); oci != "" {
		if _, err := os.Stat(filepath.Join(oci, "index.json")); err != nil {
			missing = append(missing, fmt.Sprintf("%s=%s is not an OCI layout: %v", ociEnv, oci, err))
		}
	} else if _, err := exec.LookPath("buildah"); err != nil {
		missing = append(missing, "buildah is not installed: "+aptHint)
	}
	for _, p := range platforms {
		if p.goarch == runtime.GOARCH {
			continue
		}
		if _, err := exec.LookPath(p.qemu); err != nil {
			missing = append(missing, fmt.Sprintf("%s is not installed (it runs the %s binary on this %s machine): %s", p.qemu, p, runtime.GOARCH, aptHint))
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "the test must run as root: it runs each binary with chroot and setuid to 65532")
	}
	if len(missing) > 0 {
		t.Fatalf("the image test cannot run (set MACAQUE_SKIP_IMAGE_TEST=1 to skip it on purpose):\n  %s", strings.Join(missing, "\n  "))
	}
}

func platformList() string {
	var s []string
	for _, p := range platforms {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// checkPlatformArgs fails on a default given to an automatic platform argument. buildah, which this
// test builds with, sets TARGETOS and TARGETARCH for each platform over such a default, so the
// images below would pass; BuildKit (docker buildx, which publishes the image) keeps the default
// for every platform, and `ARG TARGETARCH=amd64` puts the amd64 binary in the arm64 image.
func checkPlatformArgs(t *testing.T, dockerfile string) {
	b, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	automatic := []string{"TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"}
	for i, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || !strings.EqualFold(f[0], "ARG") {
			continue
		}
		for _, arg := range f[1:] {
			name, _, hasDefault := strings.Cut(arg, "=")
			if hasDefault && slices.Contains(automatic, name) {
				t.Errorf("Dockerfile:%d: %q: BuildKit would use this default for every --platform; declare it as `ARG %s`", i+1, line, name)
			}
		}
	}
}

// buildImage builds repo's Dockerfile for every platform with `hack/image.sh buildah-oci`, into a
// manifest list in buildah storage of the script's own, and returns the OCI layout it writes.
func buildImage(t *testing.T, repo string) string {
	oci := filepath.Join(t.TempDir(), "oci")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "hack", "image.sh"), "buildah-oci", oci)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "PLATFORMS="+platformList(), "IMAGE=macaque-imagetest:test")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	return oci
}

// container is what a container runtime takes from an image to start it.
type container struct {
	binary     []byte      // the layer's /macaque
	mode       os.FileMode // its permissions in the layer
	uid, gid   uint32      // the config's User
	entrypoint []string
}

// checkImage checks p's config, its one layer and the binary in it, and returns what a runtime
// would start (nil when the image is too broken to run).
func checkImage(t *testing.T, repo string, p platform, im ocilayout.Image) *container {
	cfg, err := im.Image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != p.os || cfg.Architecture != p.arch {
		t.Errorf("config says %s/%s, want %s", cfg.OS, cfg.Architecture, p)
	}
	if u := cfg.Config.User; u != "65532:65532" && u != "65532" {
		t.Errorf("config User = %q, want 65532:65532", u)
	}
	c := &container{entrypoint: cfg.Config.Entrypoint}
	// With no /etc/passwd in the image, a numeric user without a group runs with group 0.
	if _, err := fmt.Sscanf(cfg.Config.User+":0", "%d:%d", &c.uid, &c.gid); err != nil {
		t.Errorf("config User %q is not numeric: nothing in the image could resolve a name", cfg.Config.User)
		return nil
	}
	if len(c.entrypoint) == 0 {
		return nil
	}
	if e := cfg.Config.Entrypoint; !slices.Equal(e, []string{"/macaque"}) {
		t.Errorf("config Entrypoint = %q, want [/macaque]", e)
	}
	if c := cfg.Config.Cmd; len(c) > 0 {
		t.Errorf("config Cmd = %q, want none: the entrypoint takes no arguments", c)
	}

	layers, err := im.Image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 1 {
		t.Fatalf("the image has %d layers, want 1 (FROM scratch, one COPY)", len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var binary []byte
	var mode os.FileMode
	var names []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read the layer: %v", err)
		}
		name := path.Clean("/" + h.Name)
		names = append(names, name)
		if name != "/macaque" {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			t.Errorf("/macaque is of tar type %q, want a regular file", h.Typeflag)
			continue
		}
		if h.Mode&0o005 != 0o005 {
			t.Errorf("/macaque has mode %v: user %d (neither its owner nor in its group) could not run it", h.FileInfo().Mode().Perm(), nonRoot)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("/macaque is owned by %d:%d, want 0:0 (so the process cannot rewrite its own binary)", h.Uid, h.Gid)
		}
		if binary, err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
		mode = h.FileInfo().Mode().Perm()
	}
	if !slices.Equal(names, []string{"/macaque"}) {
		t.Errorf("the layer holds %q, want exactly [/macaque]", names)
	}
	if binary == nil {
		t.Error("the layer has no regular file /macaque")
		return nil
	}

	if want := hostBuild(t, repo, p); sha256.Sum256(want) != sha256.Sum256(binary) {
		t.Errorf("/macaque in the %s image (%d bytes) is not what this tree's sources build to (%d bytes, "+
			"go build -trimpath -ldflags='-s -w' with this machine's Go): a stale or foreign binary, "+
			"or the tree changed during the test", p, len(binary), len(want))
	}
	checkStaticELF(t, p, binary)
	checkBuildInfo(t, p, binary)
	c.binary, c.mode = binary, mode
	return c
}

// hostBuild builds repo's main package for p with this machine's Go (the version the Dockerfile
// pins: hack/image.sh checks it), as the Dockerfile does. Go builds are reproducible, so the result
// must be the image's binary byte for byte. The build context has no .git, so no VCS stamp.
func hostBuild(t *testing.T, repo string, p platform) []byte {
	out := filepath.Join(t.TempDir(), "macaque")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-buildvcs=false", "-o", out, ".")
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.os, "GOARCH="+p.arch, "GOFLAGS=", "GOAMD64=", "GOARM64=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkStaticELF checks that binary is an executable for p that needs no loader and no library.
func checkStaticELF(t *testing.T, p platform, binary []byte) {
	f, err := elf.NewFile(bytes.NewReader(binary))
	if err != nil {
		t.Errorf("/macaque is not an ELF file: %v", err)
		return
	}
	defer func() { _ = f.Close() }() // read from memory: nothing to close
	if f.Class != elf.ELFCLASS64 || f.Machine != p.machine {
		t.Errorf("/macaque is %s %s, want ELFCLASS64 %s", f.Class, f.Machine, p.machine)
	}
	if f.Type != elf.ET_EXEC {
		t.Errorf("/macaque is ELF type %s, want ET_EXEC (a static, non-PIE executable)", f.Type)
	}
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			t.Errorf("/macaque has a %s program header: it is dynamically linked", prog.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Errorf("/macaque has a .dynamic section: it is dynamically linked")
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("/macaque needs shared libraries %q", libs)
	}
}

// checkBuildInfo reads what `go version -m` prints: how the binary was built and what it embeds.
func checkBuildInfo(t *testing.T, p platform, binary []byte) {
	bi, err := buildinfo.Read(bytes.NewReader(binary))
	if err != nil {
		t.Errorf("/macaque has no Go build information: %v", err)
		return
	}
	if bi.Path != "github.com/macaque-chaos/macaque" {
		t.Errorf("/macaque was built from %q, want github.com/macaque-chaos/macaque", bi.Path)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for key, want := range map[string]string{"GOOS": p.os, "GOARCH": p.arch, "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[key] != want {
			t.Errorf("/macaque was built with %s=%q, want %q", key, settings[key], want)
		}
	}
	// The CA roots that let it reach Slack from an image without /etc/ssl.
	if !slices.ContainsFunc(bi.Deps, func(m *debug.Module) bool { return m.Path == "golang.org/x/crypto/x509roots/fallback" }) {
		t.Error("/macaque does not link golang.org/x/crypto/x509roots/fallback: it would have no CA roots FROM scratch")
	}
}

// run is one way to start the binary, and what it must do.
type run struct {
	name       string
	args       []string
	env        []string
	kubeconfig string      // written to /kubeconfig in the root when set, owned by root
	mode       os.FileMode // of /kubeconfig
	exit       int
	check      func(t *testing.T, stdout, stderr string)
}

// runInEmptyRoot runs the image's entrypoint as its user (65532:65532, no supplementary groups),
// chrooted into a directory that holds nothing but /macaque (and qemu, for a foreign architecture),
// with nothing in its environment but what each case sets.
func runInEmptyRoot(t *testing.T, p platform, c *container, tlsServer string) {
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: forged
  cluster:
    server: %s
users:
- name: anonymous
  user: {}
contexts:
- name: forged
  context: {cluster: forged, user: anonymous, namespace: default}
current-context: forged
`, tlsServer)

	runs := []run{
		{
			name: "help", args: []string{"-h"}, exit: 0,
			check: func(t *testing.T, stdout, _ string) {
				if !strings.Contains(stdout, "MACAQUE_CRONTAB") {
					t.Errorf("-h does not list MACAQUE_CRONTAB:\n%s", stdout)
				}
			},
		},
		{
			name: "bad crontab", env: []string{"MACAQUE_CRONTAB=bad"}, exit: 2,
			check: func(t *testing.T, _, stderr string) {
				oneLineNaming(t, stderr, "MACAQUE_CRONTAB")
			},
		},
		{
			// A negative control for the next run: time zone names are checked for real.
			name: "unknown time zone", env: []string{"MACAQUE_CRONTAB=@hourly", "MACAQUE_TIMEZONE=Europe/Nowhere"}, exit: 2,
			check: func(t *testing.T, _, stderr string) {
				oneLineNaming(t, stderr, "MACAQUE_TIMEZONE")
			},
		},
		{
			// No /usr/share/zoneinfo in the root: Europe/Paris comes from the embedded time/tzdata,
			// so the configuration passes and the binary fails at the next step, finding the API.
			name: "embedded time zone", env: []string{"MACAQUE_CRONTAB=@hourly", "MACAQUE_TIMEZONE=Europe/Paris"}, exit: 1,
			check: func(t *testing.T, _, stderr string) {
				oneLineNaming(t, stderr, "find the Kubernetes API")
				if strings.Contains(stderr, "TIMEZONE") {
					t.Errorf("Europe/Paris was refused without zoneinfo in the root: %s", stderr)
				}
			},
		},
		{
			// No /etc/ssl in the root. The API server's certificate names publicRoot as its issuer
			// but is signed by another key: a verifier holding publicRoot finds it as a candidate,
			// fails its signature and names it in the error; one with no roots cannot name it. So
			// the error proves the binary trusts the Web PKI's roots with nothing on disk.
			name: "embedded CA roots", kubeconfig: kubeconfig, mode: 0o644, exit: 1,
			env: []string{"MACAQUE_CRONTAB=@hourly", "MACAQUE_NAMESPACE=default", "KUBECONFIG=/kubeconfig"},
			check: func(t *testing.T, _, stderr string) {
				oneLineNaming(t, stderr, fmt.Sprintf("candidate authority certificate %q", publicRoot))
			},
		},
		{
			// The same kubeconfig, readable by root alone: the process is not root.
			name: "not root", kubeconfig: kubeconfig, mode: 0o600, exit: 1,
			env: []string{"MACAQUE_CRONTAB=@hourly", "MACAQUE_NAMESPACE=default", "KUBECONFIG=/kubeconfig"},
			check: func(t *testing.T, _, stderr string) {
				oneLineNaming(t, stderr, "/kubeconfig: permission denied")
			},
		},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			root := emptyRoot(t, c)
			argv := c.entrypoint
			if p.goarch != runtime.GOARCH {
				// binfmt_misc may not be there (it is not mounted on every machine, nor with the F flag
				// that would make the host's interpreter work inside a chroot): put qemu in the root.
				copyFile(t, mustLookPath(t, p.qemu), filepath.Join(root, p.qemu), 0o755)
				argv = append([]string{"/" + p.qemu}, argv...)
			}
			if r.kubeconfig != "" {
				f := filepath.Join(root, "kubeconfig")
				if err := os.WriteFile(f, []byte(r.kubeconfig), 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(f, r.mode); err != nil {
					t.Fatal(err)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, argv[0], append(argv[1:], r.args...)...)
			cmd.Env = r.env
			if cmd.Env == nil {
				cmd.Env = []string{} // nil would mean the test's own environment
			}
			cmd.Dir = "/" // inside the root: chdir comes after chroot
			cmd.SysProcAttr = &syscall.SysProcAttr{
				Chroot:     root,
				Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid, Groups: []uint32{}},
				Pdeathsig:  syscall.SIGKILL,
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			exit := 0
			var ee *exec.ExitError
			switch {
			case errors.As(err, &ee) && ee.Exited():
				exit = ee.ExitCode()
			case err != nil:
				t.Fatalf("run %q: %v\nstderr: %s", argv, err, stderr.String())
			}
			t.Logf("%q %q: exit %d in %s; stderr: %s", r.env, append(argv, r.args...), exit,
				time.Since(start).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
			if exit != r.exit {
				t.Errorf("exit status %d, want %d\nstdout: %s\nstderr: %s", exit, r.exit, stdout.String(), stderr.String())
			}
			r.check(t, stdout.String(), stderr.String())
		})
	}
}

// oneLineNaming checks that stderr is exactly one line and that it contains want.
func oneLineNaming(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasSuffix(stderr, "\n") {
		t.Errorf("stderr is not one line:\n%s", stderr)
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not contain %q:\n%s", want, stderr)
	}
}

// emptyRoot makes a directory, searchable by all, that holds only the image's /macaque, owned by
// root with the mode it has in the layer.
func emptyRoot(t *testing.T, c *container) string {
	root := t.TempDir()
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(root, "macaque")
	if err := os.WriteFile(bin, c.binary, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, c.mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
	return root
}

func mustLookPath(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s: %v (%s)", name, err, aptHint)
	}
	return p
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, mode); err != nil {
		t.Fatal(err)
	}
}

// startForgedTLSServer serves TLS on loopback with a certificate that claims publicRoot as its
// issuer (its name and key ID) but is signed by a key of the test's. Before returning, it checks
// the premise of the "embedded CA roots" run in this process: the verification error names
// publicRoot when the verifier holds it, and does not when it holds no roots.
func startForgedTLSServer(t *testing.T) string {
	var root *x509.Certificate
	for r := range bundle.Roots() {
		c, err := x509.ParseCertificate(r.Certificate)
		if err != nil {
			t.Fatal(err)
		}
		if c.Subject.CommonName == publicRoot {
			root = c
			break
		}
	}
	if root == nil {
		t.Fatalf("golang.org/x/crypto/x509roots/fallback/bundle has no %q", publicRoot)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "macaque-imagetest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	// The parent has the real root's name and key ID but no public key, so that ours signs.
	forgedParent := &x509.Certificate{RawSubject: root.RawSubject, SubjectKeyId: root.SubjectKeyId}
	der, err := x509.CreateCertificate(rand.Reader, leaf, forgedParent, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	withRoot := x509.NewCertPool()
	withRoot.AddCert(root)
	hint := fmt.Sprintf("candidate authority certificate %q", publicRoot)
	for _, c := range []struct {
		roots *x509.CertPool
		named bool
	}{{withRoot, true}, {x509.NewCertPool(), false}} {
		_, err := parsed.Verify(x509.VerifyOptions{Roots: c.roots})
		if err == nil || strings.Contains(err.Error(), hint) != c.named {
			t.Fatalf("the forged certificate does not tell a verifier holding %s from one without it (named=%v): %v", publicRoot, c.named, err)
		}
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "the TLS handshake should have failed", http.StatusTeapot)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake errors are the point
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}
