#!/usr/bin/env bash
# Mutation testing of the unit suite (make mutation): gremlins, pinned in tools/mutation, puts
# one small bug at a time (every mutator it has, turned on) into the product's files, the root
# package's and internal/'s, and runs `go test` on each; a bug no test notices "lived". It fails unless efficacy (killed
# over killed + lived) is at least 90% and mutant coverage (mutants some test runs over all of
# them) at least 85%, and fails on any mutant that only a timeout stopped: every wait in a unit
# test is bounded by seconds, so a bug that makes the code hang must fail a test, not stall it.
#
# The e2e, image test and tool modules and the test helpers (internal/fakeapi, a fake API
# server, internal/testkit and internal/telemetry/telemetrytest) are not mutated. The whole
# tree took about an hour on 2 cores when it was one package (540 mutants); `make mutation BASE=<rev>` (or
# hack/mutation.sh <rev>) mutates only the lines changed since rev, to check a change's tests.
# Results: .cache/mutation/report.json.
set -euo pipefail
cd "$(dirname "$0")/.."
# go.mod's Go (the Makefile exports the same): a machine whose own Go is older fetches it.
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}

version=v0.6.0 # must match tools/mutation/go.mod
bin=.cache/bin/gremlins-${version}
if [[ ! -x "$bin" ]]; then
  (cd tools/mutation && go build -o "../../$bin" github.com/go-gremlins/gremlins/cmd/gremlins)
fi
diff_args=()
if [[ -n "${1:-}" ]]; then
  diff_args=(--diff "$1")
fi
mkdir -p .cache/mutation
log=.cache/mutation/run.log

# The timeout of a mutant's run is the coverage run's time times the coefficient; most of it is
# compiling and linking the test binary again, so the coefficient is generous, and a TIMED OUT
# mutant is still a test with an unbounded wait (or a loop a bug can make endless).
set +e
"$bin" unleash \
  --arithmetic-base --conditionals-boundary --conditionals-negation --increment-decrement \
  --invert-assignments --invert-bitwise --invert-bwassign --invert-logical --invert-loopctrl \
  --invert-negatives --remove-self-assignments \
  --exclude-files '^(e2e|imagetest|tools|hack|deploy)/|^internal/(fakeapi|testkit|telemetry/telemetrytest)/' \
  "${diff_args[@]}" \
  --timeout-coefficient 10 \
  --threshold-efficacy 90 --threshold-mcover 85 \
  --output .cache/mutation/report.json \
  . 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

timed_out=$(grep -c 'TIMED OUT' "$log" || true)
if (( timed_out > 0 )); then
  echo "mutation: $timed_out mutant(s) were stopped only by the timeout; bound the wait or the loop they hang in:" >&2
  grep 'TIMED OUT' "$log" >&2
  exit 1
fi
if (( status != 0 )); then
  echo "mutation: below the thresholds (efficacy 90%, mutant coverage 85%); the survivors are the LIVED lines above" >&2
fi
exit "$status"
