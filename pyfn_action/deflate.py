"""Compressed file data, computed once: a cache of raw Deflate streams keyed by content.

A stream depends only on the bytes compressed and the level, so it is stored
under the content's SHA-256 and reused by every later build, byte for byte what
compressing again would produce. Each cache file carries the SHA-256 of its own
payload: a damaged entry is detected, recomputed and replaced, never written
into a zip. Cold builds compress in parallel (zlib releases the GIL).
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_MAGIC = b"PYFNDEF1"
# magic, method, crc32, size, payload size, sha256(payload)
_HEAD = struct.Struct(">8sBIQQ32s")
STORED, DEFLATED = 0, 8


@dataclass(frozen=True)
class Compressed:
    """One file's data as it goes into a zip."""

    method: int  # STORED or DEFLATED
    crc32: int
    size: int
    payload: bytes  # the stored bytes, or the raw Deflate stream


def compress(data: bytes, level: int) -> Compressed:
    """Raw Deflate at ``level``; Stored when compressing does not make it smaller."""
    engine = zlib.compressobj(level, zlib.DEFLATED, -15)
    stream = engine.compress(data) + engine.flush()
    crc = zlib.crc32(data)
    if len(stream) >= len(data):
        return Compressed(STORED, crc, len(data), data)
    return Compressed(DEFLATED, crc, len(data), stream)


class DeflateCache:
    """``<root>/<level>/<aa>/<sha256>``: compressed payloads, verified on every read."""

    def __init__(self, root: Path | None, level: int) -> None:
        self.root = root / f"level-{level}" if root is not None else None
        self.level = level
        self.hits = 0
        self.misses = 0

    def _path(self, digest: str) -> Path:
        assert self.root is not None
        return self.root / digest[:2] / digest

    def get(self, digest: str) -> Compressed | None:
        if self.root is None:
            return None
        path = self._path(digest)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        try:
            magic, method, crc, size, csize, check = _HEAD.unpack_from(raw)
            payload = raw[_HEAD.size :]
            if (
                magic != _MAGIC
                or method not in (STORED, DEFLATED)
                or len(payload) != csize
                or hashlib.sha256(payload).digest() != check
            ):
                raise ValueError("its payload does not match its checksum")
        except (struct.error, ValueError) as exc:
            log.warning("deflate cache entry %s is corrupt (%s); recomputing it", path, exc)
            path.unlink(missing_ok=True)
            return None
        return Compressed(method, crc, size, payload)

    def put(self, digest: str, item: Compressed) -> None:
        if self.root is None:
            return
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = _HEAD.pack(
            _MAGIC, item.method, item.crc32, item.size, len(item.payload),
            hashlib.sha256(item.payload).digest(),
        )  # fmt: skip
        fd, tmp = tempfile.mkstemp(prefix=".", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(head + item.payload)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


def compress_all(
    contents: Sequence[Callable[[], bytes]],
    cache: DeflateCache,
    *,
    workers: int | None = None,
    on_done: Callable[[int], None] | None = None,
) -> list[tuple[str, Compressed]]:
    """(content SHA-256, compressed data) for each content, in order, cached ones reused."""

    def one(read: Callable[[], bytes]) -> tuple[str, Compressed]:
        data = read()
        digest = hashlib.sha256(data).hexdigest()
        item = cache.get(digest)
        if item is None:
            cache.misses += 1
            item = compress(data, cache.level)
            cache.put(digest, item)
        else:
            cache.hits += 1
        if on_done is not None:
            on_done(len(data))
        return digest, item

    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        return list(pool.map(one, contents))
