#!/usr/bin/env bash
# Install pyfn into .venv, build examples/hello into dist/ and serve it on
# http://127.0.0.1:8080/ as Cloud Functions' Node.js runtime would, until Ctrl-C.
#   bash scripts/quickstart.sh            (PORT=9000 bash scripts/quickstart.sh)
# pyfn downloads the official PyPy build (SHA-256 verified). Where the official
# host cannot be reached, this script says so, installs Debian's pypy3, packs it
# with `pyfn runtime pack` and builds with that archive instead.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
apt_install() {
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

python3 -m venv .venv
.venv/bin/python -m pip install -q -e .

status=0
.venv/bin/pyfn build examples/hello --out dist || status=$?
if [ "$status" = 4 ]; then
  echo
  echo "quickstart: the official PyPy build could not be fetched (exit 4, above)."
  echo "quickstart: falling back to Debian's pypy3, packed into an archive in the official layout."
  if ! command -v pypy3 >/dev/null || ! ls /usr/share/python-wheels/pip-*.whl >/dev/null 2>&1; then
    apt_install pypy3 python3-pip-whl
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

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then apt_install nodejs npm; fi
echo "quickstart: serving it; try: curl 'localhost:${PORT:-8080}/?name=PyPy'"
exec .venv/bin/pyfn serve --bundle dist/bundle.zip --port "${PORT:-8080}"
