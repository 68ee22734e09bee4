"""Which wheel tags exist for a project: to say *why* a requirement cannot be used.

Reads the Simple Repository API (PEP 691 JSON, falling back to PEP 503 HTML)
of the configured indexes, and local ``find_links`` directories. Best effort:
an index that cannot be reached yields nothing, never an error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from html.parser import HTMLParser
from pathlib import Path

from packaging.tags import Tag
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)

from pyfn_action.deps.sources import Sources
from pyfn_action.redact import redact_url, scrub

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 15
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


def default_index_url() -> str | None:
    """pip's default index, from pip itself (so no host is written down twice)."""
    try:
        from pip._internal.models.index import PyPI
    except ImportError:  # pragma: no cover - pip is a dependency
        return None
    return str(PyPI.simple_url)


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            path = urllib.parse.urlsplit(href).path
            self.names.append(urllib.parse.unquote(path.rsplit("/", 1)[-1]))


def _filenames_from_index(base: str, project: str) -> list[str]:
    url = f"{base.rstrip('/')}/{project}/"
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            body = response.read()
            kind = response.headers.get("Content-Type", "")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.debug("cannot read %s: %s", redact_url(url), scrub(str(exc), url))
        return []
    if "json" in kind:
        try:
            return [str(f["filename"]) for f in json.loads(body)["files"]]
        except (ValueError, KeyError, TypeError):
            return []
    parser = _Anchors()
    parser.feed(body.decode("utf-8", "replace"))
    return parser.names


def _filenames_from_links(link: str) -> list[str]:
    path = Path(urllib.parse.urlsplit(link).path if link.startswith("file:") else link)
    if path.is_dir():
        return [p.name for p in path.iterdir()]
    return []


def existing_files(project: str, sources: Sources) -> tuple[frozenset[Tag], bool]:
    """Every wheel tag published for ``project`` on the configured sources, and
    whether an sdist is published too."""
    name = canonicalize_name(project)
    indexes = [sources.index_url or default_index_url(), *sources.extra_index_urls]
    names: list[str] = []
    for base in [] if sources.no_index else filter(None, indexes):
        names += _filenames_from_index(str(base), name)
    for link in sources.find_links:
        names += _filenames_from_links(link)
    tags: set[Tag] = set()
    has_sdist = False
    for filename in names:
        if filename.endswith((".tar.gz", ".zip")):
            with contextlib.suppress(InvalidSdistFilename):
                has_sdist |= canonicalize_name(parse_sdist_filename(filename)[0]) == name
            continue
        if not filename.endswith(".whl"):
            continue
        try:
            dist, _, _, tagset = parse_wheel_filename(filename)
        except InvalidWheelFilename:
            continue
        if canonicalize_name(dist) == name:
            tags |= tagset
    return frozenset(tags), has_sdist


def existing_tags(project: str, sources: Sources) -> frozenset[Tag]:
    """Every wheel tag published for ``project`` on the configured sources."""
    return existing_files(project, sources)[0]


def summarize(tags: Iterable[Tag], limit: int = 8, platforms: int = 4) -> str:
    """``cp310-cp310, cp311-abi3, py3-none (any)`` — interpreter/ABI pairs, briefly:
    at most ``limit`` pairs, each with at most ``platforms`` platforms (Linux first)."""
    pairs: dict[str, set[str]] = {}
    for tag in tags:
        platform = "any" if tag.platform == "any" else re.sub(r"_\d+_\d+", "", tag.platform)
        pairs.setdefault(f"{tag.interpreter}-{tag.abi}", set()).add(platform)
    keys = sorted(pairs)

    def brief(found: set[str]) -> str:
        ordered = sorted(found, key=lambda p: (not p.startswith(("manylinux", "any")), p))
        more = f", {len(ordered) - platforms} more" if len(ordered) > platforms else ""
        return ", ".join(ordered[:platforms]) + more

    shown = [f"{k} ({brief(pairs[k])})" for k in keys[:limit]]
    if len(keys) > limit:
        shown.append(f"and {len(keys) - limit} more")
    return ", ".join(shown)
