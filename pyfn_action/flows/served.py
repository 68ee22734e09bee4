"""Unpacked copies of bundles, to serve: each unpacked (modes kept, as Cloud
Functions' extractor keeps them) into the cache, keyed by its SHA-256 and reused
while every file still matches the bundle (see :func:`served_copy`); the most
recently served are kept, the rest pruned.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.errors import ServeError
from pyfn_action.fetch import cache_lock, sha256_file
from pyfn_action.report import manifest

log = logging.getLogger(__name__)

_BUILD_ONE = "Build one with pyfn build"
SERVED_KEEP = 4  # unpacked bundles kept in the cache, the most recently served


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
                    return Served(
                        root=entry / "bundle",
                        manifest=manifest.read_tree(entry / "bundle"),
                        reused=True,
                        cleanup=None,
                    ), held
                if _alone(held):
                    _unpack_into(bundle, entry)
                    fcntl.flock(held, fcntl.LOCK_SH)
                    return Served(
                        root=entry / "bundle",
                        manifest=manifest.read_tree(entry / "bundle"),
                        reused=False,
                        cleanup=None,
                    ), held
        except BaseException:
            os.close(held)
            raise
        os.close(held)
        log.info(
            "the unpacked copy of %s is in use and has changed: serving a copy of its own", bundle
        )
    private = Path(tempfile.mkdtemp(prefix="pyfn-serve-"))
    try:
        return Served(
            root=private / "bundle",
            manifest=unpack_bundle(bundle, private / "bundle"),
            reused=False,
            cleanup=private,
        ), None
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
