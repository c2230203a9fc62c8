#!/usr/bin/env bash
# Prepare everything the examples' host commands (examples/*/function.json
# "command") need, idempotently; a run with nothing to do takes well under a
# second.
#
#   scripts/examples-host.sh [EXAMPLE ...]     (default: every example)
#
# Steps (each skipped when already done):
#   tools   checks the host tools the commands run: python3, node, java, jq
#           (jq is apt-installed when missing and running as root)
#   python  examples/.venv with the pinned requirements.txt of every Python
#           example (python-fastapi-http, python-flask-http; python-stdio needs
#           only the standard library)
#   EXAMPLE every examples/*/prepare.sh, which also makes what `docker build`
#           copies, so image builds need no package registry:
#             java-spring-http   target/app.jar (Maven), target/app/ (extracted)
#                                and target/app/app.jsa (CDS archive)
#             go-binary          ./handler (static, CGO_ENABLED=0)
#             node-express-http  node_modules/ (npm ci) and .npm-cache/
#             python-*-http      wheels/ for the image (CPython 3.11, linux)
#
# EXAMPLE names select steps: an example with a requirements.txt -> python,
# with a prepare.sh -> that script. A *-warm example selects the steps of the
# -http sibling whose code it runs. FORCE=1 redoes every step.
#
# Environment: PYTHON (interpreter for the venv, default python3),
# FORCE=1 (rebuild everything).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EX="$ROOT/examples"
PYTHON="${PYTHON:-python3}"
FORCE="${FORCE:-0}"

log() { printf '[examples-host] %s\n' "$*" >&2; }
die() { printf '[examples-host] ERROR: %s\n' "$*" >&2; exit 1; }

now_ms() { date +%s%3N; }
T_START="$(now_ms)"
# step NAME COMMAND...: run COMMAND (its own output goes to stderr), then print
# its one-line outcome with the time taken on stdout.
step() {
  local name="$1" t0 outcome
  shift
  t0="$(now_ms)"
  outcome="$("$@")" || die "step '$name' failed"
  printf '[examples-host] %-20s %-56s %5.1fs\n' "$name" "$outcome" \
    "$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN { print (b - a) / 1000 }')"
}

sha() { sha256sum "$@" | sha256sum | cut -c1-32; }

# ---------------------------------------------------------------------------
# Steps
# ---------------------------------------------------------------------------
VENV="$EX/.venv"
python_step() {
  local reqs=() r stamp want
  for r in "$EX"/*/requirements.txt; do [ -f "$r" ] && reqs+=("$r"); done
  want="$(sha "${reqs[@]}")"
  stamp="$VENV/.examples-host.stamp"
  if [ "$FORCE" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
    "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    echo "examples/.venv up to date"
    return
  fi
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=...)"
  local what="updated"
  if [ "$FORCE" = 1 ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" >&2 || die "$PYTHON -m venv failed (Debian: apt-get install python3-venv)"
    what="created"
  fi
  local args=()
  for r in "${reqs[@]}"; do args+=(-r "$r"); done
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${args[@]}" >&2 ||
    die "pip install into examples/.venv failed"
  echo "$want" >"$stamp"
  echo "examples/.venv $what ($(basename "$(dirname "${reqs[0]}")")$([ "${#reqs[@]}" -gt 1 ] && printf ' +%d' $((${#reqs[@]} - 1))))"
}

prepare_step_for() {
  local name="$1" out
  out="$(FORCE="$FORCE" "$EX/$name/prepare.sh" 2>&1)" || { printf '%s\n' "$out" >&2; die "$name/prepare.sh failed"; }
  out="$(printf '%s' "$out" | tail -n1)"
  printf '%s' "${out#"$name: "}"
}

tools_step() {
  local missing=()
  command -v jq >/dev/null || missing+=(jq)
  if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
        { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
        die "could not install ${missing[*]}"
      echo "installed ${missing[*]} (apt)"
      return
    fi
    die "missing host tools: ${missing[*]}"
  fi
  local t
  for t in "$PYTHON" node java; do command -v "$t" >/dev/null || die "$t not found on the host"; done
  echo "python3, node, java, jq present"
}

# One run at a time (test packages may call this concurrently).
exec 9>>"$EX/.examples-host.lock"
flock -w 900 9 || die "timed out waiting for $EX/.examples-host.lock"

step tools tools_step

# ---------------------------------------------------------------------------
# Which steps
# ---------------------------------------------------------------------------
want_python=0
prepares=()
add_prepare() {
  local p
  for p in "${prepares[@]+"${prepares[@]}"}"; do [ "$p" = "$1" ] && return; done
  prepares+=("$1")
}
select_example() {
  local name="$1"
  [ -f "$EX/$name/function.json" ] || die "no example '$name' (no examples/$name/function.json)"
  # A warm example runs the code of its sibling.
  local code
  code="$(cd "$EX/$name" && cd "$(jq -r '.dir // "."' function.json)" && pwd)" ||
    die "examples/$name/function.json: bad \"dir\""
  code="$(basename "$code")"
  [ -f "$EX/$code/requirements.txt" ] && want_python=1
  [ -x "$EX/$code/prepare.sh" ] && add_prepare "$code"
  return 0
}

if [ "$#" -eq 0 ]; then
  want_python=1
  for p in "$EX"/*/prepare.sh; do [ -x "$p" ] && add_prepare "$(basename "$(dirname "$p")")"; done
else
  for a in "$@"; do select_example "${a%/}"; done
fi

[ "$want_python" = 1 ] && step python python_step
for p in "${prepares[@]+"${prepares[@]}"}"; do
  step "$p" prepare_step_for "$p"
done
printf '[examples-host] done in %ss\n' "$(awk -v a="$T_START" -v b="$(now_ms)" 'BEGIN { printf "%.1f", (b - a) / 1000 }')"
