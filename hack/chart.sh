#!/usr/bin/env bash
# The Helm chart with the real helm CLI (make chart): helm lint --strict over the value sets the
# Go tests cover, helm template (whose render must be the Go packages' render that charttest's
# golden files hold, but for helm's "# Source:" lines), and helm package, whose archive must
# lint and render too: the symbolic links of charts/macaque/files/ to deploy/ are resolved there.
#
# helm is built from source with the Go of go.mod, at the version charttest/go.mod pins (the
# version of the Go packages the tests render with), once per version, into
# .cache/helm/<version>/ and reused from there: only the Go module proxy is needed. To move the
# pin: (cd charttest && go get helm.sh/helm/v4@vX.Y.Z && go mod tidy), then make manifests unit chart.
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod's Go (the Makefile exports the same): a machine whose own Go is older fetches it.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
root=$PWD

version=$(cd charttest && go list -m -f '{{.Version}}' helm.sh/helm/v4)
dir=.cache/helm/${version}
helm=$root/$dir/helm
if [[ ! -x $helm ]]; then
  echo "chart.sh: building helm ${version} (minutes, once)"
  # Built beside, then moved in place: an interrupted build never passes for the tool.
  mkdir -p "$dir/tmp"
  GOBIN=$root/$dir/tmp go install "helm.sh/helm/v4/cmd/helm@${version}"
  mv "$dir/tmp/helm" "$helm"
  rmdir "$dir/tmp"
fi
"$helm" version --short

# helm logs each symbolic link it follows (files/ -> deploy/) at INFO: expected, so not shown.
quiet() { "$helm" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

chart=charts/macaque
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The value sets of charttest's valueSets, as --set flags.
sets=(
  "default|"
  "cluster|--set scope=cluster --set excludeNamespaces={payments,vault}"
  "evict|--set mode=evict"
  "namespaces|--set namespaces={shop,cart} --set slack.channel=C0123456789"
  "no-election|--set leaderElection=false --set replicas=1"
)
for s in "${sets[@]}"; do
  name=${s%%|*}
  read -r -a flags <<<"${s#*|}"
  echo "chart.sh: helm lint --strict ${chart} ${flags[*]}"
  quiet lint --strict "$chart" "${flags[@]}"
  quiet template macaque "$chart" -n chaos "${flags[@]}" >"$out/$name.yaml"
  # The CLI's render is the Go packages' (the golden file), but for its "# Source:" comments and
  # the blank lines around them.
  if ! diff <(grep -v -e '^# Source: ' -e '^$' "$out/$name.yaml") <(grep -v '^$' "charttest/testdata/golden/$name.yaml") >"$out/$name.diff"; then
    echo "chart.sh: helm template (${name}) differs from charttest/testdata/golden/${name}.yaml:" >&2
    head -40 "$out/$name.diff" >&2
    exit 1
  fi
  echo "chart.sh: helm template (${name}): $(grep -c '^kind: ' "$out/$name.yaml") objects, as charttest's golden file"
done

# Values the schema must refuse, through the CLI too.
if "$helm" template macaque "$chart" --set mode=kill >/dev/null 2>"$out/refused"; then
  echo "chart.sh: helm template accepted mode=kill" >&2
  exit 1
fi
grep -q 'mode' "$out/refused" || { echo "chart.sh: helm refused mode=kill without naming it:" >&2; cat "$out/refused" >&2; exit 1; }
# Two replicas without the election would both kill at every tick.
if "$helm" template macaque "$chart" --set leaderElection=false >/dev/null 2>"$out/refused"; then
  echo "chart.sh: helm template accepted two replicas without leaderElection" >&2
  exit 1
fi
grep -q 'replicas' "$out/refused" || { echo "chart.sh: helm refused leaderElection=false without naming replicas:" >&2; cat "$out/refused" >&2; exit 1; }

# The archive the release pushes: every file in it (deploy/'s through the links), lint-clean.
quiet package "$chart" -d "$out" >/dev/null
pkg=$(ls "$out"/macaque-*.tgz)
for f in files/podmonitor.yml files/prometheusrule.yml files/dashboard.json; do
  cmp -s <(tar -xOzf "$pkg" "macaque/$f") "deploy/$(basename "$f")" || { echo "chart.sh: $pkg holds no copy of deploy/$(basename "$f") as $f" >&2; exit 1; }
done
quiet lint --strict "$pkg"
quiet template macaque "$pkg" --set metrics.podMonitor.enabled=true --set prometheusRule.enabled=true --set grafanaDashboard.enabled=true >/dev/null
echo "chart.sh: helm ${version}: lint --strict, template and package passed ($(basename "$pkg"))"
