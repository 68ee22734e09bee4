"""Compressed file data, computed once: a cache of raw Deflate streams keyed by content.

A stream depends on the bytes compressed and on what compresses them: the zlib
library (the version it reports at run time, and the stream it makes of a fixed
sample, which tells apart builds of one version that compress otherwise), the
level, the window, the memory level and the strategy, together a :class:`Producer`.
Each producer has a directory of its own in the cache, where a stream is stored
under the content's SHA-256 and reused by every later build with that producer:
byte for byte what compressing again would give. A stream another producer made
(another zlib, another level) is never looked up, so a warm build writes the bytes
a cold one writes. Cold builds compress in parallel (zlib releases the GIL).

The cache may be shared (a CI cache restored on another branch), so an entry is
never trusted for what it says about itself. Each record carries a SHA-256 over
all of it (header, producer, the content's digest it is filed under, payload),
which catches damage cheaply, and a record moved from another producer's
directory, and is then checked against the very bytes being zipped: their size
and CRC-32 must be the record's, and the payload must *be* those bytes (Stored)
or inflate to exactly them (Deflate). CRC-32 and size alone can be matched by
anyone (CRC-32 is linear), so only inflating proves that a stream holds the file;
inflating costs a fraction of compressing (zlib inflates at hundreds of MB/s) and
runs on every core. A record that fails any check is deleted, logged and
recomputed, never written into a zip.

What no check short of compressing again can prove is who made a stream: anyone
who can write to the cache can compute a record's checksum too, and file under
this producer a stream that inflates to the file but was made otherwise (by hand,
by another zlib). It passes every check and puts the right file into a valid zip,
but the zip's bytes may then differ from a cold build's. Compressing again to
compare is the very work the cache saves, so for the bytes (never the files) the
cache is trusted as far as whoever can write to it.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import stat
import struct
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.fetch import replace_file

log = logging.getLogger(__name__)

_MAGIC = b"PYFNDEF3"
_OLD_MAGICS = (b"PYFNDEF1", b"PYFNDEF2")  # earlier pyfn versions' records: recomputed quietly
# magic, method, crc32, size, payload size; then sha256(head + producer + key + payload)
_HEAD = struct.Struct(">8sBIQQ")
_CHECK = 32
STORED, DEFLATED = 0, 8
_WBITS = -15  # raw Deflate (no zlib header), the largest window
_MEM_LEVEL = 8  # zlib's default
_STRATEGY = zlib.Z_DEFAULT_STRATEGY


@dataclass(frozen=True)
class Producer:
    """What a stream depends on besides the bytes: the zlib that compresses and its
    settings. One producer makes one stream of the same bytes."""

    zlib_version: str  # as the library reports it at run time
    level: int
    # SHA-256 of its stream of a fixed sample: builds of one version that compress
    # otherwise (a patched fork, hardware compression) nearly always differ in it
    probe: str

    @property
    def key(self) -> str:
        """Everything that makes the stream, in words; records are checked against it."""
        return (
            f"zlib {self.zlib_version} level {self.level} wbits {_WBITS} "
            f"memLevel {_MEM_LEVEL} strategy {_STRATEGY} probe {self.probe}"
        )

    @property
    def dirname(self) -> str:
        """The producer's directory in the cache: readable, and unique to the key."""
        version = re.sub(r"[^A-Za-z0-9.]+", "_", self.zlib_version)[:40]
        digest = hashlib.sha256(self.key.encode()).hexdigest()[:16]
        return f"zlib-{version}-level-{self.level}-{digest}"


@functools.lru_cache(maxsize=1)
def _sample() -> bytes:
    """36 KB of text whose words come back over many lengths and distances (some beyond
    the 32 KB window): zlibs that choose other matches give other streams of it."""
    words = [hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(251)]
    return b" ".join(words[i % 251][: 3 + i % 29] for i in range(2048))


def _deflate(data: bytes, level: int) -> bytes:
    engine = zlib.compressobj(level, zlib.DEFLATED, _WBITS, _MEM_LEVEL, _STRATEGY)
    return engine.compress(data) + engine.flush()


def producer(level: int) -> Producer:
    """This process's zlib at ``level``, as it compresses now."""
    probe = hashlib.sha256(_deflate(_sample(), level)).hexdigest()
    return Producer(zlib.ZLIB_RUNTIME_VERSION, level, probe)


@dataclass(frozen=True)
class Compressed:
    """One file's data as it goes into a zip."""

    method: int  # STORED or DEFLATED
    crc32: int
    size: int
    payload: bytes  # the stored bytes, or the raw Deflate stream


def compress(data: bytes, level: int) -> Compressed:
    """Raw Deflate at ``level``; Stored when compressing does not make it smaller."""
    stream = _deflate(data, level)
    crc = zlib.crc32(data)
    if len(stream) >= len(data):
        return Compressed(method=STORED, crc32=crc, size=len(data), payload=data)
    return Compressed(method=DEFLATED, crc32=crc, size=len(data), payload=stream)


