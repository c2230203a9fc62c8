#!/usr/bin/env bash
# Ensure the local base images the project's Dockerfiles name exist.
#
#   scripts/base-images.sh [debian|python|node|temurin|golang ...]   (default: all)
#
# There is no image registry on these machines. For each image: if the tag is
# present locally it is kept; otherwise a `docker pull` is tried (short
# timeout); otherwise it is built locally:
#
#   debian:bookworm-slim       debootstrap --variant=minbase + docker import
#                              (rootfs tarball cached under $CACHE_DIR)
#   python:3.11-slim-bookworm  stand-in: Debian's python3 3.11 + pip + venv
#   node:18-bookworm-slim      stand-in: Debian's nodejs 18 + npm
#   eclipse-temurin:17-jre     stand-in: Debian's openjdk-17-jre-headless
#   golang:<X.Y>-bookworm      stand-in: bookworm-slim + the host's Go toolchain
#                              (X.Y = host `go env GOVERSION`, 1.26 here)
#
# The stand-in recipes live in scripts/images/<name>/Dockerfile. Images built
# here carry a label with a hash of their recipe; when a recipe changes, the
# image is rebuilt on the next run. NANOFAAS_REBUILD_BASE=1 forces a rebuild.
#
# Environment knobs:
#   NANOFAAS_CACHE_DIR     cache dir (default ${XDG_CACHE_HOME:-$HOME/.cache}/nanofaas)
#   DEBIAN_MIRROR          the Debian mirror (default: debootstrap's own)
#   DEBIAN_SECURITY_MIRROR the security mirror (default: the mirror's URL
#                          with -security appended, Debian's layout)
#   PULL_TIMEOUT           seconds for the `docker pull` attempt (default 20)
#   NANOFAAS_EXTRA_CA_DIR  host CA certificates (*.crt) to add to the debian
#                          base (default /usr/local/share/ca-certificates;
#                          empty = none). Needed where HTTPS to the package
#                          registries goes through an intercepting proxy.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IMAGES_DIR="$ROOT/scripts/images"
CACHE_DIR="${NANOFAAS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/nanofaas}"
# Empty: debootstrap's default mirror, read back from the tree it made.
MIRROR="${DEBIAN_MIRROR:-}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-}"
PULL_TIMEOUT="${PULL_TIMEOUT:-20}"
EXTRA_CA_DIR="${NANOFAAS_EXTRA_CA_DIR-/usr/local/share/ca-certificates}"
# Bump when the rootfs recipe below changes (invalidates the cached tarball).
ROOTFS_RECIPE=5
LABEL_KEY="dev.nanofaas.base-recipe"

export DOCKER_BUILDKIT=0 # engine 20.10 without buildx: legacy builder
export DEBIAN_FRONTEND=noninteractive

log() { printf '[base-images] %s\n' "$*" >&2; }
die() { printf '[base-images] ERROR: %s\n' "$*" >&2; exit 1; }

"$ROOT/scripts/docker-up.sh"

# ---------------------------------------------------------------------------
# Image catalogue
# ---------------------------------------------------------------------------
ALL=(debian python node temurin golang)

host_goroot() { go env GOROOT 2>/dev/null || true; }
host_go_minor() {
  # go1.26.8 -> 1.26
  local v
  v="$(go env GOVERSION 2>/dev/null || true)"
  v="${v#go}"
  [ -n "$v" ] || return 1
  echo "$v" | cut -d. -f1-2
}

canonical() {
  case "$1" in
    debian | bookworm) echo debian ;;
    python | python3) echo python ;;
    node | nodejs) echo node ;;
    temurin | java | jre | eclipse-temurin) echo temurin ;;
    golang | go) echo golang ;;
    *) return 1 ;;
  esac
}

tag_of() {
  case "$1" in
    debian) echo "debian:bookworm-slim" ;;
    python) echo "python:3.11-slim-bookworm" ;;
    node) echo "node:18-bookworm-slim" ;;
    temurin) echo "eclipse-temurin:17-jre" ;;
    golang)
      local m
      m="$(host_go_minor)" || die "golang image needs a Go toolchain on the host (go not found)"
      echo "golang:${m}-bookworm"
      ;;
  esac
}

# Hash identifying the recipe an image was built from.
recipe_of() {
  case "$1" in
    debian) echo "rootfs-v${ROOTFS_RECIPE}-ca-$(extra_ca_hash)" ;;
    # Stand-ins also depend on the exact debian:bookworm-slim they start from.
    golang) { cat "$IMAGES_DIR/golang/Dockerfile"; go env GOVERSION; host_goroot; debian_id; } | sha256sum | cut -c1-16 ;;
    *) { cat "$IMAGES_DIR/$1/Dockerfile"; debian_id; } | sha256sum | cut -c1-16 ;;
  esac
}

