#!/usr/bin/env bash
# Known-vulnerability check (make vulncheck): govulncheck, pinned in tools/vulncheck, over every
# Go module of the repository, against an offline copy of the Go vulnerability database. It fails
# on any vulnerability that macaque's code (or a test module's) can reach; one only imported or
# required is listed but does not fail.
#
# The database is built from the golang.org/x/vulndb module at the version tools/vulncheck/go.mod
# pins (its data/osv/ holds every report as OSV JSON), with that module's own indexdb command,
# into .cache/vulndb/<version>/, once per version. So the check reads nothing but the Go module
# proxy, and its answer changes only when the pin moves. To move the pin forward (a newer
# database, and so newly published vulnerabilities):
#
#   (cd tools/vulncheck && go get -tool golang.org/x/vulndb/cmd/indexdb@master && go mod tidy)
#
# then `make vulncheck`, and commit tools/vulncheck/go.mod and go.sum. Building indexdb takes
# about 3 minutes on 2 cores the first time (it has many dependencies); the database is ~40 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod's Go (the Makefile exports the same): a machine whose own Go is older fetches it.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
root=$PWD

# The modules checked; tools/ holds only the pinned tools and the control plane's sources, which
# are test infrastructure built from their own releases, never shipped.
modules=(. e2e imagetest deploy charttest)

tool_version() {
  (cd tools/vulncheck && go list -m -f '{{.Version}}' "$1")
}
vuln=$(tool_version golang.org/x/vuln)
vulndb=$(tool_version golang.org/x/vulndb)

bin=.cache/bin/govulncheck-${vuln}
if [[ ! -x $bin ]]; then
  echo "vulncheck.sh: building govulncheck ${vuln}"
  (cd tools/vulncheck && go build -o "$root/$bin" golang.org/x/vuln/cmd/govulncheck)
fi

db=.cache/vulndb/${vulndb}
if [[ ! -f $db/index/db.json ]]; then
  echo "vulncheck.sh: building the vulnerability database of golang.org/x/vulndb@${vulndb}"
  osv=$(cd tools/vulncheck && go mod download -json golang.org/x/vulndb | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')/data/osv
  [[ -d $osv ]] || { echo "vulncheck.sh: no $osv" >&2; exit 1; }
  # Built beside, then moved in place: an interrupted build never passes for a database.
  rm -rf "$db.tmp"
  mkdir -p "$(dirname "$db")"
  (cd tools/vulncheck && go tool indexdb -vulns "$osv" -out "$root/$db.tmp")
  mv "$db.tmp" "$db"
fi
echo "vulncheck.sh: govulncheck ${vuln}, database golang.org/x/vulndb@${vulndb} ($(ls "$db/ID" | wc -l) reports), $(go env GOVERSION)"

# govulncheck type-checks the standard library with the language version of the `go` it finds
# first on PATH; a go1.26 `go` that switches to GOTOOLCHAIN's go1.27.3 for each command still
# reports go1.26, and go1.27's library then fails to type-check. So that `go` is the toolchain's.
PATH=$(go env GOROOT)/bin:$PATH

failed=()
for m in "${modules[@]}"; do
  echo "vulncheck.sh: module ${m}"
  if ! (cd "$m" && "$root/$bin" -test -db "file://$root/$db" ./...); then
    failed+=("$m")
  fi
done
if ((${#failed[@]})); then
  echo "vulncheck.sh: known vulnerabilities reachable in module(s): ${failed[*]}" >&2
  exit 1
fi
echo "vulncheck.sh: no reachable vulnerability in ${modules[*]}"
