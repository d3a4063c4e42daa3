#!/usr/bin/env bash
# Builds a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kubectl) and kwok from source through the Go module
# proxy, for the end-to-end tests in e2e/. Nothing prebuilt is downloaded.
#
# The binaries land in .cache/controlplane/<versions>/ under the repository
# root, or under $MACAQUE_CONTROLPLANE_CACHE when set (to share one build
# between clones); a folder that already holds all of them is reused as is, so
# calling this script again is cheap. The folder path is the last line of
# stdout.
#
# A cold build takes about 11 minutes on 2 cores; with Go's build cache warm
# (another clone on the same machine) it is mostly linking.
set -euo pipefail
# go.mod's Go (the Makefile exports the same): a machine whose own Go is older fetches it.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/tools/controlplane"
cache_root="${MACAQUE_CONTROLPLANE_CACHE:-${repo_root}/.cache/controlplane}"
out_dir="${cache_root}/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
binaries=(etcd kube-apiserver kube-controller-manager kubectl kwok)

all_built() {
  local b
  for b in "${binaries[@]}"; do
    [[ -x "${out_dir}/${b}" ]] || return 1
  done
}

if all_built; then
  echo "${out_dir}"
  exit 0
fi

mkdir -p "${out_dir}"
# Concurrent callers (e.g. several e2e packages under `go test ./...`) wait for
# one build instead of racing on the same files.
exec 9>"${out_dir}.lock"
flock 9
if all_built; then
  echo "${out_dir}"
  exit 0
fi

# Each binary is built into a scratch folder and moved in place only when
# complete, so an interrupted build never leaves a half-written binary behind
# that a later run would mistake for a finished one.
# Under the lock, scratch folders can only be left over from killed builds.
rm -rf "${out_dir}"/.build.*
stage="$(mktemp -d "${out_dir}/.build.XXXXXX")"
trap 'rm -rf "${stage}"' EXIT

build_flags=(-trimpath -ldflags='-s -w')
start=${SECONDS}

log() { echo "controlplane.sh: $*" >&2; }

if [[ ! -x "${out_dir}/etcd" ]]; then
  log "building etcd ${ETCD_VERSION}"
  (cd "${tools_dir}/etcd" && go build "${build_flags[@]}" -o "${stage}/etcd" .)
  mv "${stage}/etcd" "${out_dir}/etcd"
fi

if [[ ! -x "${out_dir}/kwok" ]]; then
  log "building kwok ${KWOK_VERSION}"
  # `go install pkg@version` uses kwok's own go.mod; a -mod from the
  # caller's GOFLAGS would make it fail.
  GOFLAGS="" GOBIN="${stage}" go install "${build_flags[@]}" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  mv "${stage}/kwok" "${out_dir}/kwok"
fi

k8s_cmds=()
for b in kube-apiserver kube-controller-manager kubectl; do
  [[ -x "${out_dir}/${b}" ]] || k8s_cmds+=("k8s.io/kubernetes/cmd/${b}")
done
if ((${#k8s_cmds[@]} > 0)); then
  log "building ${k8s_cmds[*]} (Kubernetes ${K8S_VERSION})"
  # Stamp the release version as Kubernetes' own build does, so /version and
  # `kubectl version` report v1.37.2 rather than v0.0.0-master.
  minor="${K8S_VERSION#v1.}"
  minor="${minor%%.*}"
  k8s_ldflags="-s -w"
  for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    k8s_ldflags+=" -X ${pkg}.gitVersion=${K8S_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
  done
  (cd "${tools_dir}" && go build -trimpath -ldflags="${k8s_ldflags}" -o "${stage}/" "${k8s_cmds[@]}")
  for c in "${k8s_cmds[@]}"; do
    mv "${stage}/${c##*/}" "${out_dir}/${c##*/}"
  done
fi

log "built in $((SECONDS - start))s"
all_built
echo "${out_dir}"
