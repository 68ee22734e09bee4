"""Verified downloads: into a temporary file, SHA-256 checked, then renamed into place.

Nothing reaches its final name unless every byte arrived and the checksum
matched, so an interrupted or tampered download never looks like a cache entry.

A URL may carry secrets: a signed URL's query, ``user:password@``. They are used
to fetch (user info as HTTP Basic credentials, sent to that host only) and never
shown or recorded: :func:`pyfn_action.redact.redact_url` is what messages, logs and
records hold, and :func:`url_filename` names cache files from the URL's path alone.

Cache entries shared by concurrent builds are guarded by :func:`cache_lock`, one
lock file per entry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyfn_action.errors import ChecksumMismatch, RuntimeFetchError
from pyfn_action.progress import ProgressFactory, silent
from pyfn_action.redact import is_malformed, redact_url, scrub, url_parts, url_scheme

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60


FETCHED_SCHEMES = ("http", "https", "file")
MAX_FILENAME = 120


def has_scheme(location: str) -> bool:
    """``location`` is written as a URL (``scheme://…``), whether pyfn fetches it or not."""
    return url_scheme(location) is not None


def is_url(location: str) -> bool:
    """``location`` is a URL pyfn downloads (http, https, file)."""
    return (url_scheme(location) or "").lower() in FETCHED_SCHEMES


def url_filename(location: str, default: str = "pypy-archive") -> str:
    """A safe cache file name from the last segment of ``location``'s path.

    Query and fragment are never part of it; characters other than letters,
    digits and ``._+-`` become ``_``; no leading dot; at most 120 characters
    (a longer name keeps its start and its end, where the suffix is).
    """
    parts = url_parts(location)
    path = parts[3] if parts is not None else location
    name = path.rstrip("/").rpartition("/")[2]
    if parts is not None:
        name = urllib.parse.unquote(name)
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".")
    if not name.strip("_."):
        return default
    if len(name) > MAX_FILENAME:
        half = MAX_FILENAME // 2
        name = f"{name[:half]}_{name[-(MAX_FILENAME - half - 1) :]}"
    return name


@contextmanager
def cache_lock(path: Path, *, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path``, a lock file next to a cache entry.

    Concurrent builds sharing a cache take the lock of an entry before they look
    at it, so one builds it while the others wait and then find it there. The
    holder deletes the lock file before letting go, so a cache keeps no lock
    files; a waiter that then holds a deleted file's lock sees that the path no
    longer names it and takes the lock again. The kernel drops a lock with its
    process, however that ends. A cache where the lock file cannot be made
    (read-only) is used without it.
    """
    fd = _acquire(path, what)
    try:
        yield
    finally:
        if fd is not None:
            with contextlib.suppress(OSError):
                path.unlink()  # still held: whoever waits on this file will retry
            os.close(fd)


def _acquire(path: Path, what: str) -> int | None:
    waited = False
    while True:  # again only when the holder deleted the file we waited on
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            log.debug("cannot lock %s (%s): going on without the lock", path, exc)
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waited:
                    log.info("waiting for another pyfn that is preparing %s", what)
                    waited = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            held, current = os.fstat(fd), os.stat(path)
            if (held.st_dev, held.st_ino) == (current.st_dev, current.st_ino):
                return fd
        except FileNotFoundError:
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


# A file's times move in the kernel's coarse ticks (milliseconds), so a change made in
# the same tick as the last one leaves them as they were. A result about a file's bytes
# is kept by the file's identity (path, size, times, inode) only once its change time is
# older than this: any later change then gets another change time (as git's index
# treats "racily clean" files).
SETTLED_SECONDS = 2.0


def file_identity(st: os.stat_result) -> list[int]:
    """A file as the kernel describes it: type and mode, size, modification and change
    times (ns), inode and device. Its bytes cannot change without the change time
    moving (once :func:`settled`); a copy elsewhere (a restored cache) has another."""
    return [st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]


def settled(st: os.stat_result) -> bool:
    """Whether a file's identity may stand for its bytes from now on (see SETTLED_SECONDS)."""
    return time.time() - st.st_ctime_ns / 1e9 > SETTLED_SECONDS


def replace_file(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path`` and rename it into place, so
    ``path`` is never half-written; the temporary is removed if anything fails (the
    OSError is raised)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    sha256: str | None,
    *,
    progress: ProgressFactory = silent,
) -> Path:
    """Download ``url`` to ``dest``, verifying ``sha256``; return ``dest``. ``None``
    takes the file as it comes (a package index that publishes no checksum).

    The bytes go to a temporary file beside ``dest``; it is renamed to ``dest``
    only when complete and verified, and removed on any failure.
    """
    shown = redact_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _copy_url(url, out, progress, label=dest.name)
        if sha256 is not None and got != sha256:
            raise ChecksumMismatch(
                f"Checksum mismatch for {shown}",
                why=f"expected SHA-256 {sha256}, got {got}; the download is corrupt "
                "or the file is not the one that was pinned",
                fix="Nothing was cached. Check the URL and the pinned SHA-256 "
                "(or the mirror), then try again",
            )
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _opener(url: str) -> tuple[str, urllib.request.OpenerDirector]:
    """The URL to request (without user info) and an opener for it.

    User info becomes HTTP Basic credentials for that scheme, host and port only:
    the handler adds them as an unredirected header, so a redirect elsewhere does
    not carry them.
    """
    parts = urllib.parse.urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, urllib.request.build_opener()
    bare = urllib.parse.urlunsplit(parts._replace(netloc=hostport))
    user, _, password = userinfo.partition(":")
    manager = urllib.request.HTTPPasswordMgrWithPriorAuth()
    manager.add_password(
        None,
        f"{parts.scheme}://{hostport}/",
        urllib.parse.unquote(user),
        urllib.parse.unquote(password),
        is_authenticated=True,
    )
    return bare, urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(manager))


