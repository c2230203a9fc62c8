#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: brings up Docker,
# builds the base and example images, prepares the examples' host
# dependencies, then runs go vet and go test across the whole workspace.
#
# Without Docker (it cannot be installed or started), the container tests
# skip loudly; with CI=true a missing Docker is an error instead. The same
# goes for Chromium (scripts/chromium-up.sh) and the emulator page's browser
# tests.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }
started=$(date +%s)

export TESTCONTAINERS_RYUK_DISABLED=true
export GOFLAGS="${GOFLAGS:-} -buildvcs=false"

docker_ok=false
step "Docker engine"
if bash scripts/docker-up.sh; then
  docker_ok=true
  # Docker is here, so no container test may skip.
  export NANOFAAS_REQUIRE_DOCKER=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: Docker could not be started, and CI needs it for the container tests" >&2
  exit 1
else
  echo "test.sh: WARNING: no Docker engine: the container tests will be SKIPPED" >&2
fi

step "Chromium (the emulator page's browser tests)"
if bash scripts/chromium-up.sh >/dev/null; then
  # Chromium is here, so the browser tests may not skip.
  export NANOFAAS_REQUIRE_CHROMIUM=1
elif [ "${CI:-}" = "true" ]; then
  echo "test.sh: Chromium could not be installed, and CI needs it for the emulator page's browser tests" >&2
  exit 1
else
  echo "test.sh: WARNING: no Chromium: the emulator page's browser tests will be SKIPPED" >&2
fi

step "Example host dependencies"
bash scripts/examples-host.sh

if $docker_ok; then
  step "Base and example images"
  bash scripts/build-images.sh
fi

modules=$(go list -m -f '{{.Dir}}' | sed "s#^$PWD#.#")
patterns=""
for m in $modules; do patterns="$patterns $m/..."; done

# What the tests leave in the temp dir is reported at the end: each test
# must remove what it creates. A warning, not a failure, since other
# programs on the machine may write there too.
tmpdir="${TMPDIR:-/tmp}"
tmp_before=$(ls -A "$tmpdir" | sort)

step "gofmt and go vet"
unformatted=$(git ls-files -co --exclude-standard '*.go' | xargs gofmt -l)
if [ -n "$unformatted" ]; then
  echo "test.sh: not gofmt-formatted (run gofmt -w on them):" >&2
  printf '  %s\n' $unformatted >&2
  exit 1
fi
go vet $patterns

step "go test"
log=$(mktemp)
clone_parent=""
trap 'rm -f "$log"; if [ -n "$clone_parent" ]; then rm -rf "$clone_parent"; fi' EXIT
status=0
go test -v -count=1 -timeout 45m $patterns > "$log" 2>&1 || status=$?
passed=$(grep -cE '^\s*--- PASS' "$log" || true)
failed=$(grep -cE '^\s*--- FAIL' "$log" || true)
skipped=$(grep -cE '^\s*--- SKIP' "$log" || true)
if [ "$status" -ne 0 ]; then
  cat "$log"
  echo "tests: $passed passed, $failed failed, $skipped skipped"
  exit "$status"
fi
grep -E '^(ok|FAIL|\?)\s' "$log"
grep -E -A3 '^\s*--- SKIP' "$log" || true

# The tests that drop privileges (the watchdog as user nobody) must not
# depend on where the clone is: a user's clone is usually under a home
# directory only its owner can enter, made with umask 077; CI's is not. So
# they run once more from a copy of the working tree (uncommitted changes
# included) under a fresh 0700 directory, in a path with a space, with
# umask 077 and TMPDIR under that 0700 directory too.
hardened_pkg=./watchdog/
step "Privilege-dropping tests from a clone under a 0700 directory"
clone_parent=$(mktemp -d)
chmod 0700 "$clone_parent"
clone="$clone_parent/a clone"
mkdir "$clone" "$clone_parent/tmp"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  # Tracked and untracked files, not the ignored ones nor the deleted ones.
  git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
    done |
    tar -c --null -T - | (umask 077 && tar -x --no-same-permissions -C "$clone")
else
  cp -a . "$clone"
fi
status=0
(umask 077 && cd "$clone" && TMPDIR="$clone_parent/tmp" go test -v -count=1 -run '^TestHardened' "$hardened_pkg") > "$log" 2>&1 || status=$?
rm -rf "$clone_parent"
if [ "$status" -ne 0 ]; then
  cat "$log"
  echo "test.sh: the privilege-dropping tests fail from a clone under a 0700 directory ($hardened_pkg)" >&2
  exit "$status"
fi
grep -E '^(ok|FAIL)\s' "$log"
grep -E -A3 '^\s*--- SKIP' "$log" || true

# The race detector over every package that runs without Docker (the
# container scenarios of conformance ran above, without it: under -race
# they would only be slower, the code they drive is the same). The
# watchdog's scenarios run the race-instrumented binary too.
step "go test -race"
status=0
GORACE=atexit_sleep_ms=0 go test -race -count=1 -timeout 30m \
  ./watchdog/... ./devkit/... ./emulator/... ./deploy/... ./cmd/... > "$log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
  cat "$log"
  echo "test.sh: go test -race failed" >&2
  exit "$status"
fi
grep -E '^(ok|FAIL)\s' "$log"

step "Fuzz targets, 2000 executions each (scripts/fuzz.sh 600 for a real session)"
bash scripts/fuzz.sh 2000x

step "Soak, short (go run ./cmd/soak for 100,000 calls)"
go run ./cmd/soak --calls 2000

step "Benchmark, short (go run ./cmd/wdbench for the real figures)"
go run ./cmd/wdbench --short

left=$(comm -13 <(printf '%s\n' "$tmp_before") <(ls -A "$tmpdir" | sort) | grep -vxF "$(basename "$log")" || true)
if [ -n "$left" ]; then
  echo "test.sh: WARNING: left behind in $tmpdir by the tests (or by another program meanwhile):" >&2
  printf '  %s\n' $left >&2
fi

printf '\ntest.sh: all tests passed in %ss\n' "$(( $(date +%s) - started ))"
echo "tests: $passed passed, $failed failed, $skipped skipped"
