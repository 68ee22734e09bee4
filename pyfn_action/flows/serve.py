"""Serve a bundle locally exactly as Cloud Functions' Node.js runtime does.

The bundle is unpacked (modes kept, as Cloud Functions' extractor keeps them)
into a temporary directory and its ``index.js`` runs under the real Node.js
Functions Framework, installed once from the pinned lockfile into the cache.
The framework runs in its own process group so that stopping it stops every
PyPy worker with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from pyfn_action.errors import ServeError
from pyfn_action.fetch import cache_lock
from pyfn_action.report import manifest

log = logging.getLogger(__name__)

NPM_TIMEOUT_SECONDS = 600
_NODE_FILES = ("package.json", "package-lock.json", "serve.js")
_BUILD_ONE = "Build one with pyfn build"


@dataclass(frozen=True)
class Framework:
    """An installed Node.js Functions Framework and the launcher that runs it."""

    home: Path
    node: str

    @property
    def launcher(self) -> Path:
        return self.home / "serve.js"


def _which(name: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(name, path=env.get("PATH"))


def _node_files() -> dict[str, bytes]:
    node = resources.files("pyfn_action").joinpath("node")
    return {name: node.joinpath(name).read_bytes() for name in _NODE_FILES}


def framework_home(cache_dir: Path) -> Path:
    """Where the pinned framework lives: keyed by the lockfile and launcher it came from."""
    digest = hashlib.sha256()
    for name, data in sorted(_node_files().items()):
        digest.update(name.encode() + b"\0" + data + b"\0")
    return cache_dir / "node-functions-framework" / digest.hexdigest()[:16]


def ensure_framework(cache_dir: Path, env: Mapping[str, str]) -> Framework:
    """The pinned Node.js Functions Framework, installed with ``npm ci`` on first use."""
    node = _which("node", env)
    if node is None:
        raise ServeError(
            "Node.js is not installed (no `node` on PATH)",
            why="pyfn serve runs the bundle under the Node.js Functions Framework, "
            "as Cloud Functions does",
            fix="Install Node.js 18 or newer (on Debian: apt-get install nodejs npm)",
        )
    home = framework_home(cache_dir)
    if _installed(home):
        return Framework(home, node)
    npm = _which("npm", env)
    if npm is None:
        raise ServeError(
            "npm is not installed (no `npm` on PATH)",
            why="the Node.js Functions Framework is installed once into pyfn's cache with npm",
            fix="Install npm (on Debian: apt-get install npm)",
        )
    # One install per version, however many pyfn serve start at once on one cache.
    with cache_lock(home.parent / f"{home.name}.lock", what="the Node.js Functions Framework"):
        if not _installed(home):
            _install(npm, home, env)
    return Framework(home, node)


def _installed(home: Path) -> bool:
    main = home / "node_modules" / "@google-cloud" / "functions-framework" / "build" / "src"
    return (home / ".complete").is_file() and (main / "main.js").is_file()


def _install(npm: str, home: Path, env: Mapping[str, str]) -> None:
    """``npm ci`` of the pinned lockfile into a temporary directory, renamed into place."""
    shutil.rmtree(home, ignore_errors=True)  # an incomplete install is never used
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".install-", dir=home.parent))
    try:
        for name, data in _node_files().items():
            (tmp / name).write_bytes(data)
        log.info("installing the Node.js Functions Framework into %s (once)", home)
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
        (tmp / ".complete").write_text("ok\n")
        os.replace(tmp, home)
    except subprocess.TimeoutExpired as exc:
        raise ServeError(f"npm did not finish within {NPM_TIMEOUT_SECONDS} s") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def unpack_bundle(bundle: Path, dest: Path) -> manifest.Manifest:
    """Extract ``bundle`` into ``dest`` with the Unix modes its entries carry, and
    return its manifest."""
    root = dest.resolve()
    try:
        with zipfile.ZipFile(bundle) as zf:
            for info in zf.infolist():
                target = (dest / info.filename).resolve()
                if not target.is_relative_to(root) or info.filename.startswith("/"):
                    raise ServeError(
                        f"{bundle} has an entry outside its root: {info.filename!r}",
                        fix="Rebuild it with pyfn build",
                    )
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                mode = (info.external_attr >> 16) & 0o777
                target.chmod(mode or 0o644)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ServeError(
            f"Cannot unpack {bundle}", why=str(exc), fix="Rebuild it with pyfn build"
        ) from exc
    if not (dest / "index.js").is_file():
        raise ServeError(f"{bundle} is not a pyfn bundle (no index.js)", fix=_BUILD_ONE)
    try:
        return manifest.read_tree(dest)
    except (OSError, manifest.ManifestError) as exc:
        raise ServeError(f"{bundle} is not a pyfn bundle", why=str(exc), fix=_BUILD_ONE) from exc


def start(
    framework: Framework,
    bundle_dir: Path,
    *,
    entry_point: str,
    host: str,
    port: int,
    env: Mapping[str, str],
    output: IO[bytes] | None = None,
) -> subprocess.Popen[bytes]:
    """Start the framework on ``bundle_dir`` in a new process group.

    Its output (the function's logs) goes to ``output``, or to this process's own.
    """
    child_env = dict(env)
    child_env.update(
        PYFN_SERVE_HOST=host,
        NODE_ENV=child_env.get("NODE_ENV", "development"),
    )
    argv = [
        framework.node,
        str(framework.launcher),
        f"--target={entry_point}",
        f"--source={bundle_dir}",
        f"--port={port}",
        "--signature-type=http",
    ]
    log.debug("starting %s", " ".join(argv))
    return subprocess.Popen(
        argv,
        cwd=bundle_dir,
        env=child_env,
        stdout=output,
        stderr=subprocess.STDOUT if output is not None else None,
        start_new_session=True,
    )


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> int:
    """Stop the framework's whole process group: TERM, then KILL what is left."""
    code = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        code = process.wait(timeout=grace_seconds)
    # Node itself if it did not stop, and any worker still in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return process.wait() if code is None else code
