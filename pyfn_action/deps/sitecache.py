"""Installed requirements, reused while nothing that decides them has changed.

The key covers every input of the install step: the requirement files' bytes
(includes too), the files of the local requirements they name
(:func:`pyfn_action.deps.localreqs.digest`), the extra requirements, the target
(Python, ABI, CPU, glibc), the package sources, the runtime and pyfn itself. A
change to any of them, or ``refresh``, installs afresh. An entry is written
through a temporary directory and its record lands last, so a half-written entry
is never used.

Builds sharing the cache take the entry's lock (``<cache>/site/<key>.lock``)
before they look at it: one installs, the others wait and reuse what it made.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pyfn_action import __version__
from pyfn_action.deps.requirements import Distribution, Installed
from pyfn_action.deps.sources import Sources
from pyfn_action.fetch import cache_lock
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)


def cache_key(
    requirement_files: Sequence[Path],
    extra: Sequence[str],
    target: Target,
    sources: Sources,
    runtime_sha256: str,
    *,
    local: str = "",
    resolver: str = "uv",
) -> str:
    """The entry's key; ``local`` is the digest of the local requirements' files."""
    digest = hashlib.sha256()
    material = {
        "pyfn": __version__,
        "files": [hashlib.sha256(p.read_bytes()).hexdigest() for p in requirement_files],
        "local": local,
        "extra": list(extra),
        "target": [target.python_version, target.abi, target.arch, list(target.glibc)],
        "sources": [sources.index_url, list(sources.extra_index_urls), list(sources.find_links)],
        "runtime": runtime_sha256,
        "resolver": resolver,
    }
    digest.update(json.dumps(material, sort_keys=True).encode())
    return digest.hexdigest()


def installed_site(
    cache_dir: Path,
    key: str,
    install: Callable[[Path], Installed],
    *,
    refresh: bool = False,
) -> Installed:
    """The cached install for ``key``, or ``install(site)`` run now and cached."""
    home = cache_dir / "site" / key
    record = home / "installed.json"
    with cache_lock(home.parent / f"{key}.lock", what="the installed requirements"):
        if not refresh:
            cached = _load(home, record)
            if cached is not None:
                log.info("requirements unchanged: reusing the installed site (%s)", key[:12])
                return cached
        home.parent.mkdir(parents=True, exist_ok=True)
        for stale in home.parent.glob(f".{key}.*"):  # an install cut short by a killed build
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=home.parent))
        try:
            fresh = install(tmp / "site")
            data = {
                "resolver": fresh.resolver,
                "distributions": [
                    {"name": d.name, "version": d.version, "wheel": d.wheel, "files": list(d.files)}
                    for d in fresh.distributions
                ],
            }
            (tmp / "installed.json").write_text(json.dumps(data, indent=1))
            shutil.rmtree(home, ignore_errors=True)  # stale or refreshed: we hold the lock
            os.replace(tmp, home)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        loaded = _load(home, record)
    assert loaded is not None
    return loaded


def _load(home: Path, record: Path) -> Installed | None:
    try:
        data = json.loads(record.read_text())
        resolver = str(data["resolver"])
        distributions = tuple(
            Distribution(
                name=d["name"], version=d["version"], wheel=d["wheel"], files=tuple(d["files"])
            )
            for d in data["distributions"]
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    site = home / "site"
    for dist in distributions:
        if not (site / f"{_dist_info(dist)}").is_dir():
            log.warning("installed site %s is incomplete; installing afresh", home)
            return None
    return Installed(site, distributions, resolver)


def _dist_info(dist: Distribution) -> str:
    info = next((f for f in dist.files if f.endswith(".dist-info/METADATA")), "")
    return info.rsplit("/", 1)[0]
