# macaque's image: one static binary in an empty root, for linux/amd64 and linux/arm64.
#
# The binaries are built by `make cross` (CGO_ENABLED=0, -trimpath, -ldflags '-s -w'), with CA
# roots and time zone data embedded, so the image needs no base and no build stage:
#   make cross && docker buildx build --platform linux/amd64,linux/arm64 -t macaque-chaos/macaque:0.1.0 .
# `make image` does the same with buildah where no Docker engine runs.
FROM scratch
# No defaults: BuildKit (docker buildx) treats a default on these automatic platform arguments as a
# value set by the user and never replaces it per platform, so `ARG TARGETARCH=amd64` would copy
# the amd64 binary into the arm64 image. buildx and buildah set both for every --platform.
ARG TARGETOS
ARG TARGETARCH
COPY dist/macaque-${TARGETOS}-${TARGETARCH} /macaque
USER 65532:65532
ENTRYPOINT ["/macaque"]
