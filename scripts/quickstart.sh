#!/usr/bin/env bash
# Install pyfn into .venv and build examples/hello into dist/.
#   bash scripts/quickstart.sh
# pyfn downloads the official PyPy build (SHA-256 verified). Where the official
# host cannot be reached, this script says so, installs Debian's pypy3, packs it
# with `pyfn runtime pack` and builds with that archive instead.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q -e .

status=0
.venv/bin/pyfn build examples/hello --out dist || status=$?
if [ "$status" = 4 ]; then
  echo
  echo "quickstart: the official PyPy build could not be fetched (exit 4, above)."
  echo "quickstart: falling back to Debian's pypy3, packed into an archive in the official layout."
  if ! command -v pypy3 >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq pypy3 >/dev/null
  fi
  mkdir -p .cache
  archive=.cache/pypy3-debian-linux64.tar.gz
  sha=$(.venv/bin/pyfn runtime pack pypy3 -o "$archive" | cut -d' ' -f1)
  .venv/bin/pyfn build examples/hello --out dist --pypy-archive "$archive" --pypy-sha256 "$sha"
elif [ "$status" != 0 ]; then
  exit "$status"
fi
echo
echo "quickstart: built dist/bundle.zip; its size report is dist/report.json"
