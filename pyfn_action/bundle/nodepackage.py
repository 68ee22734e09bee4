"""The bundle's ``package.json`` and ``package-lock.json``: the Node.js Functions
Framework it declares.

Cloud Functions installs the framework a function's ``package.json`` declares, with
``npm ci`` when a lockfile is there; a function that declares none gets whatever
version the platform picks when it is built. So every bundle declares one, pinned
exactly, with the lockfile that fixes its whole tree, and ``pyfn serve`` and the
tests run that same declaration: what was tested is what is deployed.

The pinned version lives in one place, ``shim/package.json`` (with its lockfile,
``shim/package-lock.json``). The setting ``node_framework`` names another exact
version, or a mirrored package as an npm alias (``npm:@corp/functions-framework@5.0.5``,
for private registries); its lockfile is made once with ``npm install
--package-lock-only`` and kept in the cache, keyed by the declaration.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pyfn_action.config.values import NODE_FRAMEWORK_PACKAGE, node_framework_parts
from pyfn_action.errors import BundleError
from pyfn_action.fetch import cache_lock

log = logging.getLogger(__name__)

PACKAGE = NODE_FRAMEWORK_PACKAGE
NPM_TIMEOUT_SECONDS = 600
# Node loads the bundle's index.js before the framework, so its PyPy workers start while
# the framework loads (Node's working directory is the bundle's root, on Cloud Functions
# as under pyfn serve). index.js keeps it from the processes it starts.
PRELOAD_OPTION = "--require ./index.js"


@dataclass(frozen=True)
class NodePackage:
    """What a bundle declares: its ``package.json`` and lockfile, and the framework they pin."""

    package_json: bytes
    lock: bytes
    spec: str  # as declared: "5.0.5" or "npm:@corp/functions-framework@5.0.5"
    name: str  # the package installed: PACKAGE, or the alias's target
    version: str  # the exact version the lockfile installs

    @property
    def key(self) -> str:
        """A short digest of both files: one installation per declaration."""
        digest = hashlib.sha256(self.package_json + b"\0" + self.lock)
        return digest.hexdigest()[:16]


def node_options(existing: str | None) -> str:
    """``NODE_OPTIONS`` for a bundle's Node: the preload first, then what was there."""
    if not existing or not existing.strip():
        return PRELOAD_OPTION
    if PRELOAD_OPTION in existing:
        return existing
    return f"{PRELOAD_OPTION} {existing.strip()}"


def parse_spec(spec: str) -> tuple[str, str]:
    """(package name, exact version) of a declaration; ``ValueError`` if it is not pinned."""
    return node_framework_parts(spec)


def _shipped(name: str) -> bytes:
    return resources.files("pyfn_action").joinpath("shim", name).read_bytes()


def pinned() -> NodePackage:
    """The declaration pyfn ships and tests with."""
    package = from_files(_shipped("package.json"), _shipped("package-lock.json"), "pyfn")
    if package is None:  # a packaging bug, not a user's mistake
        raise RuntimeError(f"pyfn's shim/package.json declares no {PACKAGE}")
    return package


def from_files(package_json: bytes, lock: bytes | None, where: str) -> NodePackage | None:
    """The declaration in a ``package.json`` and its lockfile; ``None`` if it declares no
    framework. A lockfile that does not pin the declared version is refused."""
    try:
        spec = json.loads(package_json).get("dependencies", {}).get(PACKAGE)
    except (ValueError, AttributeError) as exc:
        raise BundleError(f"{where}'s package.json cannot be read", why=str(exc)) from exc
    if spec is None:
        return None
    try:
        name, version = parse_spec(str(spec))
    except ValueError as exc:
        raise BundleError(f"{where}'s package.json does not pin {PACKAGE}", why=str(exc)) from exc
    if lock is None:
        raise BundleError(
            f"{where} declares {PACKAGE} {spec} without a package-lock.json",
            why="without the lockfile, the framework's own dependencies are whatever npm "
            "finds on the day the function is built",
            fix="Rebuild the bundle with pyfn build",
        )
    locked = _locked(lock, where)
    if (locked.get("name", PACKAGE), locked.get("version")) != (name, version):
        raise BundleError(
            f"{where}'s package-lock.json does not install the {PACKAGE} its package.json "
            f"declares ({spec})",
            why=f"it locks {locked.get('name', PACKAGE)} {locked.get('version')}",
            fix="Rebuild the bundle with pyfn build",
        )
    return NodePackage(
        package_json=package_json, lock=lock, spec=str(spec), name=name, version=version
    )


