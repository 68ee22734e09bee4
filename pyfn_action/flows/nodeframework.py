"""The Node.js Functions Framework that serves bundles locally, as Cloud Functions'
Node.js runtime serves them: the version a bundle's ``package.json`` declares,
installed from the bundle's own lockfile with ``npm ci`` (as the platform's build
installs it), once per declaration into the cache, beside pyfn's launcher.
"""

from __future__ import annotations

import datetime as dt
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

from pyfn_action.bundle import nodepackage
from pyfn_action.bundle.nodepackage import NodePackage
from pyfn_action.errors import ServeError
from pyfn_action.fetch import cache_lock
from pyfn_action.runtime import noderuntimes

log = logging.getLogger(__name__)

NPM_TIMEOUT_SECONDS = 600
NODE_VERSION_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Framework:
    """An installed Node.js Functions Framework and the launcher that runs it."""

    home: Path
    node: str
    package: NodePackage

    @property
    def launcher(self) -> Path:
        return self.home / "serve.js"


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH"))


def _node_files(package: NodePackage) -> dict[str, bytes]:
    """What ``npm ci`` runs on: the bundle's declaration, and pyfn's launcher."""
    launcher = resources.files("pyfn_action").joinpath("node", "serve.js").read_bytes()
    return {
        "package.json": package.package_json,
        "package-lock.json": package.lock,
        "serve.js": launcher,
    }


def framework_home(cache_dir: Path, package: NodePackage | None = None) -> Path:
    """Where a declared framework lives (default: pyfn's pinned one): keyed by the
    declaration, its lockfile and the launcher."""
    digest = hashlib.sha256()
    for name, data in sorted(_node_files(package or nodepackage.pinned()).items()):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return cache_dir / "node-functions-framework" / digest.hexdigest()[:16]


def ensure_framework(
    cache_dir: Path, env: Mapping[str, str], package: NodePackage | None = None
) -> Framework:
    """The Node.js Functions Framework ``package`` declares (default: pyfn's pinned one),
    installed with ``npm ci`` on first use."""
    package = package or nodepackage.pinned()
    node = _which("node", env)
    if node is None:
        raise ServeError(
            "Node.js is not installed (no `node` on PATH)",
            why="pyfn serve runs the bundle under the Node.js Functions Framework, "
            "as Cloud Functions does",
            fix="Install Node.js 18 or newer (on Debian: apt-get install nodejs npm)",
        )
    home = framework_home(cache_dir, package)
    if _installed(home, package):
        return Framework(home, node, package)
    npm = _which("npm", env)
    if npm is None:
        raise ServeError(
            "npm is not installed (no `npm` on PATH)",
            why="the Node.js Functions Framework is installed once into pyfn's cache with npm",
            fix="Install npm (on Debian: apt-get install npm)",
        )
    # One install per version, however many pyfn serve start at once on one cache.
    with cache_lock(home.parent / f"{home.name}.lock", what="the Node.js Functions Framework"):
        if not _installed(home, package):
            _install(npm, home, package, env)
    return Framework(home, node, package)


def _package_dir(home: Path) -> Path:
    return home / "node_modules" / nodepackage.PACKAGE


def installed_version(home: Path) -> tuple[str, str] | None:
    """(name, version) of the framework installed in ``home``, if any."""
    try:
        data = json.loads((_package_dir(home) / "package.json").read_bytes())
        return str(data["name"]), str(data["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _installed(home: Path, package: NodePackage) -> bool:
    main = _package_dir(home) / "build" / "src" / "main.js"
    return (
        (home / ".complete").is_file()
        and main.is_file()
        and installed_version(home) == (package.name, package.version)
    )


def _install(npm: str, home: Path, package: NodePackage, env: Mapping[str, str]) -> None:
    """``npm ci`` of the declaration into a temporary directory, renamed into place once
    it holds exactly the declared version."""
    shutil.rmtree(home, ignore_errors=True)  # an incomplete install is never used
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=home.parent))
    try:
        for name, data in _node_files(package).items():
            (tmp / name).write_bytes(data)
        log.info("installing the Node.js Functions Framework %s into %s (once)", package.spec, home)
        result = subprocess.run(
            [npm, "ci", "--omit=dev", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=tmp,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_SECONDS,
            check=False,
        )
        if result.returncode != 0:
            raise ServeError(
                "npm could not install the Node.js Functions Framework",
                why=result.stderr.strip()[-800:] or f"npm exited with {result.returncode}",
                fix="Check that the npm registry is reachable, then run pyfn serve again",
            )
        got = installed_version(tmp)
        if got != (package.name, package.version):
            raise ServeError(
                f"npm ci did not install the declared {nodepackage.PACKAGE} {package.spec}",
                why=f"it installed {got[0]} {got[1]}" if got else "it installed no framework",
                fix="Rebuild the bundle with pyfn build",
            )
        (tmp / ".complete").write_text("ok\n")
        os.replace(tmp, home)
    except subprocess.TimeoutExpired as exc:
        raise ServeError(f"npm did not finish within {NPM_TIMEOUT_SECONDS} s") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def declared_framework(bundle_dir: Path) -> NodePackage:
    """The framework an unpacked bundle declares; pyfn's pinned one, with a warning, for a
    bundle that declares none (built by an older pyfn)."""
    package = nodepackage.read_tree(bundle_dir)
    if package is None:
        log.warning(
            "the bundle declares no Node.js Functions Framework (an older pyfn built it): "
            "serving it with %s; deployed, it would run whatever version Cloud Functions "
            "installs. Rebuild it with this pyfn",
            nodepackage.pinned().spec,
        )
        return nodepackage.pinned()
    return package


def node_major(node: str, env: Mapping[str, str]) -> int | None:
    """The major version of the ``node`` binary, or ``None`` if it cannot tell."""
    try:
        out = subprocess.run(
            [node, "--version"],
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=NODE_VERSION_TIMEOUT_SECONDS,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    major = out.removeprefix("v").split(".")[0]
    return int(major) if major.isdigit() else None


def runtime_mismatch(
    framework: Framework, node_runtime: str, gen: int, on: dt.date, env: Mapping[str, str]
) -> str:
    """A warning when the local Node.js is not the major version the deploy runs on
    (``node_runtime``, such as ``nodejs22``); ``""`` when they agree or it cannot tell.
    It suggests deploying on the local version only where Cloud Functions still
    takes that runtime for generation ``gen`` on day ``on``."""
    local = node_major(framework.node, env)
    wanted = node_runtime.removeprefix("nodejs")
    if local is None or not wanted.isdigit() or int(wanted) == local:
        return ""
    said = (
        f"the local Node.js is {local}, but the function is deployed on {node_runtime}: "
        f"what is served here may behave differently. Install Node.js {wanted}"
    )
    runtime = noderuntimes.calendar().get(f"nodejs{local}")
    if runtime is None or gen not in runtime.generations or runtime.state(on) != "supported":
        return said
    return f'{said}, or set node_runtime = "nodejs{local}" to deploy what you serve'
