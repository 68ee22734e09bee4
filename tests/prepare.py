"""Fetch what the end-to-end tests need, before they run.

- the distributions they install into bundles, into tests/.wheelhouse (the
  tests serve it as a package index on 127.0.0.1);
- the pinned Node.js Functions Framework, into tests/.cache (the tests run
  bundles under it, as `pyfn serve` does), and OTHER_FRAMEWORK, a second version a
  bundle may declare: both go through npm's cache in tests/.npm-cache, from which
  the tests lock and install them offline;
- pyfn's own dependencies and build backend, into tests/.hookhouse, from which
  the pre-commit tests install this repository's hooks with no index;
- the files of the Action's lock (requirements/), into tests/.lockhouse, which
  the composite tests' install step installs from.

Run by the test command before pytest; the tests themselves never leave loopback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib
from pathlib import Path

from pyfn_action.bundle.nodepackage import declare
from pyfn_action.flows.nodeframework import ensure_framework

HERE = Path(__file__).parent
WHEELHOUSE = HERE / ".wheelhouse"
CACHE = HERE / ".cache"
HOOKHOUSE = HERE / ".hookhouse"
LOCKHOUSE = HERE / ".lockhouse"
NPM_CACHE = HERE / ".npm-cache"
OTHER_FRAMEWORK = "5.0.2"  # a released version other than the pinned one
TARGET = [
    "--platform",
    "manylinux2014_x86_64",
    "--platform",
    "manylinux_2_17_x86_64",
    "--implementation",
    "pp",
    "--python-version",
    "3.9",
    "--abi",
    "pypy39_pp73",
]


def _build_requires(sdist: Path) -> list[str]:
    """What building ``sdist`` needs (its pyproject's build-system, else setuptools')."""
    with tarfile.open(sdist) as archive:
        names = [n for n in archive.getnames() if n.count("/") == 1]
        found = next((n for n in names if n.endswith("/pyproject.toml")), None)
        member = archive.extractfile(found) if found else None
        table = tomllib.loads(member.read().decode()) if member else {}
    system = table.get("build-system", {})
    return list(system.get("requires", ["setuptools>=40.8", "wheel"]))


def main() -> int:
    wheels, sdists, build, native = [], [], [], []
    for line in (HERE / "wheelhouse.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--sdist "):
            sdists.append(line.split(None, 1)[1])
        elif line.startswith("--build "):
            build.append(line.split(None, 1)[1])
        elif line.startswith("--native "):
            native.append(line.split(None, 1)[1])
        else:
            wheels.append(line)
    WHEELHOUSE.mkdir(exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(WHEELHOUSE)]
    steps = [
        pip + ["--only-binary=:all:", *TARGET, *wheels],
        pip + ["--no-binary=:all:", *sdists],
        pip + ["--only-binary=:all:", *build],
        pip + ["--only-binary=:all:", *native],  # for this Python: the native side's
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
    # The Action's locked install, as the composite tests run it: the very files the
    # lock names (by their SHA-256) for this Python, and what builds the one that is
    # an sdist here; nothing else, so that no wheel built here stands in for them.
    locks = HERE.parent / "requirements"
    pip_download = [sys.executable, "-m", "pip", "download", "-q", "-d", str(LOCKHOUSE)]
    subprocess.run(
        [
            *pip_download,
            "--no-deps",
            "--require-hashes",
            "-r",
            str(locks / "uv.txt"),
            "-r",
            str(locks / "action.txt"),
        ],
        check=True,
    )
    builds = [need for sdist in LOCKHOUSE.glob("*.tar.gz") for need in _build_requires(sdist)]
    subprocess.run([*pip_download, "--only-binary=:all:", *builds], check=True)
    print(f"lockhouse: {len(list(LOCKHOUSE.iterdir()))} files in {LOCKHOUSE}")
    npm_env = {**os.environ, "npm_config_cache": str(NPM_CACHE)}
    for spec in (None, OTHER_FRAMEWORK):
        framework = ensure_framework(CACHE, npm_env, declare(spec, CACHE, npm_env))
        print(f"Node.js Functions Framework {framework.package.spec}: {framework.home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
