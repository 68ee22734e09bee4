"""Resolve a PyPy runtime: official build (download + SHA-256) or a given archive, cached.

Cache layout, keyed by the archive's SHA-256 so nothing unverified can hide
behind a familiar name::

    <cache>/archives/<sha256>/<file name>     verified archive
    <cache>/runtimes/<sha256>/                extracted tree
    <cache>/runtimes/<sha256>.json            written last: the entry is complete
    <cache>/runtimes/<sha256>.lock            there while a build looks at or makes the entry

An entry is used only when its record exists and every file it lists is there
with its recorded size; anything else is removed and rebuilt from a verified
archive. Builds sharing the cache take the entry's lock first: one fetches and
extracts, the others wait and find it there; whoever holds the lock also clears
what a killed build left (partial downloads, half-extracted trees). An archive
refused as unsafe is deleted from the cache.

What is recorded or shown of where the runtime came from (``Runtime.source``,
messages) is the URL without user info, query or fragment; cache files are
named from the URL's path.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from pyfn_action import fetch
from pyfn_action.errors import ConfigError, RuntimeFetchError, UnsafeArchive
from pyfn_action.progress import ProgressFactory, silent
from pyfn_action.redact import redact_url
from pyfn_action.runtime import archive
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)

OFFICIAL_BASE = "https://downloads.python.org/pypy"
_ARCH_SUFFIX = {"x86_64": "linux64", "aarch64": "aarch64"}
_FILE = re.compile(
    r"^pypy(?P<python>3\.\d+)-v(?P<pypy>\d+\.\d+\.\d+)-(?P<suffix>linux64|aarch64)\.tar\.bz2$"
)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SOABI = re.compile(r"\.pypy(?P<py>\d)(?P<minor>\d+)-pp(?P<pp>\d+)-(?P<arch>x86_64|aarch64)-linux")


@dataclass(frozen=True)
class PyPyBuild:
    """One official PyPy build from the packaged manifest."""

    python: str
    pypy: str
    arch: str
    filename: str
    sha256: str

    def url(self, base: str = OFFICIAL_BASE) -> str:
        """This build's file under ``base``; a query on ``base`` (a mirror's token) is kept."""
        base, sep, query = base.split("#", 1)[0].partition("?")
        return f"{base.rstrip('/')}/{self.filename}{sep}{query}"


@dataclass(frozen=True)
class RuntimeRequest:
    """What the configuration asks for."""

    runtime: str = "pypy3.11"
    arch: str = "x86_64"
    pypy_version: str | None = None
    archive: str | None = None
    sha256: str | None = None
    mirror: str | None = None


@dataclass(frozen=True)
class Runtime:
    """An extracted, verified PyPy in the official layout."""

    root: Path
    python_version: str  # "3.11"
    pypy_version: str | None  # "7.3.19", when the archive says
    arch: str
    pp_tag: str  # "73" for PyPy 7.3.x
    sha256: str
    source: str  # where it came from: a path, or a URL without user info or query

    @property
    def executable(self) -> Path:
        return self.root / "bin" / f"pypy{self.python_version}"

    @property
    def stdlib(self) -> Path:
        return self.root / "lib" / f"pypy{self.python_version}"

    @property
    def nodot(self) -> str:
        return self.python_version.replace(".", "")

    def target(self, glibc: tuple[int, int]) -> Target:
        """This PyPy on a platform with ``glibc``: what wheels it loads."""
        return Target(
            python_version=self.python_version, pp_tag=self.pp_tag, arch=self.arch, glibc=glibc
        )


def load_manifest() -> tuple[PyPyBuild, ...]:
    """Parse the packaged list of official builds, validating every line."""
    text = resources.files("pyfn_action").joinpath("data/pypy-builds.txt").read_text()
    builds = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        match = _FILE.match(fields[-1]) if len(fields) == 2 else None
        if match is None or not re.fullmatch(r"[0-9a-f]{64}", fields[0]):
            raise RuntimeError(f"pypy-builds.txt line {lineno} is malformed: {line!r}")
        arch = next(a for a, s in _ARCH_SUFFIX.items() if s == match["suffix"])
        builds.append(
            PyPyBuild(
                python=match["python"],
                pypy=match["pypy"],
                arch=arch,
                filename=fields[1],
                sha256=fields[0],
            )
        )
    return tuple(builds)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def select_build(request: RuntimeRequest, builds: tuple[PyPyBuild, ...]) -> PyPyBuild:
    """The newest official build of the requested line and arch (or the pinned release)."""
    python = request.runtime.removeprefix("pypy")
    line = [b for b in builds if b.python == python and b.arch == request.arch]
    if request.pypy_version:
        line = [b for b in line if b.pypy == request.pypy_version]
    if not line:
        known = sorted(
            {f"{b.pypy}" for b in builds if b.python == python and b.arch == request.arch},
            key=_version_key,
        )
        raise ConfigError(
            f"No official {request.runtime} build for {request.arch}"
            + (f" at PyPy {request.pypy_version}" if request.pypy_version else ""),
            why=f"known releases: {', '.join(known) or 'none'}",
            fix="Pick a listed pypy_version, or pass --pypy-archive with --pypy-sha256",
        )
    return max(line, key=lambda b: _version_key(b.pypy))


def resolve_runtime(
    request: RuntimeRequest,
    cache_dir: Path,
    *,
    progress: ProgressFactory = silent,
) -> Runtime:
    """Return a verified, extracted runtime, downloading and caching it if needed."""
    if request.archive:
        if not request.sha256:
            raise ConfigError("--pypy-archive needs --pypy-sha256")
        sha256, location = request.sha256.lower(), request.archive
        filename = fetch.url_filename(location)
    else:
        build = select_build(request, load_manifest())
        sha256, filename = build.sha256, build.filename
        location = build.url(request.mirror or OFFICIAL_BASE)
    if not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise ConfigError(
            f"{sha256!r} is not a SHA-256",
            fix="Pass the 64 hex digits that `pyfn runtime pack` or `sha256sum` print",
        )
    source = redact_url(location)
    try:
        with fetch.cache_lock(_lock_path(cache_dir, sha256), what=f"the runtime {filename}"):
            cached = _load_entry(cache_dir, sha256)
            if cached is not None:
                log.debug("using cached runtime %s", cached.root)
                return cached
            archive_path = _cached_archive(cache_dir, sha256, location, filename, progress)
            try:
                return _extract_entry(cache_dir, sha256, archive_path, source)
            except UnsafeArchive:
                archive_path.unlink(missing_ok=True)  # verified, but never to be used
                with contextlib.suppress(OSError):
                    archive_path.parent.rmdir()
                raise
    except OSError as exc:
        raise RuntimeFetchError(
            f"Cannot prepare the runtime in the cache {cache_dir}",
            why=str(exc),
            fix="Check that the cache directory (PYFN_CACHE_DIR) is writable and has free "
            "space, or point PYFN_CACHE_DIR elsewhere",
        ) from exc


def _lock_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "runtimes" / f"{sha256}.lock"


def _cached_archive(
    cache_dir: Path, sha256: str, location: str, filename: str, progress: ProgressFactory
) -> Path:
    slot = cache_dir / "archives" / sha256
    dest = slot / filename
    for stale in slot.glob(".*.part"):  # a download cut short by a killed build
        stale.unlink(missing_ok=True)
    if dest.is_file():
        if fetch.sha256_file(dest) == sha256:
            return dest
        log.warning("cached archive %s is corrupt; fetching it again", dest)
        dest.unlink()
    if fetch.is_url(location):
        return fetch.download(location, dest, sha256, progress=progress)
    if fetch.has_scheme(location):
        raise RuntimeFetchError(
            f"Cannot fetch the PyPy archive {redact_url(location)}",
            why=f"pyfn downloads {', '.join(fetch.FETCHED_SCHEMES)} URLs only",
            fix="Pass an https:// URL or a local path of a PyPy archive",
        )
    source = Path(location).expanduser()
    if not source.is_file():
        raise RuntimeFetchError(
            f"PyPy archive {location} does not exist",
            fix="Pass the path or URL of a PyPy archive (pyfn runtime pack makes one)",
        )
    try:
        return fetch.copy_verified(source, dest, sha256)
    except PermissionError as exc:
        raise RuntimeFetchError(
            f"Cannot read the PyPy archive {source}",
            why=exc.strerror or str(exc),
            fix="Check the file's permissions",
        ) from exc


def _record_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / "runtimes" / f"{sha256}.json"


def cached_runtimes(cache_dir: Path) -> list[Runtime]:
    """Every complete runtime in the cache (their records are written last)."""
    found = []
    for record in sorted((cache_dir / "runtimes").glob("*.json")):
        sha256 = record.stem
        if _SHA256.fullmatch(sha256):
            runtime = _load_entry(cache_dir, sha256)
            if runtime is not None:
                found.append(runtime)
    return found


def local_runtime(path: Path) -> Runtime:
    """A PyPy in the official layout on disk: its root directory, or its ``bin/pypy3.X``."""
    root = path if path.is_dir() else path.parent.parent
    return inspect_tree(root, sha256="local", source=str(root), names=(root.name,))


def _load_entry(cache_dir: Path, sha256: str) -> Runtime | None:
    record = _record_path(cache_dir, sha256)
    root = cache_dir / "runtimes" / sha256
    try:
        data = json.loads(record.read_text())
        files: dict[str, int] = data["files"]
        for rel, size in files.items():
            path = root / rel
            if path.is_symlink():
                continue
            if path.stat().st_size != size:
                raise ValueError(f"{rel} has the wrong size")
        return Runtime(
            root=root,
            python_version=data["python_version"],
            pypy_version=data["pypy_version"],
            arch=data["arch"],
            pp_tag=data["pp_tag"],
            sha256=sha256,
            source=redact_url(data["source"]),  # older records kept the whole URL
        )
    except FileNotFoundError:
        if record.exists() or root.exists():
            log.warning("runtime cache entry %s is incomplete; rebuilding it", root)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("runtime cache entry %s is corrupt (%s); rebuilding it", root, exc)
    record.unlink(missing_ok=True)
    shutil.rmtree(root, ignore_errors=True)
    return None


def _extract_entry(cache_dir: Path, sha256: str, archive_path: Path, source: str) -> Runtime:
    runtimes = cache_dir / "runtimes"
    runtimes.mkdir(parents=True, exist_ok=True)
    for stale in runtimes.glob(f".{sha256}.*"):  # an extraction cut short by a killed build
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sha256}.", dir=runtimes))
    tree = tmp / "tree"
    try:
        top = archive.extract(archive_path, tree)
        runtime = inspect_tree(
            tree, sha256=sha256, source=source, names=(top or "", archive_path.name, source)
        )
        # Bytecode is left out: PyPy rewrites stale .pyc files of its bootstrap
        # modules on start, whatever -B says, and they derive from the sources.
        files = {
            str(p.relative_to(tree)): p.stat().st_size
            for p in sorted(tree.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.suffix != ".pyc"
        }
        root = runtimes / sha256
        shutil.rmtree(root, ignore_errors=True)  # a leftover without its record (we hold the lock)
        os.replace(tree, root)
        record = {
            "python_version": runtime.python_version,
            "pypy_version": runtime.pypy_version,
            "arch": runtime.arch,
            "pp_tag": runtime.pp_tag,
            "source": source,
            "files": files,
        }
        tmp_record = tmp / "record.json"
        tmp_record.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(tmp_record, _record_path(cache_dir, sha256))
        return Runtime(
            root=root,
            python_version=runtime.python_version,
            pypy_version=runtime.pypy_version,
            arch=runtime.arch,
            pp_tag=runtime.pp_tag,
            sha256=sha256,
            source=source,
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def inspect_tree(tree: Path, *, sha256: str, source: str, names: tuple[str, ...]) -> Runtime:
    """Read the Python version, PyPy ABI and arch from an extracted runtime tree.

    The PyPy release comes from the first of ``names`` (top directory, file
    name, URL) that carries one in the official ``-vX.Y.Z`` form.
    """
    hint = names[1] if len(names) > 1 else source
    stdlibs = sorted(p.name for p in (tree / "lib").glob("pypy3.*") if p.is_dir())
    if len(stdlibs) != 1:
        raise RuntimeFetchError(
            f"{hint} is not a PyPy 3 build in the official layout",
            why=f"expected exactly one lib/pypy3.X directory, found {stdlibs or 'none'}",
            fix="Use an official PyPy build or pack one with `pyfn runtime pack`",
        )
    python_version = stdlibs[0].removeprefix("pypy")
    executable = tree / "bin" / f"pypy{python_version}"
    if not executable.is_file():
        raise RuntimeFetchError(
            f"{hint} has no bin/pypy{python_version}",
            fix="Use an official PyPy build or pack one with `pyfn runtime pack`",
        )
    soabi = next(
        (m for p in (tree / "lib" / stdlibs[0]).rglob("*.so") if (m := _SOABI.search(p.name))),
        None,
    )
    if soabi is None:
        raise RuntimeFetchError(
            f"{hint}: cannot tell the PyPy ABI",
            why=f"no compiled extension named *.pypy{python_version.replace('.', '')}-ppXX-*.so "
            "in its standard library",
            fix="Use an official PyPy build or pack one with `pyfn runtime pack`",
        )
    versions = (re.search(r"-v(\d+\.\d+\.\d+)", name) for name in names)
    pypy_version = next((m.group(1) for m in versions if m), None)
    return Runtime(
        root=tree,
        python_version=python_version,
        pypy_version=pypy_version,
        arch=soabi["arch"],
        pp_tag=soabi["pp"],
        sha256=sha256,
        source=source,
    )
