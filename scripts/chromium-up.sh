#!/usr/bin/env bash
# Ensure a headless-capable Chromium on this machine, for the emulator's
# browser tests (emulator/ui_test.go).
#
#   scripts/chromium-up.sh
#
# - If `chromium` (or `chromium-browser`) already runs: does nothing (fast path).
# - Otherwise installs Debian's chromium package (running `apt-get update`
#   first only when the package lists do not know it).
#
# Safe to run concurrently (serialised with flock) and repeatedly. Needs root
# (or passwordless sudo) only when it has to install something. Prints the
# browser's path on stdout on success.
#
# Environment knobs:
#   CHROMIUM_UP_LOCK  lock file serialising callers (default /tmp/nanofaas-chromium-up.lock)
set -euo pipefail

LOCK="${CHROMIUM_UP_LOCK:-/tmp/nanofaas-chromium-up.lock}"

log() { printf '[chromium-up] %s\n' "$*" >&2; }
die() { printf '[chromium-up] ERROR: %s\n' "$*" >&2; exit 1; }

found() {
  local b
  for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1 && timeout 30 "$b" --headless --no-sandbox --version >/dev/null 2>&1; then
      command -v "$b"
      return 0
    fi
  done
  return 1
}

# Fast path: a working browser is already here.
if found; then
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    die "Chromium is not installed and this script needs root (or passwordless sudo) to install it"
  fi
fi
as_root() { "${SUDO[@]}" "$@"; }
command -v apt-get >/dev/null 2>&1 || die "Chromium is not installed and there is no apt-get to install it: install a chromium browser by hand"

# Serialise concurrent callers (tests, humans).
exec 9>>"$LOCK"
if command -v flock >/dev/null 2>&1; then
  flock -w 900 9 || die "timed out waiting for lock $LOCK"
fi
# Someone else may have installed it while we waited for the lock.
if found; then
  exit 0
fi

t0=$SECONDS
install_log=$(mktemp)
trap 'rm -f "$install_log"' EXIT
rc=0
{
  # Only refresh the package lists when they do not know the package.
  if ! apt-cache show chromium >/dev/null 2>&1; then
    log "updating the package lists"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  fi
  log "installing Debian's chromium"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold chromium
} </dev/null >"$install_log" 2>&1 || rc=$?
if [ "$rc" -ne 0 ]; then
  tail -n 30 "$install_log" >&2 || true
  die "apt-get install chromium failed (exit status $rc)"
fi
found || die "chromium was installed but does not run: try 'chromium --headless --no-sandbox --version'"
log "installed chromium in $((SECONDS - t0))s"
