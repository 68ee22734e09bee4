"""Serve a bundle locally exactly as Cloud Functions' Node.js runtime does.

The bundle is unpacked (modes kept, as Cloud Functions' extractor keeps them)
into the cache, keyed by its SHA-256 and reused while every file still matches the
bundle (see :func:`served_copy`), and its ``index.js`` runs under the real Node.js
Functions Framework: the version the bundle's ``package.json`` declares, installed
from the bundle's own lockfile with ``npm ci`` (as the platform's build installs
it), once per declaration into the cache. The framework runs in its own process
group so that stopping it stops every PyPy worker with it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO

from pyfn_action.bundle import nodepackage
from pyfn_action.bundle.nodepackage import NodePackage
from pyfn_action.errors import ServeError
from pyfn_action.fetch import cache_lock, sha256_file
from pyfn_action.report import manifest
from pyfn_action.runtime import noderuntimes

log = logging.getLogger(__name__)

NPM_TIMEOUT_SECONDS = 600
NODE_VERSION_TIMEOUT_SECONDS = 30
_BUILD_ONE = "Build one with pyfn build"
SERVED_KEEP = 4  # unpacked bundles kept in the cache, the most recently served
# The write end of each started framework's watch pipe, by its pid (see start()).
_WATCHED: dict[int, int] = {}


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
    return {"package.json": package.package_json, "package-lock.json": package.lock,
            "serve.js": launcher}  # fmt: skip


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
        log.info("installing the Node.js Functions Framework %s into %s (once)",
                 package.spec, home)  # fmt: skip
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
            "installs. Rebuild it with this pyfn", nodepackage.pinned().spec,
        )  # fmt: skip
        return nodepackage.pinned()
    return package


def node_major(node: str, env: Mapping[str, str]) -> int | None:
    """The major version of the ``node`` binary, or ``None`` if it cannot tell."""
    try:
        out = subprocess.run(
            [node, "--version"], env=dict(env), capture_output=True, text=True,
            timeout=NODE_VERSION_TIMEOUT_SECONDS, check=False,
        ).stdout.strip()  # fmt: skip
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


@dataclass(frozen=True)
class Served:
    """An unpacked bundle ready to serve."""

    root: Path
    manifest: manifest.Manifest
    reused: bool  # an earlier unpacked copy, checked file by file
    cleanup: Path | None  # a private copy, removed when serving ends


@contextlib.contextmanager
def served_copy(bundle: Path, cache_dir: Path) -> Iterator[Served]:
    """An unpacked copy of ``bundle`` to serve, for as long as the context lasts.

    Copies live in ``<cache>/served/<sha256>``, keyed by the bundle's SHA-256. A copy
    is reused only while it matches the bundle exactly: the same files (none missing,
    none added), each of the size, mode and CRC-32 its zip entry records; else it is
    unpacked again, into a temporary directory renamed into place once complete. While
    a copy is served it is held (a shared lock on ``<sha256>.use``): another ``pyfn
    serve`` may share it, and none removes it. A held copy that no longer matches (the
    function wrote into its own directory) is left to its holders, and this one
    unpacks a private copy, removed when it ends; so does a cache it cannot write.
    The ``SERVED_KEEP`` most recently served copies are kept.
    """
    try:
        digest = sha256_file(bundle)
        served, held = _prepare(bundle, cache_dir / "served", digest)
    except (OSError, manifest.ManifestError) as exc:
        raise ServeError(
            f"Cannot unpack {bundle}",
            why=str(exc),
            fix="Check that the bundle and the cache directory are readable and writable",
        ) from exc
    try:
        with contextlib.suppress(OSError):
            _prune(cache_dir / "served", keep=digest)
        yield served
    finally:
        if held is not None:
            os.close(held)  # the lock goes with it
        if served.cleanup is not None:
            shutil.rmtree(served.cleanup, ignore_errors=True)


def _prepare(bundle: Path, base: Path, digest: str) -> tuple[Served, int | None]:
    entry = base / digest
    held = None
    with contextlib.suppress(OSError):
        base.mkdir(parents=True, exist_ok=True)
        held = os.open(base / f"{digest}.use", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    if held is not None:
        try:
            with cache_lock(base / f"{digest}.lock", what="an unpacked bundle"):
                fcntl.flock(held, fcntl.LOCK_SH)  # waits only while a prune removes it
                if (entry / ".complete").is_file() and _matches(bundle, entry / "bundle"):
                    os.utime(entry / ".complete")  # the most recently served
                    return Served(entry / "bundle", manifest.read_tree(entry / "bundle"),
                                  True, None), held  # fmt: skip
                if _alone(held):
                    _unpack_into(bundle, entry)
                    fcntl.flock(held, fcntl.LOCK_SH)
                    return Served(entry / "bundle", manifest.read_tree(entry / "bundle"),
                                  False, None), held  # fmt: skip
        except BaseException:
            os.close(held)
            raise
        os.close(held)
        log.info("the unpacked copy of %s is in use and has changed: serving a copy of its own",
                 bundle)  # fmt: skip
    private = Path(tempfile.mkdtemp(prefix="pyfn-serve-"))
    try:
        return Served(private / "bundle", unpack_bundle(bundle, private / "bundle"),
                      False, private), None  # fmt: skip
    except BaseException:
        shutil.rmtree(private, ignore_errors=True)
        raise


def _alone(fd: int) -> bool:
    """Whether nobody else holds the copy; if so, ``fd`` now holds it exclusively."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _unpack_into(bundle: Path, entry: Path) -> None:
    """Unpack ``bundle`` into ``entry``/bundle: complete, or not there at all."""
    shutil.rmtree(entry, ignore_errors=True)
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name[:16]}-", dir=entry.parent))
    try:
        unpack_bundle(bundle, tmp / "bundle")
        (tmp / ".complete").write_text("ok\n")
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _matches(bundle: Path, root: Path) -> bool:
    """Whether ``root`` holds exactly the files of ``bundle``, byte for byte."""
    try:
        with zipfile.ZipFile(bundle) as zf:
            expected = {i.filename: i for i in zf.infolist() if not i.is_dir()}
        found = set()
        for dirpath, dirs, files in os.walk(root):
            if any(os.path.islink(os.path.join(dirpath, name)) for name in dirs):
                return False  # a link to a directory: never part of a bundle
            for name in files:
                found.add(os.path.relpath(os.path.join(dirpath, name), root))
        if found != set(expected):
            return False
        for name, info in expected.items():
            path = root / name
            st = path.lstat()
            mode = (info.external_attr >> 16) & 0o777 or 0o644
            if not path.is_file() or path.is_symlink() or st.st_size != info.file_size:
                return False
            if st.st_mode & 0o777 != mode or _crc32(path) != info.CRC:
                return False
    except (OSError, zipfile.BadZipFile):
        return False
    return True


