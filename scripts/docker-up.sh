#!/usr/bin/env bash
# Ensure a working Docker engine on this machine.
#
#   scripts/docker-up.sh
#
# - If `docker info` already answers: does nothing (fast path).
# - Otherwise installs Debian's docker.io when dockerd is missing, starts
#   dockerd in the background (detached, survives this script) and waits until
#   `docker info` answers.
#
# Safe to run concurrently (serialised with flock) and repeatedly. Needs root
# (or passwordless sudo) only when it has to install or start something.
#
# Environment knobs:
#   DOCKER_UP_TIMEOUT   seconds to wait for the engine (default 60)
#   DOCKERD_LOG         dockerd log file (default /var/log/nanofaas-dockerd.log)
#   DOCKERD_EXTRA_ARGS  extra dockerd flags (e.g. "--storage-driver=vfs")
#   DOCKER_UP_LOCK      lock file serialising callers (default /tmp/nanofaas-docker-up.lock)
set -euo pipefail

TIMEOUT="${DOCKER_UP_TIMEOUT:-60}"
LOG="${DOCKERD_LOG:-/var/log/nanofaas-dockerd.log}"
LOCK="${DOCKER_UP_LOCK:-/tmp/nanofaas-docker-up.lock}"

log() { printf '[docker-up] %s\n' "$*" >&2; }
die() { printf '[docker-up] ERROR: %s\n' "$*" >&2; exit 1; }

docker_ok() { timeout 15 docker info >/dev/null 2>&1; }

# Fast path: engine already answers.
if command -v docker >/dev/null 2>&1 && docker_ok; then
  exit 0
fi

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  else
    die "Docker engine is not running and this script needs root (or passwordless sudo) to install/start it"
  fi
fi
as_root() { "${SUDO[@]}" "$@"; }

# Serialise concurrent callers (tests, build scripts, humans).
exec 9>>"$LOCK"
if command -v flock >/dev/null 2>&1; then
  flock -w $((TIMEOUT + 300)) 9 || die "timed out waiting for lock $LOCK"
fi
# Someone else may have brought it up while we waited for the lock.
if command -v docker >/dev/null 2>&1 && docker_ok; then
  exit 0
fi

# --- install ----------------------------------------------------------------
if ! command -v dockerd >/dev/null 2>&1 && [ ! -x /usr/sbin/dockerd ]; then
  log "dockerd not found: installing Debian docker.io"
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # Keep package scripts from trying to start services themselves (there is no
  # init system to talk to here); we start dockerd ourselves below.
  added_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
    as_root chmod 0755 /usr/sbin/policy-rc.d
    added_policy=1
  fi
  rc=0
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      --no-install-recommends docker.io ca-certificates
  } </dev/null >/tmp/nanofaas-docker-install.log 2>&1 || rc=$?
  [ -n "$added_policy" ] && as_root rm -f /usr/sbin/policy-rc.d
  if [ "$rc" -ne 0 ]; then
    tail -n 30 /tmp/nanofaas-docker-install.log >&2 || true
    die "apt-get install docker.io failed (full log: /tmp/nanofaas-docker-install.log)"
  fi
  log "installed docker.io in $((SECONDS - t0))s"
fi
DOCKERD="$(command -v dockerd || echo /usr/sbin/dockerd)"

if ! command -v docker >/dev/null 2>&1; then
  die "docker CLI not found even after installing docker.io"
fi

# --- start ------------------------------------------------------------------
# alive PID: the process exists and is not a zombie (an orphaned, killed
# dockerd can linger as a zombie here when nothing reaps it promptly).
alive() {
  local st
  st="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null || true)"
  [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}
dockerd_pid() {
  local p
  p="$(cat /var/run/docker.pid 2>/dev/null || true)"
  if [ -n "$p" ] && alive "$p" && grep -q dockerd "/proc/$p/comm" 2>/dev/null; then
    echo "$p"
  fi
}

started_pid=""
if [ -n "$(dockerd_pid)" ]; then
  log "dockerd (pid $(dockerd_pid)) is running but not answering yet; waiting"
else
  # shellcheck disable=SC2206
  extra=(${DOCKERD_EXTRA_ARGS:-})
  exec_root=/var/run/docker
  for ((i = 0; i < ${#extra[@]}; i++)); do
    case "${extra[$i]}" in
      --exec-root=*) exec_root="${extra[$i]#--exec-root=}" ;;
      --exec-root) exec_root="${extra[$((i + 1))]:-$exec_root}" ;;
    esac
  done
  # A dockerd that died leaves its pid file behind, and dockerd then refuses
  # to start ("pid file found, ensure docker is not running").
  as_root rm -f /var/run/docker.pid
  # Same for the containerd it manages: a pid file naming a dead (or zombie)
  # process makes the new dockerd wait for that containerd until it gives up
  # ("timeout waiting for containerd to start").
  cpid="$(cat "$exec_root/containerd/containerd.pid" 2>/dev/null || true)"
  if [ -n "$cpid" ] && ! alive "$cpid"; then
    as_root rm -f "$exec_root/containerd/containerd.pid"
  fi
  as_root mkdir -p "$(dirname "$LOG")"
  log "starting dockerd ${extra[*]:-} (log: $LOG)"
  {
    printf '\n=== %s docker-up.sh: starting %s %s\n' "$(date -Is)" "$DOCKERD" "${extra[*]:-}"
  } | as_root tee -a "$LOG" >/dev/null
  # setsid + nohup: own session, immune to the caller's SIGHUP / process group
  # kills, so the daemon outlives this script (and CI steps). `9>&-`: the
  # daemon must not inherit (and so hold forever) the lock taken above.
  # A plain command (not a shell function) so that the background job execs
  # it instead of leaving a subshell waiting for the daemon.
  # shellcheck disable=SC2016 # expanded by the inner sh
  "${SUDO[@]}" env NANOFAAS_DOCKERD_LOG="$LOG" sh -c \
    'exec setsid nohup "$0" "$@" </dev/null >>"$NANOFAAS_DOCKERD_LOG" 2>&1' \
    "$DOCKERD" "${extra[@]}" 9>&- &
  started_pid=$!
  disown 2>/dev/null || true
fi

# --- wait -------------------------------------------------------------------
t0=$SECONDS
until docker_ok; do
  if [ $((SECONDS - t0)) -ge "$TIMEOUT" ]; then
    tail -n 25 "$LOG" >&2 2>/dev/null || true
    die "Docker engine did not answer within ${TIMEOUT}s; see dockerd log: $LOG"
  fi
  if [ -n "${started_pid:-}" ] && ! alive "$started_pid"; then
    tail -n 25 "$LOG" >&2 2>/dev/null || true
    die "dockerd exited during startup; see dockerd log: $LOG"
  fi
  sleep 0.5
done
log "Docker engine ready after $((SECONDS - t0))s ($(docker version --format 'server {{.Server.Version}}, API {{.Server.APIVersion}}' 2>/dev/null || echo '?'))"
