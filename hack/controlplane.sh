#!/usr/bin/env bash
# Builds a real Kubernetes control plane (etcd, kube-apiserver,
# kube-controller-manager, kubectl) and kwok from source through the Go module
# proxy, for the end-to-end tests in e2e/. Nothing prebuilt is downloaded.
#
# The binaries land in .cache/controlplane/<versions>/ under the repository
# root; a folder that already holds all of them is reused as is, so calling
# this script again is cheap. The folder path is the last line of stdout.
#
# A cold build takes about 13 minutes on 2 cores.
set -euo pipefail

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.7.3
KWOK_VERSION=v0.8.0

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${repo_root}/tools/controlplane"
out_dir="${repo_root}/.cache/controlplane/k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}"
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
stage="$(mktemp -d "${out_dir}/.build.XXXXXX")"
trap 'rm -rf "${stage}"' EXIT

build_flags=(-trimpath -ldflags='-s -w')
start=${SECONDS}

log() { echo "controlplane.sh: $*" >&2; }

if [[ ! -x "${out_dir}/etcd" ]]; then
  log "building etcd ${ETCD_VERSION}"
  (cd "${tools_dir}/etcd" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build "${build_flags[@]}" -o "${stage}/etcd" .)
  mv "${stage}/etcd" "${out_dir}/etcd"
fi

if [[ ! -x "${out_dir}/kwok" ]]; then
  log "building kwok ${KWOK_VERSION}"
  # `go install pkg@version` resolves kwok's own go.mod and rejects -mod.
  GOFLAGS="" GOBIN="${stage}" go install "${build_flags[@]}" "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  mv "${stage}/kwok" "${out_dir}/kwok"
fi

k8s_cmds=()
for b in kube-apiserver kube-controller-manager kubectl; do
  [[ -x "${out_dir}/${b}" ]] || k8s_cmds+=("k8s.io/kubernetes/cmd/${b}")
done
if ((${#k8s_cmds[@]} > 0)); then
  log "building ${k8s_cmds[*]} (Kubernetes ${K8S_VERSION})"
  (cd "${tools_dir}" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build "${build_flags[@]}" -o "${stage}/" "${k8s_cmds[@]}")
  for c in "${k8s_cmds[@]}"; do
    mv "${stage}/${c##*/}" "${out_dir}/${c##*/}"
  done
fi

log "built in $((SECONDS - start))s"
all_built
echo "${out_dir}"
