#!/usr/bin/env bash
# Installs node_modules/ for the host command (`npm ci`) and keeps every
# package tarball in .npm-cache/, from which the Docker build installs offline
# (`npm ci --offline`): `docker build` needs no access to the npm registry.
# Does nothing when both match package-lock.json and the node version
# (FORCE=1 redoes it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

want="$(sha256sum package-lock.json | cut -c1-32)-$(node --version)"
stamp=node_modules/.prepared
if [ "${FORCE:-0}" != 1 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] &&
  [ -d .npm-cache ]; then
  echo "node-express-http: node_modules/ and .npm-cache/ up to date"
  exit 0
fi

npm ci --no-audit --no-fund --loglevel=error --cache "$PWD/.npm-cache" >/dev/null
echo "$want" >"$stamp"
echo "node-express-http: npm ci ($(find node_modules -mindepth 1 -maxdepth 1 -not -name '.*' | wc -l) packages; .npm-cache $(du -sh .npm-cache | cut -f1))"
