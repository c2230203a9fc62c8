#!/usr/bin/env bash
# Runs every Go fuzz target of the watchdog module, one target per
# `go test -fuzz` invocation, as Go requires. The budget is per target:
# SECONDS (a duration) or COUNTx (a number of executions); default 3.
#
#   scripts/fuzz.sh 1000x    # 1000 executions each: the smoke run CI does
#   scripts/fuzz.sh 600      # 10 min each: a real fuzzing session
#   FUZZ_MATCH=Split scripts/fuzz.sh 60   # only the targets matching a regexp
#
# CI uses a count, not a duration: Go 1.26's fuzz coordinator can report a
# bare "context deadline exceeded" failure when a duration budget expires
# while a worker is mid-execution (go.dev/issue/75804, fixed in Go 1.27).
# A count budget has no deadline to race. Such a failure writes no input to
# testdata/fuzz/; a real finding always does.
#
# Each new interesting input is minimized for at most FUZZ_MINIMIZE (5s):
# Go's default (60s each) can eat a short run's whole budget.
#
# Each target's seed corpus is in testdata/fuzz/<Target>/ next to its test;
# plain `go test` runs the seeds as regression tests. A failing input found
# here is written there too: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/../watchdog"

budget="${1:-3}"
case "$budget" in
  *[!0-9x]*|x*|*x?*|'') echo "fuzz.sh: budget \"$budget\" is neither SECONDS (60) nor COUNTx (1000x); usage: scripts/fuzz.sh [SECONDS|COUNTx]" >&2; exit 2 ;;
  *x) fuzztime="$budget" ;;
  *) fuzztime="${budget}s" ;;
esac
match="${FUZZ_MATCH:-.}"
minimize="${FUZZ_MINIMIZE:-5s}"

# "package-dir target" for every func FuzzX(f *testing.F) in a test file.
mapfile -t targets < <(
  grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
    sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\(.*#\1 \2#' |
    sort | grep -E -- "$match" || true
)
if [ "${#targets[@]}" -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets found (FUZZ_MATCH=$match)" >&2
  exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
started=$(date +%s)
failed=()
for t in "${targets[@]}"; do
  pkg=${t% *}
  name=${t#* }
  printf '==> %-28s ./%s (%s)\n' "$name" "$pkg" "$fuzztime"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "./$pkg" >"$log" 2>&1; then
    cat "$log"
    failed+=("$name")
  else
    grep -E '^fuzz: elapsed' "$log" | tail -1 || true
  fi
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (the failing inputs are in testdata/fuzz/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets clean, $fuzztime each, in $(( $(date +%s) - started ))s"
