#!/usr/bin/env bash
# The lint gate (make lint): golangci-lint, pinned in tools/golangci, over every Go module of the
# repository with the one configuration at the root (.golangci.yml, whose comments say why each
# linter is on). It fails on any finding.
#
# The binary is built from tools/golangci/go.mod with the Go of go.mod, once per version, into
# .cache/golangci-lint/<version>/ and reused from there: only the Go module proxy is needed, and
# the result changes only when the pin moves. golangci-lint refuses code whose go line is newer
# than the Go it was built with, so building it here (rather than taking a prebuilt one) also
# keeps the two in step. Its analysis cache lives beside it, in .cache/golangci-lint/cache, so a
# second run only re-analyses the packages that changed. To move the pin:
#
#   (cd tools/golangci && go get -tool github.com/golangci/golangci-lint/v2/cmd/golangci-lint@vX.Y.Z && go mod tidy)
#
# then `make lint`, and commit tools/golangci/go.mod and go.sum.
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod's Go (the Makefile exports the same): a machine whose own Go is older fetches it.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
root=$PWD

# Every module with Go code of our own. tools/ holds only the pinned tools: tools/controlplane's
# tools.go is behind a build tag and imports for their side effect only, and
# tools/controlplane/etcd is a three-line main whose analysis would type-check all of etcd's
# server first (3.5 minutes on 2 cores, on every fresh CI machine, for nothing found).
modules=(. e2e imagetest deploy charttest)

version=$(cd tools/golangci && go list -m -f '{{.Version}}' github.com/golangci/golangci-lint/v2)
dir=.cache/golangci-lint/${version}
bin=${dir}/golangci-lint
if [[ ! -x $bin ]]; then
  echo "lint.sh: building golangci-lint ${version}"
  mkdir -p "$dir"
  # Built beside, then moved in place: an interrupted build never passes for the tool.
  (cd tools/golangci && go build -o "$root/$bin.tmp" github.com/golangci/golangci-lint/v2/cmd/golangci-lint)
  mv "$bin.tmp" "$bin"
fi
export GOLANGCI_LINT_CACHE=$root/.cache/golangci-lint/cache

failed=()
for m in "${modules[@]}"; do
  echo "lint.sh: module ${m}"
  if ! (cd "$m" && "$root/$bin" run --config "$root/.golangci.yml" ./...); then
    failed+=("$m")
  fi
done
if ((${#failed[@]})); then
  echo "lint.sh: findings in module(s): ${failed[*]}" >&2
  exit 1
fi
echo "lint.sh: no finding in ${modules[*]} (golangci-lint ${version})"
