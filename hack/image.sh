#!/usr/bin/env bash
# macaque's multi-arch image, built from the Dockerfile (a Go build stage, then FROM scratch).
#
#   hack/image.sh build   build the Dockerfile for every platform (docker buildx when a Docker engine
#                         answers, buildah otherwise), write it as an OCI layout in dist/image-oci/
#                         and print each platform's size
#   hack/image.sh test    the image test (imagetest/): build the unmodified Dockerfile with buildah
#                         for linux/amd64 and linux/arm64 (with buildah-oci), then check each image,
#                         running its binary as uid 65532 in an empty root (arm64 through qemu-user)
#   hack/image.sh buildah-oci DIR
#                         build the Dockerfile for PLATFORMS with buildah and write it as an OCI
#                         layout in DIR (what the image test runs)
#
# `make image` and `make image-test` run these. Without a Docker engine, both need root and, from
# Debian's packages:
#
#   apt-get install --no-install-recommends buildah qemu-user-static ca-certificates
#
# With buildah, nothing is pulled from a container registry: the build stage's base image
# (golang:TAG, TAG as the Dockerfile pins it) is assembled in buildah's storage from this machine's
# Go toolchain, which must be that version, and the build reads its modules from this machine's
# module cache (`go mod download` fills it; GOPROXY=off inside the build). The Dockerfile is the one
# users build; only the base image and the build arguments are supplied from here.
#
# Settings (make passes its command-line variables through): IMAGE (default
# ghcr.io/macaque-chaos/macaque:VERSION, VERSION as in the Makefile), PLATFORMS (default
# linux/amd64,linux/arm64; `test` always checks those two), MACAQUE_SKIP_IMAGE_TEST=1 to skip the
# test on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod's Go (the Makefile exports the same): a machine whose own Go is older fetches it.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}

APT_PACKAGES="buildah qemu-user-static ca-certificates"
PLATFORMS=${PLATFORMS:-linux/amd64,linux/arm64}
VERSION=${VERSION:-$(sed -n 's/^VERSION *?= *//p' Makefile)}
IMAGE=${IMAGE:-ghcr.io/macaque-chaos/macaque:${VERSION:-dev}}
OCI_DIR=dist/image-oci
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

die() {
	echo "image.sh: $*" >&2
	exit 1
}

# golang_tag is the tag of the build stage's golang image in the Dockerfile (1.27.3).
golang_tag() {
	local tag
	tag=$(sed -n 's/^FROM .*[[:space:]]golang:\([^[:space:]]*\).*/\1/p' Dockerfile)
	[[ $tag =~ ^[0-9]+\.[0-9]+(\.[0-9]+)?$ ]] || die "Dockerfile: no 'FROM ... golang:X.Y.Z' line with an exact version (found ${tag:-none})"
	echo "$tag"
}

# need_go checks that this machine's Go, whose GOROOT becomes the base image, is the Dockerfile's
# golang version, and that go.mod's go line is that version too.
need_go() {
	local tag have mod
	tag=$(golang_tag)
	have=$(go env GOVERSION)
	mod=$(sed -n 's/^go //p' go.mod)
	[[ $mod == "$tag" ]] || die "go.mod says go $mod but the Dockerfile builds with golang:$tag: keep them the same"
	[[ $have == "go$tag" ]] ||
		die "this machine's Go is $have ($(go env GOROOT)), the Dockerfile builds with golang:$tag: the image build assembles that base image from this machine's Go, so run with GOTOOLCHAIN=go$tag (the Makefile exports it)"
}
# need_buildah checks for what a build with buildah needs: root, buildah, the pinned Go, CA roots.
need_buildah() {
	command -v buildah >/dev/null || die "buildah is missing: install it with
    apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES"
	[[ -f $CA_BUNDLE ]] || die "$CA_BUNDLE is missing (it goes into the golang base image): install ca-certificates"
	[[ $(id -u) == 0 ]] || die "run as root: buildah's vfs storage here, and the test's chroot and setuid, need it"
	need_go
}