# Local CA certificates of the host (see build_debian).
extra_ca_files() {
  [ -n "$EXTRA_CA_DIR" ] && [ -d "$EXTRA_CA_DIR" ] || return 0
  find "$EXTRA_CA_DIR" -maxdepth 1 -type f -name '*.crt' | LC_ALL=C sort
}
extra_ca_hash() {
  local f
  f="$(extra_ca_files)"
  if [ -z "$f" ]; then echo none; else
    # shellcheck disable=SC2086
    cat $f | sha256sum | cut -c1-12
  fi
}
debian_id() { docker image inspect -f '{{.Id}}' debian:bookworm-slim 2>/dev/null || true; }
image_label() { docker image inspect -f "{{ index .Config.Labels \"$LABEL_KEY\" }}" "$1" 2>/dev/null || true; }
image_size() {
  docker image inspect -f '{{.Size}}' "$1" 2>/dev/null | awk '{ printf "%.0fMB", $1/1000/1000 }'
}

# ---------------------------------------------------------------------------
# debian:bookworm-slim from debootstrap
# ---------------------------------------------------------------------------
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi
}

ensure_debootstrap() {
  if command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ]; then return; fi
  log "installing debootstrap (apt)"
  {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        debootstrap debian-archive-keyring
  } </dev/null >"$CACHE_DIR/apt-debootstrap.log" 2>&1 || {
    tail -n 20 "$CACHE_DIR/apt-debootstrap.log" >&2
    die "could not install debootstrap (log: $CACHE_DIR/apt-debootstrap.log)"
  }
}

ROOTFS_TMP=""
cleanup_rootfs_tmp() {
  [ -n "$ROOTFS_TMP" ] && [ -d "$ROOTFS_TMP" ] || return 0
  # debootstrap mounts proc/sys inside the target; never rm -rf through them.
  local m
  for m in $(findmnt -rn -o TARGET 2>/dev/null | grep -F "$ROOTFS_TMP/" | sort -r || true); do
    as_root umount -l "$m" || true
  done
  as_root rm -rf --one-file-system "$ROOTFS_TMP"
  ROOTFS_TMP=""
}
trap cleanup_rootfs_tmp EXIT
trap 'log "failed (line $LINENO, exit $?)"' ERR
trap 'exit 130' INT TERM

# Make the debootstrapped tree look like Debian's docker `-slim` images.
customize_rootfs() {
  local r="$1"
  # APT sources: same suites as the official image, on the mirror
  # debootstrap used (its sources.list names it).
  if [ -z "$MIRROR" ]; then
    MIRROR=$(awk '$1 == "deb" { print $2; exit }' "$r/etc/apt/sources.list")
    [ -n "$MIRROR" ] || { echo "no mirror in the sources.list debootstrap wrote" >&2; return 1; }
  fi
  [ -n "$SECURITY_MIRROR" ] || SECURITY_MIRROR="${MIRROR%/}-security"
  rm -f "$r/etc/apt/sources.list"
  cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # Container-friendly apt/dpkg configuration (our own take on what the
  # official images configure).
  cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
// Drop downloaded .deb files after every install so image layers stay small.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-no-languages" <<'EOF'
// Only fetch the default (English) package descriptions.
Acquire::Languages "none";
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-gzip-indexes" <<'EOF'
// Keep package indexes compressed on disk.
Acquire::GzipIndexes "true";
Acquire::CompressionTypes::Order:: "gz";
EOF
  cat >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests" <<'EOF'
// Suggested packages may be autoremoved.
Apt::AutoRemove::SuggestsImportant "false";
EOF
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker-apt-speedup" <<'EOF'
# No fsync during unpack: layers are written once and then immutable.
force-unsafe-io
EOF
  cat >"$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
# "slim": do not install documentation, man pages or translations.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  # Services must not start during `apt-get install` in a build.
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
  chmod 0755 "$r/usr/sbin/policy-rc.d"
  # debootstrap only reads `bookworm`; bring in bookworm-updates and
  # bookworm-security, as the official image has them.
  chroot "$r" apt-get update -q
  chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get -y -q \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade
  chroot "$r" apt-get clean
  # Apply the slim excludes to what debootstrap already installed.
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$r/usr/share/man/"* "$r/usr/share/groff/"* "$r/usr/share/info/"* \
    "$r/usr/share/lintian/"* "$r/usr/share/linda/"* "$r/usr/share/locale/"*
  # Caches, logs and host leftovers.
  rm -rf "$r/var/lib/apt/lists/"* "$r/var/cache/apt/"*.bin "$r/var/cache/apt/archives/"*.deb \
    "$r/var/cache/debconf/"*-old "$r/var/lib/dpkg/"*-old "$r/tmp/"* "$r/var/tmp/"* "$r/root/.cache"
  find "$r/var/log" -type f -delete
  : >"$r/etc/resolv.conf"
  : >"$r/etc/machine-id" 2>/dev/null || true
  echo localhost >"$r/etc/hostname"
}

