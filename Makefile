# macaque's commands. `make test` is the whole suite CI runs: lint, the known-vulnerability check,
# unit tests, the Helm chart with the real helm CLI, a short run of each fuzz
# target, then the e2e tests on a real control plane (built once from the Go module proxy and
# cached in .cache/), then the image test.

# Go 1.27.3, the version of go.mod's go line and of the Dockerfile's build stage: a machine whose
# own Go is older fetches it from the module proxy (about 76 MB, once). TestToolchainPinned keeps
# every place that names it equal.
export GOTOOLCHAIN := go1.27.3

GO        ?= go
VERSION   ?= 0.1.0
IMAGE     ?= ghcr.io/macaque-chaos/macaque:$(VERSION)
PLATFORMS ?= linux/amd64,linux/arm64
LDFLAGS   := -s -w
BUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: all build cross test unit fuzz mutation lint vulncheck e2e image image-test controlplane demo bench manifests chart clean

all: lint unit build

## build: the static binary for this machine, in bin/macaque
build:
	$(BUILD) -o bin/macaque .

## cross: static binaries for every platform of the image, in dist/ (the image builds its own)
cross:
	@for p in $$(echo $(PLATFORMS) | tr , ' '); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "building dist/macaque-$$os-$$arch"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o dist/macaque-$$os-$$arch . || exit 1; \
	done

## lint: go vet and gofmt, then golangci-lint (pinned in tools/golangci, built once per version into
## .cache/golangci-lint/; .golangci.yml says which linters and why), over every module
lint:
	$(GO) vet ./...
	cd e2e && $(GO) vet ./...
	cd imagetest && $(GO) vet ./...
	cd deploy && $(GO) vet ./...
	cd charttest && $(GO) vet ./...
	@out=$$(gofmt -l . ); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	bash hack/lint.sh

## vulncheck: govulncheck (pinned in tools/vulncheck) over every module, test code included,
## against an offline database built from the pinned golang.org/x/vulndb module (cached in
## .cache/vulndb/); fails on any vulnerability the code can reach
vulncheck:
	bash hack/vulncheck.sh

## manifests: macaque.yml and macaque-cluster.yml rendered from the Helm chart charts/macaque with
## helm's Go packages (charttest's TestManifestsAreRendersOfTheChart fails when they drift from it)
manifests:
	cd charttest && $(GO) test -count=1 -run '^TestManifestsAreRendersOfTheChart$$' . -update-manifests

## unit: fast tests, no cluster; deploy/'s check the alert rules and the dashboard against the
## metrics macaque exports (deploy/metrics.txt, which internal/telemetry's TestMetricsFile keeps true);
## charttest's check the Helm chart (lint, schema, golden renders, Pod Security, the manifests' drift)
unit:
	$(GO) test -race -count=1 ./...
	cd deploy && $(GO) test -race -count=1 ./...
	cd charttest && $(GO) test -race -count=1 .

## chart: the Helm chart with the real helm CLI (built once per version into .cache/helm/):
## helm lint --strict, helm template (equal to charttest's golden renders) and helm package
chart:
	bash hack/chart.sh

## fuzz: each fuzz target (Target:package) for FUZZTIME; go test -fuzz takes one target of one package a run
FUZZTIME ?= 10s
FUZZ_TARGETS := FuzzParseSchedule:./internal/schedule FuzzConfigCheck:. FuzzDecodeTable:./internal/kube
fuzz:
	@for tp in $(FUZZ_TARGETS); do \
		f=$${tp%%:*}; p=$${tp#*:}; \
		echo "fuzzing $$f in $$p for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
	done

## mutation: mutation testing of the unit suite with gremlins (about an hour on 2 cores): fails
## under 90% efficacy or 85% mutant coverage, or on a mutant only a timeout stopped. The check
## before a release (the release workflow runs it); too long for every CI run. BASE=<rev>
## mutates only the lines changed since rev: a change's own check.
mutation:
	bash hack/mutation.sh $(BASE)

## controlplane: build (or reuse) etcd, kube-apiserver, kube-controller-manager, kubectl and kwok
controlplane:
	bash hack/controlplane.sh

## e2e: end-to-end tests against a real control plane started by the tests, one line per test
## (SKIP included, so a test that could not run here shows); exits non-zero if any test fails.
## Then the chart's: helm install (helm's action package) into a restricted namespace, and a kill.
e2e: controlplane build
	cd e2e && $(GO) tool gotestsum --format testname -- -count=1 -timeout 20m ./...
	cd charttest && $(GO) test -count=1 -timeout 10m -v ./e2e

## image: the multi-arch image from the Dockerfile (docker buildx where a Docker engine runs, buildah otherwise)
image:
	bash hack/image.sh build

## image-test: build the real Dockerfile for every platform and check each image
image-test:
	bash hack/image.sh test

## test: everything CI runs
test: lint vulncheck unit chart fuzz e2e image-test

## demo: a local control plane, a sample app, and macaque killing its pods until Ctrl-C
demo: controlplane build
	cd e2e && $(GO) run ./cmd/demo

## bench: macaque's figures at 10k and 50k pods in a namespace, then MACAQUE_KILL_COUNT=100 over 50k pods in 500
## Deployments (-many ''), then cluster-wide (MACAQUE_NAMESPACE=*) at 100k pods in 1,000 namespaces, on the local
## control plane (skip that with: cd e2e && go run ./cmd/bench -cluster '')
bench: controlplane build
	cd e2e && $(GO) run ./cmd/bench

clean:
	rm -rf bin dist
