"""Fetch what the end-to-end tests need, before they run.

- the distributions they install into bundles, into tests/.wheelhouse (the
  tests serve it as a package index on 127.0.0.1);
- the pinned Node.js Functions Framework, into tests/.cache (the tests run
  bundles under it, as `pyfn serve` does), and OTHER_FRAMEWORK, a second version a
  bundle may declare: both go through npm's cache in tests/.npm-cache, from which
  the tests lock and install them offline;
- pyfn's own dependencies and build backend, into tests/.hookhouse, from which
  the pre-commit tests install this repository's hooks with no index.

Run by the test command before pytest; the tests themselves never leave loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from pathlib import Path

from pyfn_action.bundle.nodepackage import declare
from pyfn_action.flows.serve import ensure_framework

HERE = Path(__file__).parent
WHEELHOUSE = HERE / ".wheelhouse"
CACHE = HERE / ".cache"
HOOKHOUSE = HERE / ".hookhouse"
NPM_CACHE = HERE / ".npm-cache"
OTHER_FRAMEWORK = "5.0.2"  # a released version other than the pinned one
TARGET = [
    "--platform", "manylinux2014_x86_64",
    "--platform", "manylinux_2_17_x86_64",
    "--implementation", "pp",
    "--python-version", "3.9",
    "--abi", "pypy39_pp73",
]  # fmt: skip


def main() -> int:
    wheels, sdists, build = [], [], []
    for line in (HERE / "wheelhouse.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--sdist "):
            sdists.append(line.split(None, 1)[1])
        elif line.startswith("--build "):
            build.append(line.split(None, 1)[1])
        else:
            wheels.append(line)
    WHEELHOUSE.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(WHEELHOUSE)]
    steps = [
        pip + ["--only-binary=:all:", *TARGET, *wheels],
        pip + ["--no-binary=:all:", *sdists],
        pip + ["--only-binary=:all:", *build],
    ]
    for step in steps:
        subprocess.run(step, check=True)
    print(f"wheelhouse: {len(list(WHEELHOUSE.iterdir()))} files in {WHEELHOUSE}")
    project = tomllib.loads((HERE.parent / "pyproject.toml").read_text())
    needs = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
    # Wheels (built here where only an sdist exists), so installing needs no compiler.
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(HOOKHOUSE), *needs], check=True
    )
    print(f"hookhouse: {len(list(HOOKHOUSE.iterdir()))} files in {HOOKHOUSE}")
    npm_env = {**os.environ, "npm_config_cache": str(NPM_CACHE)}
    for spec in (None, OTHER_FRAMEWORK):
        framework = ensure_framework(CACHE, npm_env, declare(spec, CACHE, npm_env))
        print(f"Node.js Functions Framework {framework.package.spec}: {framework.home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
