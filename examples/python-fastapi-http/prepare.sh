#!/usr/bin/env bash
# Downloads the wheels the Docker image installs (wheels/, for CPython 3.11 on
# linux/<host arch>), so that `docker build` needs no access to a package
# registry. Does nothing when wheels/ matches requirements.txt (FORCE=1 redoes
# it). The host command uses examples/.venv instead (scripts/examples-host.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
name="$(basename "$PWD")"

case "$(uname -m)" in
  x86_64 | amd64) platform=manylinux_2_17_x86_64 ;;
  aarch64 | arm64) platform=manylinux_2_17_aarch64 ;;
  *) echo "$name: unsupported architecture $(uname -m)" >&2; exit 1 ;;
esac
want="$(sha256sum requirements.txt | cut -c1-32)-$platform"
if [ "${FORCE:-0}" != 1 ] && [ -f wheels/.prepared ] && [ "$(cat wheels/.prepared)" = "$want" ]; then
  echo "$name: wheels/ up to date"
  exit 0
fi

rm -rf wheels
"${PYTHON:-python3}" -m pip download --quiet --disable-pip-version-check --no-deps \
  --only-binary=:all: --platform "$platform" --python-version 3.11 \
  --implementation cp --abi cp311 --dest wheels -r requirements.txt
echo "$want" >wheels/.prepared
echo "$name: downloaded $(find wheels -name '*.whl' | wc -l) wheels ($(du -sh wheels | cut -f1))"
