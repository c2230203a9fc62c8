#!/usr/bin/env bash
# Runs every Go fuzz target of the watchdog module for SECONDS each
# (default 3), one target per `go test -fuzz` invocation, as Go requires.
#
#   scripts/fuzz.sh          # 3 s each: a smoke run for CI
#   scripts/fuzz.sh 600      # 10 min each: a real fuzzing session
#   FUZZ_MATCH=Split scripts/fuzz.sh 60   # only the targets matching a regexp
#
# Each new interesting input is minimized for at most FUZZ_MINIMIZE (5s):
# Go's default (60s each) can eat a short run's whole budget.
#
# Each target's seed corpus is in testdata/fuzz/<Target>/ next to its test;
# plain `go test` runs the seeds as regression tests. A failing input found
# here is written there too: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/../watchdog"

secs="${1:-3}"
case "$secs" in
  ''|*[!0-9]*) echo "usage: scripts/fuzz.sh [SECONDS]" >&2; exit 2 ;;
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
  printf '==> %-28s ./%s (%ss)\n' "$name" "$pkg" "$secs"
  if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "${secs}s" -fuzzminimizetime "$minimize" "./$pkg" >"$log" 2>&1; then
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
echo "fuzz.sh: ${#targets[@]} targets clean, ${secs}s each, in $(( $(date +%s) - started ))s"
