"""Verified downloads: into a temporary file, SHA-256 checked, then renamed into place.

Nothing reaches its final name unless every byte arrived and the checksum
matched, so an interrupted or tampered download never looks like a cache entry.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import ChecksumMismatch, RuntimeFetchError
from .progress import ProgressFactory, silent

log = logging.getLogger(__name__)

CHUNK = 1 << 20
TIMEOUT_SECONDS = 60


def is_url(location: str) -> bool:
    return urllib.parse.urlsplit(location).scheme in ("http", "https", "file")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download(
    url: str,
    dest: Path,
    sha256: str,
    *,
    progress: ProgressFactory = silent,
) -> Path:
    """Download ``url`` to ``dest``, verifying ``sha256``; return ``dest``.

    The bytes go to a temporary file beside ``dest``; it is renamed to ``dest``
    only when complete and verified, and removed on any failure.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            got = _copy_url(url, out, progress)
        if got != sha256:
            raise ChecksumMismatch(
                f"Checksum mismatch for {url}",
                why=f"expected SHA-256 {sha256}, got {got}; the download is corrupt "
                "or the file is not the one that was pinned",
                fix="Nothing was cached. Check the URL and the pinned SHA-256 "
                "(or the mirror), then try again",
            )
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)


def _copy_url(url: str, out: object, progress: ProgressFactory) -> str:
    digest = hashlib.sha256()
    request = urllib.request.Request(url, headers={"User-Agent": "pyfn-action"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            bar = progress(f"Downloading {url.rsplit('/', 1)[-1]}", total)
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
            f"Download of {url} was cut off",
            why=f"the connection closed {exc.expected} bytes before the end",
            fix="Nothing was cached. Try again; if it keeps happening, "
            "set PYFN_PYPY_MIRROR to a closer mirror",
        ) from exc
    except urllib.error.HTTPError as exc:
        raise RuntimeFetchError(
            f"Download of {url} failed with HTTP {exc.code} {exc.reason}",
            fix="Check the URL (or PYFN_PYPY_MIRROR); pyfn runtime pack can build "
            "an archive from an installed PyPy when the host is unreachable",
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise RuntimeFetchError(
            f"Cannot download {url}",
            why=str(reason),
            fix="Check the network or set PYFN_PYPY_MIRROR to a reachable mirror; "
            "offline, pack an installed PyPy with `pyfn runtime pack` and pass "
            "--pypy-archive with --pypy-sha256",
        ) from exc
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
