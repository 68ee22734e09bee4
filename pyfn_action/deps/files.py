"""The files a lock names, fetched and checked: each by its SHA-256 into pyfn's cache
(``<cache>/files/<sha256>/<name>``), so a wheel any build fetched is never fetched
again, whichever requirement set names it.

A URL of a configured index or find-links page gets that source's credentials (as
HTTP Basic, for that scheme, host and port only); a ``file:`` URL or a path is copied.
Nothing reaches the cache unless its SHA-256 matched the lock's; a file the index
published without one is fetched into the build's own directory, never cached.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import shutil
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from pyfn_action.deps.sources import Sources, mask_url
from pyfn_action.deps.uvlock import LockedFile
from pyfn_action.errors import PyfnError, RequirementsError
from pyfn_action.fetch import copy_verified, download, sha256_file

log = logging.getLogger(__name__)

PARALLEL = 8  # downloads at once


def fetch_all(
    files: Sequence[LockedFile], into: Path, cache_dir: Path, sources: Sources, base: Path
) -> list[Path]:
    """Each of ``files`` as a file in ``into`` (linked from the cache where it can be);
    ``base`` is where the lock's relative paths start."""
    into.mkdir(parents=True, exist_ok=True)
    if not files:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL, len(files))) as pool:
        jobs = [pool.submit(_fetch, f, into, cache_dir, sources, base) for f in files]
        return [job.result() for job in jobs]


def _fetch(file: LockedFile, into: Path, cache_dir: Path, sources: Sources, base: Path) -> Path:
    if "/" in file.name or file.name in ("", ".", ".."):
        raise RequirementsError(f"The lock names a file {file.name!r} that is not a file name")
    dest = into / file.name
    if file.sha256 is None:
        log.info("%s has no published SHA-256: fetched for this build only", file.name)
        _get(file, dest, None, sources, base)
        return dest
    cached = cache_dir / "files" / file.sha256 / file.name
    if not cached.is_file():
        _get(file, cached, file.sha256, sources, base)
    try:
        os.link(cached, dest)
    except OSError:
        shutil.copyfile(cached, dest)
    return dest


def _get(file: LockedFile, dest: Path, sha256: str | None, sources: Sources, base: Path) -> None:
    location = file.location
    parts = urllib.parse.urlsplit(location)
    try:
        if parts.scheme in ("http", "https"):
            download(with_credentials(location, sources), dest, sha256)
            return
        path = Path(urllib.request.url2pathname(parts.path)) if parts.scheme == "file" else None
        if path is None:
            path = base / location
        copy_verified(path, dest, sha256 or sha256_file(path))
    except RequirementsError:
        raise
    except PyfnError as exc:
        raise RequirementsError(
            f"Cannot fetch {file.name} from {mask_url(location)}",
            why=exc.what if not exc.why else f"{exc.what}: {exc.why}",
            fix="Check that the package index is reachable (index_url, find_links) and "
            "that its files match the hashes it publishes",
        ) from None


def with_credentials(url: str, sources: Sources) -> str:
    """``url`` with the user info of the configured source on its scheme, host and port
    (uv writes a lock's URLs without it), else as it is."""
    parts = urllib.parse.urlsplit(url)
    if "@" in parts.netloc:
        return url
    for source in (sources.index_url, *sources.extra_index_urls, *sources.find_links):
        if not source:
            continue
        theirs = urllib.parse.urlsplit(source)
        userinfo, at, hostport = theirs.netloc.rpartition("@")
        if at and theirs.scheme == parts.scheme and hostport == parts.netloc:
            return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}@{hostport}"))
    return url