def _locked(lock: bytes, where: str) -> Mapping[str, Any]:
    try:
        entry = json.loads(lock)["packages"][f"node_modules/{PACKAGE}"]
        if not isinstance(entry, dict):
            raise TypeError(f"its entry is {type(entry).__name__}")
        return entry
    except (ValueError, KeyError, TypeError) as exc:
        raise BundleError(
            f"{where}'s package-lock.json does not lock {PACKAGE}", why=repr(exc)
        ) from exc


def read_tree(root: Path) -> NodePackage | None:
    """What an unpacked bundle declares (``None``: nothing, a bundle of an older pyfn)."""
    try:
        package_json = (root / "package.json").read_bytes()
    except FileNotFoundError:
        return None
    lock_path = root / "package-lock.json"
    lock = lock_path.read_bytes() if lock_path.is_file() else None
    return from_files(package_json, lock, "the bundle")


def declare(spec: str | None, cache_dir: Path, env: Mapping[str, str]) -> NodePackage:
    """The declaration for ``spec`` (``None``: pyfn's pinned one), its lockfile made once."""
    shipped = pinned()
    if spec is None or spec == shipped.spec:
        return shipped
    parse_spec(spec)  # settings are checked on the way in; this is the last guard
    manifest = json.loads(shipped.package_json)
    manifest["dependencies"][PACKAGE] = spec
    package_json = (json.dumps(manifest, indent=2) + "\n").encode()
    digest = hashlib.sha256(package_json).hexdigest()[:16]
    home = cache_dir / "node-locks" / digest
    lock_path = home / "package-lock.json"
    if not lock_path.is_file():
        with cache_lock(home.parent / f"{digest}.lock", what="a Node.js lockfile"):
            if not lock_path.is_file():
                _make_lock(package_json, lock_path, spec, env)
    return _checked(from_files(package_json, lock_path.read_bytes(), f"node_framework {spec!r}"))


def _checked(package: NodePackage | None) -> NodePackage:
    assert package is not None  # the package.json was written with the dependency
    return package


def _make_lock(package_json: bytes, lock_path: Path, spec: str, env: Mapping[str, str]) -> None:
    """``npm install --package-lock-only`` in a scratch directory; the lockfile renamed
    into the cache only when npm succeeded."""
    npm = shutil.which("npm", path=env.get("PATH"))
    if npm is None:
        raise BundleError(
            f"npm is needed to lock node_framework {spec!r} (no `npm` on PATH)",
            why="a bundle declares its Node.js Functions Framework with a lockfile, and "
            "only pyfn's pinned version comes with one",
            fix="Install Node.js and npm, or drop node_framework to use the pinned version",
        )
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".lock-", dir=lock_path.parent.parent) as tmp:
        (Path(tmp) / "package.json").write_bytes(package_json)
        log.info("locking the Node.js Functions Framework %s (once)", spec)
        try:
            result = subprocess.run(
                [
                    npm,
                    "install",
                    "--package-lock-only",
                    "--ignore-scripts",
                    "--no-audit",
                    "--no-fund",
                    "--omit-lockfile-registry-resolved",
                ],
                cwd=tmp,
                env=dict(env),
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BundleError(
                f"npm did not lock node_framework {spec!r} within {NPM_TIMEOUT_SECONDS} s"
            ) from exc
        made = Path(tmp) / "package-lock.json"
        if result.returncode != 0 or not made.is_file():
            raise BundleError(
                f"npm could not lock node_framework {spec!r}",
                why=result.stderr.strip()[-800:] or f"npm exited with {result.returncode}",
                fix="Check that the version exists and that npm's registry (for a mirror, "
                "the one your .npmrc names) is reachable",
            )
        os.replace(made, lock_path)
