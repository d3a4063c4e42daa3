# macaque's image: one static binary in an empty root, for linux/amd64 and linux/arm64.
#
# It builds from a fresh clone, nothing to run first:
#   docker build -t macaque .
#   docker buildx build --platform linux/amd64,linux/arm64 -t you/macaque:0.1.0 .
# (also with buildah, Kaniko, or from a git URL). The build stage runs on the build machine's own
# platform and cross-compiles for the target's (CGO_ENABLED=0), so no stage needs emulation. CA roots
# and time zone data are compiled into the binary, so the image needs no base.
#
# Keep the golang tag at the version of go.mod's `go` line: hack/image.sh (the image test) checks it.
FROM --platform=$BUILDPLATFORM golang:1.27.3 AS build
# No defaults: BuildKit (docker buildx) treats a default on these automatic platform arguments as a
# value set by the user and never replaces it per platform, so `ARG TARGETARCH=amd64` would build
# the amd64 binary into the arm64 image. buildx, buildah and Kaniko set both for every platform.
ARG TARGETOS
ARG TARGETARCH
# Optional, for a build behind a module proxy of your own (--build-arg GOPROXY=...); unset or
# empty means Go's default.
ARG GOPROXY
ENV CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH
WORKDIR /src
# The modules first, so that a change to the code alone reuses this layer.
COPY go.mod go.sum ./
RUN ["go", "mod", "download"]
COPY *.go ./
# The packages the root wires (internal/); their tests and test helpers compile only in a test.
COPY internal/ ./internal/
RUN ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/macaque", "."]

FROM scratch
COPY --from=build /out/macaque /macaque
USER 65532:65532
ENTRYPOINT ["/macaque"]