class _Discard(Exception):
    """A cache record that must not be used; the message says why."""


def _check(head: bytes, made_by: Producer, digest: str, payload: bytes) -> bytes:
    sha = hashlib.sha256(head)
    sha.update(f"{made_by.key} key {digest}\n".encode())
    sha.update(payload)
    return sha.digest()


def _holds(item: Compressed, data: bytes) -> None:
    """Raise :class:`_Discard` unless ``item`` is exactly ``data``, compressed."""
    if item.size != len(data):
        raise _Discard(f"it records {item.size} bytes, the file has {len(data)}")
    if item.crc32 != zlib.crc32(data):
        raise _Discard("its CRC-32 is not the file's")
    if item.method == STORED:
        if item.payload != data:
            raise _Discard("its stored bytes are not the file's")
        return
    if len(item.payload) >= len(data):
        raise _Discard("its stream is no smaller than the file (never written so)")
    engine = zlib.decompressobj(-15)
    try:
        # Bounded: a stream that inflates to more than the file stops one byte past it.
        inflated = engine.decompress(item.payload, len(data) + 1)
    except zlib.error as exc:
        raise _Discard(f"its stream does not inflate ({exc})") from None
    if not engine.eof or engine.unused_data or engine.unconsumed_tail:
        raise _Discard("its stream does not end where the record ends")
    if inflated != data:
        raise _Discard("its stream does not inflate to the file")


class DeflateCache:
    """``<root>/<producer>/<aa>/<sha256>``: compressed payloads, verified on every read."""

    def __init__(self, root: Path | None, level: int) -> None:
        self.producer = producer(level)
        self.root = root / self.producer.dirname if root is not None else None
        self.level = level
        self.hits = 0
        self.misses = 0
        self.discarded = 0

    def _path(self, digest: str) -> Path:
        assert self.root is not None
        return self.root / digest[:2] / digest

    def _read(self, path: Path, limit: int) -> bytes | None:
        """The record at ``path``, if it is a regular file (no link followed, no FIFO
        waited on) of at most ``limit`` bytes; ``None`` when there is none."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:  # ELOOP: a symbolic link; EACCES, ...
            raise _Discard(f"it cannot be opened as a file ({exc.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise _Discard("it is not a regular file")
            if info.st_size > limit:
                raise _Discard(f"it is larger ({info.st_size} bytes) than the file could need")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read(limit + 1)
        finally:
            os.close(fd)

    def get(self, digest: str, data: bytes) -> Compressed | None:
        """The cached compressed form of ``data`` (whose SHA-256 is ``digest``), if its
        record is intact and holds exactly ``data``; a record that is not is deleted."""
        if self.root is None:
            return None
        path = self._path(digest)
        try:
            # The largest record a file can need: header, checksum, the file stored.
            raw = self._read(path, _HEAD.size + _CHECK + len(data))
            if raw is None:
                return None
            if len(raw) < _HEAD.size + _CHECK:
                raise _Discard("it is shorter than a record's header")
            magic, method, crc, size, csize = _HEAD.unpack_from(raw)
            if magic in _OLD_MAGICS:
                log.debug("deflate cache entry %s has an older format; recomputing it", path)
                self._drop(path)
                return None
            if magic != _MAGIC:
                raise _Discard("it is not a pyfn Deflate record")
            check = raw[_HEAD.size : _HEAD.size + _CHECK]
            payload = raw[_HEAD.size + _CHECK :]
            if method not in (STORED, DEFLATED) or len(payload) != csize:
                raise _Discard("its header does not describe its payload")
            if _check(raw[: _HEAD.size], self.producer, digest, payload) != check:
                raise _Discard("it does not match its checksum")
            item = Compressed(method=method, crc32=crc, size=size, payload=payload)
            _holds(item, data)
        except _Discard as exc:
            log.warning("deflate cache entry %s is not usable (%s); recomputing it", path, exc)
            self.discarded += 1
            self._drop(path)
            return None
        return item

    @staticmethod
    def _drop(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:  # a read-only cache: the entry is simply not used
            log.debug("cannot delete %s: %s", path, exc)

    def put(self, digest: str, item: Compressed) -> None:
        """Record ``item`` under ``digest``, through a temporary file; best effort (a cache
        that cannot be written to only makes the next build slower)."""
        if self.root is None:
            return
        path = self._path(digest)
        head = _HEAD.pack(_MAGIC, item.method, item.crc32, item.size, len(item.payload))
        check = _check(head, self.producer, digest, item.payload)
        try:
            replace_file(path, head + check + item.payload)
        except OSError as exc:
            log.warning("cannot write deflate cache entry %s: %s", path, exc.strerror or exc)


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
        item = cache.get(digest, data)
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