def _crc32(path: Path) -> int:
    crc = 0
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            crc = zlib.crc32(block, crc)
    return crc


def _prune(base: Path, *, keep: str) -> None:
    """Remove all but the most recently served copies; never one that is held. (The
    empty ``.use`` files stay: removing one could part two holders of a copy.)"""
    copies = []
    for entry in base.iterdir():
        if entry.name != keep and (entry / ".complete").is_file():
            copies.append(((entry / ".complete").stat().st_mtime, entry))
    for _mtime, entry in sorted(copies, reverse=True)[SERVED_KEEP - 1 :]:
        use = base / f"{entry.name}.use"
        with contextlib.suppress(OSError):
            fd = os.open(use, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            if not _alone(fd):
                os.close(fd)
                continue  # being served
            try:
                (entry / ".complete").unlink()  # never looks complete while it goes
                shutil.rmtree(entry, ignore_errors=True)
            finally:
                os.close(fd)


def start(
    framework: Framework,
    bundle_dir: Path,
    *,
    entry_point: str,
    host: str,
    port: int,
    env: Mapping[str, str],
    output: IO[bytes] | None = None,
    cleanup: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the framework on ``bundle_dir`` in a new process group.

    Its output (the function's logs) goes to ``output``, or to this process's own. The
    framework watches a pipe from this process: when this process ends, however it ends,
    the framework removes ``cleanup`` (the unpacked bundle's directory) and kills its
    own process group.
    """
    child_env = dict(env)
    watch_read, watch_write = os.pipe()
    child_env.update(
        PYFN_SERVE_HOST=host,
        PYFN_SERVE_WATCH_FD=str(watch_read),
        NODE_ENV=child_env.get("NODE_ENV", "development"),
        # As pyfn deploy sets it: index.js (and its workers) before the framework.
        NODE_OPTIONS=nodepackage.node_options(child_env.get("NODE_OPTIONS")),
        # Where index.js, loaded first, finds the framework to register its function
        # with, as it finds the one the platform installed next to it.
        NODE_PATH=os.pathsep.join(
            p for p in (str(framework.home / "node_modules"), child_env.get("NODE_PATH")) if p
        ),
    )
    # Only the directory named here is ever removed: never one the caller's environment
    # happened to name.
    child_env.pop("PYFN_SERVE_CLEANUP", None)
    if cleanup is not None:
        child_env["PYFN_SERVE_CLEANUP"] = str(cleanup)
    argv = [
        framework.node,
        str(framework.launcher),
        f"--target={entry_point}",
        f"--source={bundle_dir}",
        f"--port={port}",
        "--signature-type=http",
    ]
    log.debug("starting %s", " ".join(argv))
    try:
        process = subprocess.Popen(
            argv,
            cwd=bundle_dir,
            env=child_env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
            pass_fds=(watch_read,),
        )
    except BaseException:
        os.close(watch_write)
        raise
    finally:
        os.close(watch_read)
    _WATCHED[process.pid] = watch_write  # kept open (never inherited) while it runs
    return process


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
    code = process.wait() if code is None else code
    watch = _WATCHED.pop(process.pid, None)
    if watch is not None:
        os.close(watch)
    return code
