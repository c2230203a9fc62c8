#!/usr/bin/env bash
# Build the project's images:
#
#   scripts/build-images.sh [watchdog] [EXAMPLE ...]     (default: everything)
#
#   nanofaas/watchdog:latest          from the root Dockerfile
#   nanofaas/example-<dir>:latest     from examples/<dir>/Dockerfile, with the
#                                     example directory as build context; an
#                                     executable examples/<dir>/prepare.sh is
#                                     run first (host-side build steps)
#
# Brings up Docker (scripts/docker-up.sh) and the local base images
# (scripts/base-images.sh) first. The watchdog image is always (re)built when
# examples are, since they copy /watchdog from it; docker's layer cache makes
# unchanged images take about a second each. An example whose Dockerfile
# starts FROM another nanofaas/example-* image is built after it (and pulls it
# into the selection).
#
# Any failure names the image, shows the tail of its output (full log under
# $LOG_DIR) and makes the script exit non-zero; the remaining independent
# images are still built. A table of per-image time and size ends the run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${NANOFAAS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nanofaas}"
LOG_DIR="$CACHE_DIR/build-logs"
WATCHDOG_IMAGE="nanofaas/watchdog:latest"

export DOCKER_BUILDKIT=0 # engine 20.10 without buildx: legacy builder

log() { printf '[build-images] %s\n' "$*" >&2; }
die() { printf '[build-images] ERROR: %s\n' "$*" >&2; exit 1; }

# --- selection ---------------------------------------------------------------
all_examples() {
  local f
  for f in "$ROOT"/examples/*/Dockerfile; do
    [ -f "$f" ] && basename "$(dirname "$f")"
  done
}
# nanofaas/example-X images an example is built FROM.
example_deps() {
  sed -n 's/^[[:space:]]*FROM[[:space:]]\{1,\}\(--[^[:space:]]*[[:space:]]\{1,\}\)*nanofaas\/example-\([^:@[:space:]]*\).*/\2/Ip' \
    "$ROOT/examples/$1/Dockerfile" | sort -u
}

want_watchdog=0
requested=()
if [ "$#" -eq 0 ]; then
  want_watchdog=1
  mapfile -t requested < <(all_examples)
else
  for a in "$@"; do
    a="${a%/}"
    a="${a#examples/}"
    a="${a#nanofaas/example-}"
    case "$a" in
      watchdog | nanofaas/watchdog) want_watchdog=1 ;;
      *)
        [ -f "$ROOT/examples/$a/Dockerfile" ] || die "no examples/$a/Dockerfile (examples: $(all_examples | tr '\n' ' '))"
        requested+=("$a")
        ;;
    esac
  done
fi
[ "${#requested[@]}" -gt 0 ] && want_watchdog=1

# Order examples so that dependencies come first (depth-first, cycle-checked).
ordered=()
declare -A state=()
visit() {
  local e="$1" d
  case "${state[$e]:-}" in
    "done") return ;;
    active) die "examples/$e: cycle in FROM nanofaas/example-* dependencies" ;;
  esac
  [ -f "$ROOT/examples/$e/Dockerfile" ] || die "an example depends on nanofaas/example-$e, but examples/$e/Dockerfile does not exist"
  state[$e]=active
  for d in $(example_deps "$e"); do visit "$d"; done
  state[$e]="done"
  ordered+=("$e")
}
for e in "${requested[@]}"; do visit "$e"; done

# --- prerequisites -----------------------------------------------------------
"$ROOT/scripts/docker-up.sh"
"$ROOT/scripts/base-images.sh"
mkdir -p "$LOG_DIR"

# --- building ----------------------------------------------------------------
rows=()    # "image|status|seconds|size"
failed=()  # image names
declare -A failed_example=()

size_of() {
  docker image inspect -f '{{.Size}}' "$1" 2>/dev/null |
    awk '{ if ($1 >= 1e9) printf "%.2fGB", $1/1e9; else printf "%.1fMB", $1/1e6 }'
}

# build_one IMAGE LOGNAME CMD... : run CMD (output to the log), record a row.
# The image IMAGE named before, when the build gives the tag to a new one,
# is removed by id: otherwise every change to the watchdog would leave
# behind an untagged copy of each image (gigabytes after a day of work).
# An old image still used by a container or by another image stays.
build_one() {
  local image="$1" logname="$2" t0=$SECONDS rc=0 old new
  shift 2
  local logf="$LOG_DIR/$logname.log"
  old=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  log "building $image"
  "$@" >"$logf" 2>&1 </dev/null || rc=$?
  new=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if [ "$rc" -eq 0 ] && [ -n "$old" ] && [ "$old" != "$new" ]; then
    docker image rm "$old" >/dev/null 2>&1 || true
  fi
  local secs=$((SECONDS - t0))
  if [ "$rc" -ne 0 ]; then
    {
      printf '\n[build-images] FAILED: %s (exit %s, %ss). Last lines of %s:\n' "$image" "$rc" "$secs" "$logf"
      tail -n 40 "$logf" | sed 's/^/    /'
      printf '\n'
    } >&2
    rows+=("$image|FAILED|$secs|-")
    failed+=("$image")
    return 1
  fi
  rows+=("$image|ok|$secs|$(size_of "$image")")
}

build_example() {
  local e="$1" dir="$ROOT/examples/$1"
  if [ -x "$dir/prepare.sh" ]; then
    log "examples/$e: prepare.sh"
    (cd "$dir" && ./prepare.sh) || {
      echo "[build-images] examples/$e/prepare.sh failed (exit $?)" >&2
      return 1
    }
  fi
  docker build --force-rm -t "nanofaas/example-$e:latest" "$dir"
}

print_table() {
  local r image status secs size
  printf '\n%-44s %-7s %6s %10s\n' IMAGE STATUS TIME SIZE
  for r in "${rows[@]}"; do
    IFS='|' read -r image status secs size <<<"$r"
    printf '%-44s %-7s %5ss %10s\n' "$image" "$status" "$secs" "$size"
  done
}

total0=$SECONDS
if [ "$want_watchdog" = 1 ]; then
  if ! build_one "$WATCHDOG_IMAGE" watchdog docker build --force-rm -t "$WATCHDOG_IMAGE" "$ROOT"; then
    print_table
    die "$WATCHDOG_IMAGE failed; the examples need it, not building them"
  fi
fi

for e in "${ordered[@]}"; do
  image="nanofaas/example-$e:latest"
  blocked=""
  for d in $(example_deps "$e"); do
    [ -n "${failed_example[$d]:-}" ] && blocked="$d"
  done
  if [ -n "$blocked" ]; then
    echo "[build-images] NOT BUILT: $image (it is built FROM nanofaas/example-$blocked, which failed)" >&2
    rows+=("$image|BLOCKED|0|-")
    failed+=("$image")
    failed_example[$e]=1
    continue
  fi
  build_one "$image" "example-$e" build_example "$e" || failed_example[$e]=1
done

print_table
printf '%-44s %-7s %5ss\n' "total" "" "$((SECONDS - total0))"
if [ "${#failed[@]}" -gt 0 ]; then
  die "${#failed[@]} image(s) not built: ${failed[*]} (logs: $LOG_DIR)"
fi
