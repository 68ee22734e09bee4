#!/usr/bin/env bash
# Install everything the tests need, then check style and types and run every test.
#   bash scripts/test.sh            (CI runs exactly this: .ci/run)
# Needs root (or sudo) for Debian's packages: pypy3 stands in for the official
# PyPy build, gcc builds ELF fixtures, unzip extracts bundles, 7z makes Deflate64 zips,
# git plays the Action's repositories and judges .pyfnignore beside pyfn,
# chromium and its driver open the examples' pages headless.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends pypy3 python3-pip-whl gcc libc6-dev unzip p7zip-full git \
  chromium chromium-driver >/dev/null
# Node.js runs bundles under the Functions Framework; keep an installed one (it may not be Debian's).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python tests/prepare.py
# The workflow linters and GitHub's REST API description, for the Action's tests.
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

.venv/bin/ruff check pyfn_action tests benchmarks examples
.venv/bin/ruff format --check pyfn_action tests benchmarks examples
.venv/bin/mypy

# Two workers, a test file each at a time (a file's module fixtures are built once); the
# end-to-end files first, as they are the long ones.
.venv/bin/pytest --numprocesses 2 --dist loadfile tests/e2e tests/unit "$@"
