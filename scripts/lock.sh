#!/usr/bin/env bash
# The Action's locked install: every dependency of pyproject.toml, the deploy extra
# included (the Action deploys), pinned with the SHA-256 of each of its files, for
# every Python and platform the Action may run on
# (requirements/action.txt); and uv alone (requirements/uv.txt), which the install
# step puts in first with pip, to install the rest. Run after changing dependencies:
#
#     bash scripts/lock.sh            # keeps the pinned versions that still fit
#     bash scripts/lock.sh --upgrade  # the newest versions that fit
#
# tests/unit/test_lock.py checks that the lock still matches pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=.venv/bin/uv
common=(--universal --generate-hashes --python-version 3.9 --quiet
        --custom-compile-command "bash scripts/lock.sh")
"$uv" pip compile pyproject.toml --extra deploy "${common[@]}" --output-file requirements/action.txt "$@"
version=$(sed -n 's/^uv==\([^ ;\\]*\).*/\1/p' requirements/action.txt | head -n 1)
echo "uv==$version" | "$uv" pip compile - "${common[@]}" --output-file requirements/uv.txt
echo "locked $(grep -c '^[a-z0-9]' requirements/action.txt) distributions; uv $version"
