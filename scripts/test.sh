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
# uv (the version the Action's lock pins, hash-checked) installs the rest: a third of
# the time pip takes for the test dependencies.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes \
  -r requirements/uv.txt
.venv/bin/uv pip install -q --python .venv/bin/python -e '.[test]'
.venv/bin/python tests/prepare.py
# The workflow linters and GitHub's REST API description, for the Action's tests; tsc
# and ESLint, for the shim's.
(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)

# The Node shim (pyfn_action/shim, in every bundle): its types from JSDoc, its lint, its
# unit tests (tests/shim). The tools are tests/node's development dependencies.
tests/node/node_modules/.bin/tsc --project tsconfig.json
tests/node/node_modules/.bin/eslint --max-warnings 0 pyfn_action/shim tests/shim eslint.config.js
node --test tests/shim/*.test.js

.venv/bin/ruff check pyfn_action tests benchmarks examples
.venv/bin/ruff format --check pyfn_action tests benchmarks examples
.venv/bin/mypy

# Three workers on CI's two CPUs (much of the suite waits on servers, subprocesses and
# timeouts: 7:02 with two, 5:56 with three, side by side), a test file each at a time (a
# file's module fixtures are built once); the end-to-end files first, the long ones.
.venv/bin/pytest --numprocesses 3 --dist loadfile tests/e2e tests/unit "$@"
