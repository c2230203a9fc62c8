#!/usr/bin/env bash
# Builds ./handler: a static (CGO_ENABLED=0), stripped linux binary that the
# host command runs and the Dockerfile copies into a FROM scratch image.
# Own module, outside the repository's go.work: GOWORK=off. Does nothing when
# ./handler is newer than the sources (FORCE=1 rebuilds).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
if [ "${FORCE:-0}" != 1 ] && [ -x handler ] &&
  [ -z "$(find . -maxdepth 1 \( -name '*.go' -o -name go.mod -o -name go.sum \) -newer handler -print -quit)" ]; then
  echo "go-binary: ./handler up to date"
  exit 0
fi
GOWORK=off CGO_ENABLED=0 GOOS="${GOOS:-linux}" GOARCH="${GOARCH:-$(go env GOARCH)}" \
  go build -trimpath -ldflags="-s -w" -o handler .
echo "go-binary: built ./handler ($(du -h handler | cut -f1))"
