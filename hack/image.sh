#!/usr/bin/env bash
# macaque's multi-arch image, from the static binaries `make cross` leaves in dist/.
#
#   hack/image.sh build   build the Dockerfile for every platform (docker buildx when a Docker engine
#                         answers, buildah otherwise), write it as an OCI layout in dist/image-oci/
#                         and print each platform's size
#   hack/image.sh test    the image test (imagetest/): build the real Dockerfile with buildah for
#                         linux/amd64 and linux/arm64 and check each image, running its binary as
#                         uid 65532 in an empty root (arm64 through qemu-user)
#
# `make image` and `make image-test` run these after `make cross`. Without a Docker engine, both
# need root and, from Debian's packages:
#
#   apt-get install --no-install-recommends buildah qemu-user-static
#
# Settings (make passes its command-line variables through): IMAGE (default
# macaque-chaos/macaque:VERSION, VERSION as in the Makefile), PLATFORMS (default
# linux/amd64,linux/arm64; `test` always checks those two), MACAQUE_SKIP_IMAGE_TEST=1 to skip the
# test on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES="buildah qemu-user-static"
PLATFORMS=${PLATFORMS:-linux/amd64,linux/arm64}
VERSION=${VERSION:-$(sed -n 's/^VERSION *?= *//p' Makefile)}
IMAGE=${IMAGE:-macaque-chaos/macaque:${VERSION:-dev}}
OCI_DIR=dist/image-oci

die() {
	echo "image.sh: $*" >&2
	exit 1
}

need_binaries() {
	local p
	for p in ${PLATFORMS//,/ }; do
		[[ -f dist/macaque-${p%/*}-${p#*/} ]] || die "dist/macaque-${p%/*}-${p#*/} is missing: run 'make cross' first"
	done
}

# need_buildah checks for buildah, and for qemu-user for each platform this machine cannot run natively.
need_buildah() {
	local missing=() p arch qemu host
	command -v buildah >/dev/null || missing+=(buildah)
	host=$(go env GOARCH)
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
	[[ $(id -u) == 0 ]] || die "run as root: buildah's vfs storage here, and the test's chroot and setuid, need it"
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

build_with_buildah() {
	need_buildah
	STORAGE=$(mktemp -d)
	trap 'rm -rf "$STORAGE"' EXIT
	mkdir -p "$STORAGE/tmp"
	printf '[storage]\ndriver = "vfs"\ngraphroot = "%s/root"\nrunroot = "%s/run"\n' "$STORAGE" "$STORAGE" >"$STORAGE/storage.conf"
	echo "image.sh: building $IMAGE for $PLATFORMS with buildah $(buildah --version | awk '{print $3}')"
	buildah_isolated build --platform "$PLATFORMS" --manifest "$IMAGE" .
	rm -rf "$OCI_DIR"
	buildah_isolated manifest push --all --quiet "$IMAGE" "oci:$OCI_DIR:$(oci_tag)"
}

build() {
	need_binaries
	if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
		build_with_docker
	else
		echo "image.sh: no Docker engine answers (docker info failed): using buildah"
		build_with_buildah
	fi
	echo "image.sh: $IMAGE is in $OCI_DIR/ (an OCI layout: skopeo, crane or 'buildah manifest push' can push it)"
	(cd imagetest && go run ./cmd/imagesize "../$OCI_DIR")
}

test_image() {
	if [[ ${MACAQUE_SKIP_IMAGE_TEST:-} == 1 ]]; then
		echo "image.sh: MACAQUE_SKIP_IMAGE_TEST=1: the test will skip itself"
	else
		PLATFORMS=linux/amd64,linux/arm64
		need_binaries
		need_buildah
	fi
	cd imagetest
	go test -count=1 -v -timeout 20m ./...
}

case ${1:-} in
build) build ;;
test) test_image ;;
*) die "usage: hack/image.sh build|test" ;;
esac