def _copy_url(url: str, out: object, progress: ProgressFactory, *, label: str) -> str:
    digest = hashlib.sha256()
    shown = redact_url(url)
    if is_malformed(url):
        raise RuntimeFetchError(
            f"Cannot download {shown}: the URL is malformed",
            why="it holds a space or control character, or its host part is not a host "
            "name or address with an optional port (a password holding '/', '?', '#' or "
            "'@' must be percent-encoded)",
            fix="Check the URL (or PYFN_PYPY_MIRROR)",
        )
    try:
        bare, opener = _opener(url)
        request = urllib.request.Request(bare, headers={"User-Agent": "pyfn-action"})
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = progress(f"Downloading {label}", total)
            received = 0
            try:
                while True:
                    block = response.read(CHUNK)
                    if not block:
                        break
                    digest.update(block)
                    out.write(block)  # type: ignore[attr-defined]
                    received += len(block)
                    bar.advance(len(block))
            finally:
                bar.close()
            if total is not None and received != total:
                raise http.client.IncompleteRead(b"", total - received)
    except http.client.IncompleteRead as exc:
        raise RuntimeFetchError(
            f"Download of {shown} was cut off",
            why=f"the connection closed {exc.expected} bytes before the end",
            fix="Nothing was cached. Try again; if it keeps happening, "
            "set PYFN_PYPY_MIRROR to a closer mirror",
        ) from None
    except urllib.error.HTTPError as exc:
        raise RuntimeFetchError(
            f"Download of {shown} failed with HTTP {exc.code} {scrub(str(exc.reason), url)}",
            fix="Check the URL (or PYFN_PYPY_MIRROR) and its credentials; pyfn runtime pack "
            "can build an archive from an installed PyPy when the host is unreachable",
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RuntimeFetchError(
            f"Cannot download {shown}",
            why=scrub(str(reason), url),
            fix="Check the network or set PYFN_PYPY_MIRROR to a reachable mirror; "
            "offline, pack an installed PyPy with `pyfn runtime pack` and pass "
            "--pypy-archive with --pypy-sha256",
        ) from None
    except (http.client.HTTPException, ValueError, OverflowError) as exc:
        # A bad port or host name, a garbled answer: the exception may quote the URL.
        raise RuntimeFetchError(
            f"Cannot download {shown}",
            why=scrub(str(exc) or type(exc).__name__, url),
            fix="Check the URL (or PYFN_PYPY_MIRROR)",
        ) from None
    return digest.hexdigest()


def copy_verified(source: Path, dest: Path, sha256: str) -> Path:
    """Copy a local file into ``dest`` through a temporary file, verifying it."""
    got = sha256_file(source)
    if got != sha256:
        raise ChecksumMismatch(
            f"Checksum mismatch for {source}",
            why=f"expected SHA-256 {sha256}, got {got}",
            fix="Pass the SHA-256 that `pyfn runtime pack` printed for this archive "
            "(or `sha256sum` computes), or the archive that matches it",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
        if sha256_file(tmp) != sha256:
            raise ChecksumMismatch(f"{source} changed while it was being copied")
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)