build_debian_rootfs() {
  local out="$1" t0=$SECONDS
  ensure_debootstrap
  ROOTFS_TMP="$(mktemp -d "${TMPDIR:-/var/tmp}/nanofaas-rootfs.XXXXXX")"
  log "debootstrap --variant=minbase bookworm (${MIRROR:-its default mirror}), log: $CACHE_DIR/debootstrap.log"
  # With no mirror argument debootstrap uses its default one.
  if ! as_root debootstrap --variant=minbase bookworm "$ROOTFS_TMP/root" ${MIRROR:+"$MIRROR"} \
    </dev/null >"$CACHE_DIR/debootstrap.log" 2>&1; then
    tail -n 25 "$CACHE_DIR/debootstrap.log" >&2
    [ -f "$ROOTFS_TMP/root/debootstrap/debootstrap.log" ] &&
      tail -n 25 "$ROOTFS_TMP/root/debootstrap/debootstrap.log" >&2
    die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"
  fi
  log "debootstrap done in $((SECONDS - t0))s"
  # Separate shell so that `set -e` really applies inside customize_rootfs.
  as_root env MIRROR="$MIRROR" SECURITY_MIRROR="$SECURITY_MIRROR" \
    bash -c "set -euo pipefail; $(declare -f customize_rootfs); customize_rootfs \"\$1\"" _ "$ROOTFS_TMP/root" \
    </dev/null >>"$CACHE_DIR/debootstrap.log" 2>&1 || {
    tail -n 25 "$CACHE_DIR/debootstrap.log" >&2
    die "customizing the rootfs failed (log: $CACHE_DIR/debootstrap.log)"
  }
  log "rootfs ready in $((SECONDS - t0))s"
  # /dev, /proc, /sys are provided by the container runtime.
  as_root tar -C "$ROOTFS_TMP/root" --numeric-owner --one-file-system \
    --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$out.tmp" .
  mv -f "$out.tmp" "$out"
  cleanup_rootfs_tmp
}

build_debian() {
  local tag="$1" recipe="$2"
  local tarball="$CACHE_DIR/debian-bookworm-slim-rootfs-v${ROOTFS_RECIPE}.tar"
  if [ -s "$tarball" ]; then
    log "using cached rootfs $tarball"
  else
    build_debian_rootfs "$tarball"
    # Old recipe versions are dead weight.
    find "$CACHE_DIR" -maxdepth 1 -name 'debian-bookworm-slim-rootfs-v*.tar' ! -name "$(basename "$tarball")" -delete
  fi
  local base_id
  base_id="$(docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL $LABEL_KEY=$recipe" \
    --message "debootstrap --variant=minbase bookworm (nanofaas scripts/base-images.sh)" \
    "$tarball")"
  if [ -z "$(extra_ca_files)" ]; then
    docker tag "$base_id" "$tag"
    return
  fi
  # This machine reaches the package registries through a TLS-intercepting
  # proxy whose CA only the host trusts. Put the host's local CAs where
  # Debian's ca-certificates picks them up (update-ca-certificates runs when an
  # image installs ca-certificates), as a thin layer on top of the cached
  # rootfs so a CA change does not need a new debootstrap.
  local ctx rc=0
  ctx="$(mktemp -d "${TMPDIR:-/tmp}/nanofaas-ca-ctx.XXXXXX")"
  mkdir -p "$ctx/extra-ca"
  # shellcheck disable=SC2046
  cp $(extra_ca_files) "$ctx/extra-ca/"
  printf 'FROM %s\n# Local CAs of the build host (%s), see scripts/base-images.sh.\nCOPY extra-ca/ /usr/local/share/ca-certificates/\n' \
    "$base_id" "$EXTRA_CA_DIR" >"$ctx/Dockerfile"
  run_build debian-ca --label "$LABEL_KEY=$recipe" -t "$tag" "$ctx" </dev/null || rc=$?
  rm -rf "$ctx"
  [ "$rc" -eq 0 ] || die "adding the host CAs to $tag failed"
}

# ---------------------------------------------------------------------------
# Stand-ins
# ---------------------------------------------------------------------------
run_build() { # run_build NAME docker-build-args... ; output to a log, tail on failure
  local name="$1"
  shift
  local blog="$CACHE_DIR/build-$name.log"
  # stdin is passed through: the golang build streams its context on it.
  if ! docker build --force-rm "$@" >"$blog" 2>&1; then
    tail -n 30 "$blog" >&2
    log "building the $name base image failed (log: $blog)"
    return 1
  fi
}