# need_qemu checks for qemu-user for each platform of $PLATFORMS this machine cannot run natively
# (the test runs each image's binary; building needs no emulation).
need_qemu() {
	local missing=() p arch qemu host
	host=$(go env GOHOSTARCH)
	for p in ${PLATFORMS//,/ }; do
		arch=${p#*/}
		[[ $arch == "$host" ]] && continue
		case $arch in
		amd64) qemu=qemu-x86_64-static ;;
		arm64) qemu=qemu-aarch64-static ;;
		*) qemu=qemu-$arch-static ;;
		esac
		command -v "$qemu" >/dev/null || missing+=("$qemu")
	done
	if ((${#missing[@]})); then
		die "missing ${missing[*]}: install them with
    apt-get update && apt-get install -y --no-install-recommends $APT_PACKAGES"
	fi
}

# buildah_isolated runs buildah on storage of its own (vfs, under $STORAGE), whatever the machine's
# containers-storage configuration says.
buildah_isolated() {
	CONTAINERS_STORAGE_CONF=$STORAGE/storage.conf TMPDIR=$STORAGE/tmp \
		buildah --root "$STORAGE/root" --runroot "$STORAGE/run" --storage-driver vfs "$@"
}

# oci_tag is the tag of $IMAGE (what follows a colon in its last path element), or latest.
oci_tag() {
	local last=${IMAGE##*/}
	if [[ $last == *:* ]]; then echo "${last##*:}"; else echo latest; fi
}

build_with_docker() {
	echo "image.sh: building $IMAGE for $PLATFORMS with docker buildx"
	# A multi-platform build needs a builder that can export it (docker-container driver, or the
	# containerd image store): `docker buildx create --use` makes one.
	docker buildx build --platform "$PLATFORMS" -t "$IMAGE" --output "type=oci,dest=dist/image-oci.tar" . ||
		die "docker buildx build failed (a multi-platform build needs a builder that exports it: 'docker buildx create --use')"
	rm -rf "$OCI_DIR"
	mkdir -p "$OCI_DIR"
	tar -xf dist/image-oci.tar -C "$OCI_DIR"
	rm -f dist/image-oci.tar
}

# buildah_storage makes the vfs storage that buildah_isolated uses, removed when the script exits.
buildah_storage() {
	STORAGE=$(mktemp -d)
	trap 'rm -rf "$STORAGE"' EXIT
	mkdir -p "$STORAGE/tmp"
	printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$STORAGE" "$STORAGE" >"$STORAGE/storage.conf"
}

# golang_base assembles the Dockerfile's build-stage base image, docker.io/library/golang:TAG, in
# $STORAGE from this machine's Go toolchain (need_go checked its version), for this machine's
# platform: GOROOT at /usr/local/go, the CA roots, and the environment the official image sets. It
# has no shell, which the Dockerfile does not need (its RUNs are in exec form).
golang_base() {
	local tag goroot ctr rootfs
	tag=$(golang_tag)
	goroot=$(go env GOROOT)
	rootfs=$STORAGE/golang-rootfs
	mkdir -p "$rootfs"/{etc/ssl/certs,go/bin,go/src,root,tmp}
	chmod -R 1777 "$rootfs/go" "$rootfs/tmp" # as the official image
	chmod 700 "$rootfs/root"
	cp "$CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
	echo 'root:x:0:0:root:/root:/sbin/nologin' >"$rootfs/etc/passwd"
	echo 'root:x:0:' >"$rootfs/etc/group"
	echo "image.sh: assembling golang:$tag for $(go env GOHOSTOS)/$(go env GOHOSTARCH) from $goroot ($(go env GOVERSION))"
	ctr=$(buildah_isolated from --quiet scratch)
	buildah_isolated copy --quiet "$ctr" "$rootfs" / >/dev/null
	buildah_isolated copy --quiet "$ctr" "$goroot" /usr/local/go >/dev/null
	buildah_isolated config --os "$(go env GOHOSTOS)" --arch "$(go env GOHOSTARCH)" \
		--env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		--env GOLANG_VERSION="$tag" --env GOTOOLCHAIN=local --env GOPATH=/go --workingdir /go "$ctr"
	buildah_isolated commit --quiet --rm "$ctr" "docker.io/library/golang:$tag" >/dev/null
}

# build_with_buildah builds the Dockerfile for $PLATFORMS into the manifest list $IMAGE in $STORAGE
# (made here unless the caller made it) and writes it as an OCI layout in the directory $1, with no
# container registry: the base image comes from golang_base (--pull=never), the modules from this
# machine's module cache, mounted read-only where the image keeps it (GOPROXY=off: nothing is
# downloaded), and the build cache is this machine's. BUILDPLATFORM is passed because buildah 1.28
# (Debian 12's) does not set it for `FROM --platform=$BUILDPLATFORM` (the build stage would then be
# looked up for the target platform); the value is this machine's, what newer versions set. RUN
# uses chroot isolation, which needs no OCI runtime.
build_with_buildah() {
	local out=$1 start=$SECONDS
	need_buildah
	go mod download
	[[ -n ${STORAGE:-} ]] || buildah_storage
	golang_base
	echo "image.sh: building $IMAGE for $PLATFORMS with buildah $(buildah --version | awk '{print $3}')"
	buildah_isolated build --pull=never --isolation chroot --platform "$PLATFORMS" \
		--build-arg BUILDPLATFORM="$(go env GOHOSTOS)/$(go env GOHOSTARCH)" --build-arg GOPROXY=off \
		--volume "$(go env GOMODCACHE):/go/pkg/mod:ro" --volume "$(go env GOCACHE):/root/.cache/go-build" \
		--manifest "$IMAGE" .
	rm -rf "$out"
	mkdir -p "$(dirname "$out")"
	buildah_isolated manifest push --all --quiet "$IMAGE" "oci:$out:$(oci_tag)"
	echo "image.sh: built $PLATFORMS in $((SECONDS - start))s"
}

build() {
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
		build_with_docker
	else
		echo "image.sh: no Docker engine answers (docker info failed): using buildah"
		build_with_buildah "$OCI_DIR"
	fi
	echo "image.sh: $IMAGE is in $OCI_DIR/ (an OCI layout: skopeo, crane or 'buildah manifest push' can push it)"
	(cd imagetest && go run ./cmd/imagesize "../$OCI_DIR")
}

# test_image runs imagetest/, which builds the image with `hack/image.sh buildah-oci` and checks it.
test_image() {
	if [[ ${MACAQUE_SKIP_IMAGE_TEST:-} == 1 ]]; then
		echo "image.sh: MACAQUE_SKIP_IMAGE_TEST=1: the test will skip itself"
	else
		PLATFORMS=linux/amd64,linux/arm64
		need_buildah
		need_qemu
	fi
	cd imagetest
	# 40m: on a fresh machine the signature check first builds cosign and cyclonedx-gomod from
	# tools/release (about 8 minutes on 2 cores, then cached in .cache/bin/).
	go test -count=1 -v -timeout 40m ./...
}

case ${1:-} in
build) build ;;
test) test_image ;;
buildah-oci)
	[[ -n ${2:-} ]] || die "usage: hack/image.sh buildah-oci DIR"
	build_with_buildah "$2"
	;;
*) die "usage: hack/image.sh build|test|buildah-oci DIR" ;;
esac