build_standin() {
  local name="$1" tag="$2" recipe="$3"
  run_build "$name" --label "$LABEL_KEY=$recipe" -t "$tag" "$IMAGES_DIR/$name" </dev/null ||
    die "could not build $tag"
}

build_golang() {
  local tag="$1" recipe="$2" goroot base
  goroot="$(host_goroot)"
  if [ -z "$goroot" ] || [ ! -x "$goroot/bin/go" ]; then die "cannot find the host GOROOT (go env GOROOT)"; fi
  base="$(basename "$goroot")"
  # Context streamed as a tar: the Dockerfile plus the host GOROOT renamed to
  # go/ (minus the toolchain's own test suites), without copying it on disk.
  local ctx_err="$CACHE_DIR/build-golang-context.log"
  local -a xf=()
  [ "$base" = go ] || xf=(--transform "s|^${base}|go|S")
  if ! tar -cf - -C "$IMAGES_DIR/golang" Dockerfile \
    -C "$(dirname "$goroot")" "${xf[@]}" \
    --anchored --exclude="$base/test" --exclude="$base/pkg/obj" \
    --no-anchored --exclude=testdata \
    "$base" 2>"$ctx_err" |
    run_build golang --label "$LABEL_KEY=$recipe" \
      --build-arg "GOLANG_VERSION=$(go env GOVERSION | sed 's/^go//')" \
      -t "$tag" -; then
    cat "$ctx_err" >&2
    die "could not build $tag"
  fi
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
ensure_image() {
  local name="$1" tag recipe have t0=$SECONDS how
  tag="$(tag_of "$name")"
  recipe="$(recipe_of "$name")"
  if [ "${NANOFAAS_REBUILD_BASE:-0}" != 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
    have="$(image_label "$tag")"
    # Unlabelled = pulled or made elsewhere: respect it.
    if [ -z "$have" ] || [ "$have" = "$recipe" ]; then
      printf '[base-images] %-28s cached  %4ss  %s\n' "$tag" 0 "$(image_size "$tag")"
      return
    fi
    log "$tag was built from an older recipe ($have != $recipe): rebuilding"
    REPLACED+=("$(docker image inspect -f '{{.Id}}' "$tag")")
  elif [ "${NANOFAAS_REBUILD_BASE:-0}" != 1 ] &&
    timeout "$PULL_TIMEOUT" docker pull -q "$tag" >/dev/null 2>&1; then
    printf '[base-images] %-28s pulled  %4ss  %s\n' "$tag" "$((SECONDS - t0))" "$(image_size "$tag")"
    return
  fi
  case "$name" in
    debian) build_debian "$tag" "$recipe" ;;
    golang) build_golang "$tag" "$recipe" ;;
    *) build_standin "$name" "$tag" "$recipe" ;;
  esac
  how=built
  printf '[base-images] %-28s %s   %4ss  %s\n' "$tag" "$how" "$((SECONDS - t0))" "$(image_size "$tag")"
}

REPLACED=() # image ids superseded by this run, removed at the end if unused
selected=()
if [ "$#" -eq 0 ] || { [ "$#" -eq 1 ] && [ "$1" = all ]; }; then
  selected=("${ALL[@]}")
else
  for a in "$@"; do
    c="$(canonical "$a")" || die "unknown base image '$a' (known: ${ALL[*]})"
    selected+=("$c")
  done
fi

mkdir -p "$CACHE_DIR"
# Serialise concurrent runs (two builds racing on the same tags / cache).
exec 8>>"$CACHE_DIR/base-images.lock"
flock -w 1800 8 || die "timed out waiting for $CACHE_DIR/base-images.lock"

# Every stand-in is built FROM debian:bookworm-slim: make sure it comes first.
need_debian=0
for n in "${selected[@]}"; do [ "$n" = debian ] || need_debian=1; done
done_debian=0
for n in "${selected[@]}"; do
  if [ "$n" = debian ] || { [ "$need_debian" = 1 ] && [ "$done_debian" = 0 ]; }; then
    if [ "$done_debian" = 0 ]; then
      ensure_image debian
      done_debian=1
    fi
    [ "$n" = debian ] && continue
  fi
  ensure_image "$n"
done

# Drop images this run superseded (dangling now), newest first so that an old
# debian base goes after the old stand-ins built on it. Images still used by a
# container or another image are kept (docker refuses; that is fine).
for ((i = ${#REPLACED[@]} - 1; i >= 0; i--)); do
  docker rmi "${REPLACED[$i]}" >/dev/null 2>&1 || true
done
