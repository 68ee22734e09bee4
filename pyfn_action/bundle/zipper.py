"""Deterministic zip writing: same entries, same bytes.

Entries sorted, one fixed timestamp (``SOURCE_DATE_EPOCH``, never before
1980), Unix modes 0644/0755 with ``create_system = 3`` so executables stay
executable after extraction, Deflate or Stored only (the only methods Cloud
Functions' extractor accepts), no directory or symlink entries.

The runtime's and the site's entries (``pypy/``, ``site/``: 90 MB, unchanged from one build
to the next while the app changes) are also kept as blocks: their local headers and data,
and their central records, exactly as written, in ``<cache>/zipblocks``. A block is keyed by
each of its files' identity on disk (path, size, modification and change times, inode) with
its name and mode, the timestamp, and what compressed it (zlib and its settings:
``deflate.Producer``), so a later build whose runtime and site files are those same files,
compressed by the same zlib, copies the block instead of reading, hashing, checking and
compressing 90 MB again; the bytes are the ones writing them anew would give. Any file that
changed (its change time moves with it) or moved makes a new key; a block is kept only once
its files' change times have settled (``fetch.settled``: a change in the same tick of the
kernel's clock would leave them as they were); a block whose checksum fails is deleted and
rebuilt. A cache restored from elsewhere has other inodes and times: its blocks never match.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pyfn_action.bundle.deflate import Compressed, DeflateCache, compress_all
from pyfn_action.bundle.entry import Entry
from pyfn_action.errors import BundleError
from pyfn_action.fetch import file_identity, settled, sha256_file
from pyfn_action.progress import ProgressFactory, silent

ZIP_EPOCH_MIN = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can hold
COMPRESS_LEVEL = 9
BLOCK_PREFIXES = ("pypy/", "site/")  # the parts kept whole between builds
BLOCKS_KEPT = 8  # block files in the cache, the most recently used
_BLOCK_MAGIC = b"PYFNBLK1"
_BLOCK_HEAD = struct.Struct(">8s32sQQ")  # magic, sha256 of the rest, meta and central sizes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Written:
    """One entry as it landed in the zip."""

    arcname: str
    component: str
    kind: str
    compressed_bytes: int
    uncompressed_bytes: int


@dataclass(frozen=True)
class ZipResult:
    path: Path
    sha256: str
    compressed_bytes: int  # the zip file's size
    uncompressed_bytes: int
    entries: tuple[Written, ...]


def zip_time(epoch: int) -> tuple[int, int, int, int, int, int]:
    """The zip timestamp for ``epoch`` (UTC), clamped to the format's 1980–2107 range."""
    epoch = min(max(epoch, ZIP_EPOCH_MIN), 4354819199)
    t = time.gmtime(epoch)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec)


_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
_END64 = struct.Struct("<IQHHIIQQQQ")
_LOCATOR64 = struct.Struct("<IIQI")
_VERSION = 20  # 2.0: Deflate
_ZIP64_VERSION = 45
_UTF8 = 0x800
_LIMIT32 = 0xFFFFFFFF


def _dos(date_time: tuple[int, int, int, int, int, int]) -> tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return (hour << 11) | (minute << 5) | (second // 2), ((year - 1980) << 9) | (month << 5) | day


@dataclass
class _Segment:
    """Consecutive entries of the zip: written now, or copied from a cached block."""

    prefix: str  # a BLOCK_PREFIXES run, or "" for the rest
    entries: list[Entry]
    compressed: Sequence[Compressed] | None = None  # None: from ``block``
    block: BinaryIO | None = None  # a cached block, open and checked
    data_at: int = 0  # where the block's local headers and data start in it
    key: str | None = None  # a block to keep, once written
    local_size: int = 0
    central: bytes = b""  # central records, offsets from the segment's start
    written: tuple[Written, ...] = ()


def _records(segment: _Segment, out: BinaryIO, dos: tuple[int, int]) -> None:
    """Write the segment's local headers and data; keep its central records."""
    dos_time, dos_date = dos
    central = []
    offset = 0
    assert segment.compressed is not None
    for entry, item in zip(segment.entries, segment.compressed):
        name = entry.arcname.encode("utf-8")
        flags = _UTF8 if not entry.arcname.isascii() else 0
        if max(offset, item.size, len(item.payload)) > _LIMIT32:
            raise _too_big(entry.arcname)
        fields = (item.method, dos_time, dos_date, item.crc32, len(item.payload), item.size)
        header = _LOCAL.pack(0x04034B50, _VERSION, flags, *fields, len(name), 0)
        out.write(header + name)
        out.write(item.payload)
        mode = 0o755 if entry.executable else 0o644
        attributes = (0, 0, 0, 0, (0o100000 | mode) << 16, offset)
        made_by = (3 << 8) | _VERSION  # Unix, so that the modes are honoured
        record = _CENTRAL.pack(
            0x02014B50, made_by, _VERSION, flags, *fields, len(name), *attributes
        )
        central.append(record + name)
        offset += len(header) + len(name) + len(item.payload)
    segment.local_size = offset
    segment.central = b"".join(central)
    segment.written = tuple(
        Written(
            arcname=e.arcname,
            component=e.component,
            kind=e.kind,
            compressed_bytes=len(item.payload),
            uncompressed_bytes=item.size,
        )
        for e, item in zip(segment.entries, segment.compressed)
    )


def _too_big(arcname: str) -> BundleError:
    return BundleError(
        f"{arcname} does not fit in a zip this size",
        why="files and offsets over 4 GiB are not supported",
        fix="Trim the bundle: Cloud Functions refuses far smaller sources",
    )


def _shifted(central: bytes, start: int) -> bytes:
    """Central records with each local header offset moved by ``start``."""
    if start == 0:
        return central
    out = bytearray(central)
    at = 0
    while at < len(out):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", out, at + 28)
        offset = struct.unpack_from("<I", out, at + 42)[0] + start
        if offset > _LIMIT32:
            raise _too_big(bytes(out[at + 46 : at + 46 + name_len]).decode("utf-8", "replace"))
        struct.pack_into("<I", out, at + 42, offset)
        at += _CENTRAL.size + name_len + extra_len + comment_len
    return bytes(out)


def _write_archive(out: BinaryIO, segments: Sequence[_Segment], dos: tuple[int, int]) -> None:
    """Each segment's local headers and data, then the central directory (ZIP64 end
    records when needed)."""
    central = []
    offset = 0
    count = 0
    for segment in segments:
        if segment.block is not None:
            _copy_block(segment, out)
        else:
            _records(segment, out, dos)
        central.append(_shifted(segment.central, offset))
        offset += segment.local_size
        count += len(segment.entries)
    directory = b"".join(central)
    if count > 0xFFFF or offset > _LIMIT32 or len(directory) > _LIMIT32:
        end64_at = offset + len(directory)
        directory += _END64.pack(
            0x06064B50,
            _END64.size - 12,
            (3 << 8) | _ZIP64_VERSION,
            _ZIP64_VERSION,
            0,
            0,
            count,
            count,
            len(directory),
            offset,
        )
        directory += _LOCATOR64.pack(0x07064B50, 0, end64_at, 1)
        directory += _END.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _LIMIT32, _LIMIT32, 0)
    else:
        directory += _END.pack(0x06054B50, 0, 0, count, count, len(directory), offset, 0)
    out.write(directory)


# --- blocks: the runtime and the site, kept whole between builds ------------------------


def _segments(ordered: Sequence[Entry], blocks: Path | None, key_base: str) -> list[_Segment]:
    """The zip's entries in order, in runs: each BLOCK_PREFIXES run whose files are all on
    disk is a block (cached, or to keep); the rest are written now."""
    segments: list[_Segment] = []
    for entry in ordered:
        prefix = next((p for p in BLOCK_PREFIXES if entry.arcname.startswith(p)), "")
        if segments and segments[-1].prefix == prefix:
            segments[-1].entries.append(entry)
        else:
            segments.append(_Segment(prefix=prefix, entries=[entry]))
    if blocks is None:
        return segments
    for segment in segments:
        if not segment.prefix or any(e.source is None for e in segment.entries):
            continue
        try:
            key, steady = _block_key(segment.entries, key_base)
        except OSError:
            continue
        if _load_block(segment, blocks / f"{key}.blk"):
            continue
        if steady:  # kept only once its files' times can tell a later change
            segment.key = key
    return segments


def _block_key(entries: Sequence[Entry], key_base: str) -> tuple[str, bool]:
    """The block's key, and whether all its files have settled (``fetch.settled``)."""
    digest = hashlib.sha256(key_base.encode())
    steady = True
    for e in entries:
        assert e.source is not None
        st = e.source.stat()
        steady = steady and settled(st)
        fields = [e.arcname, e.executable, e.component, e.kind, str(e.source), *file_identity(st)]
        digest.update(json.dumps(fields).encode() + b"\n")
    return digest.hexdigest(), steady


def _load_block(segment: _Segment, path: Path) -> bool:
    """Open a block, check its checksum, and read its index and central records into
    ``segment``, which keeps it open for copying (so a prune by another build cannot
    take it away in between); False if it is not there or fails (then it is deleted)."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        return False
    except OSError as exc:
        log.warning("cannot read zip block %s (%s): writing those entries anew", path.name, exc)
        return False
    try:
        magic, check, meta_size, central_size = _BLOCK_HEAD.unpack(fh.read(_BLOCK_HEAD.size))
        if magic != _BLOCK_MAGIC:
            raise ValueError("not a block")
        digest = hashlib.sha256()
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
        if digest.digest() != check:
            raise ValueError("checksum mismatch")
        fh.seek(_BLOCK_HEAD.size)
        meta = json.loads(fh.read(meta_size))
        central = fh.read(central_size)
        written = tuple(Written(*row) for row in meta["written"])
        if [w.arcname for w in written] != [e.arcname for e in segment.entries]:
            raise ValueError("other entries")
        local_size = int(meta["local_size"])
    except (OSError, ValueError, TypeError, KeyError, struct.error) as exc:
        fh.close()
        log.warning("zip block %s is damaged (%s): writing those entries anew", path.name, exc)
        path.unlink(missing_ok=True)
        return False
    segment.block, segment.data_at = fh, _BLOCK_HEAD.size + meta_size + central_size
    segment.central, segment.written, segment.local_size = central, written, local_size
    with contextlib.suppress(OSError):
        os.utime(path)  # the most recently used
    return True


def _copy_block(segment: _Segment, out: BinaryIO) -> None:
    fh = segment.block
    assert fh is not None
    fh.seek(segment.data_at)
    copied = 0
    for chunk in iter(lambda: fh.read(1 << 20), b""):
        out.write(chunk)
        copied += len(chunk)
    if copied != segment.local_size:
        raise OSError(f"zip block {fh.name} ended early: write the bundle again")


def _meta(segment: _Segment) -> bytes:
    rows = [
        [w.arcname, w.component, w.kind, w.compressed_bytes, w.uncompressed_bytes]
        for w in segment.written
    ]
    return json.dumps({"local_size": segment.local_size, "written": rows}).encode()


def _keep_block(segment: _Segment, zip_path: Path, start: int, blocks: Path) -> None:
    """Save a segment just written (at ``start`` in ``zip_path``) as a block."""
    assert segment.key is not None
    meta = _meta(segment)
    tmp = None
    try:
        blocks.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".blk", dir=blocks)
        digest = hashlib.sha256(meta + segment.central)
        with os.fdopen(fd, "w+b") as out, zip_path.open("rb") as src:
            out.write(b"\0" * _BLOCK_HEAD.size + meta + segment.central)
            src.seek(start)
            left = segment.local_size
            while left:
                chunk = src.read(min(left, 1 << 20))
                if not chunk:
                    raise OSError("the zip ended early")
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
            out.seek(0)
            out.write(
                _BLOCK_HEAD.pack(_BLOCK_MAGIC, digest.digest(), len(meta), len(segment.central))
            )
        os.replace(tmp, blocks / f"{segment.key}.blk")
        tmp = None
    except OSError as exc:
        log.warning("cannot keep a zip block in %s: %s", blocks, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune_blocks(blocks: Path) -> None:
    with contextlib.suppress(OSError):  # the cache is a help, never a reason to fail
        found = sorted(((p.stat().st_mtime, p) for p in blocks.glob("*.blk")), reverse=True)
        for _mtime, path in found[BLOCKS_KEPT:]:
            path.unlink(missing_ok=True)


def _check_name(arcname: str) -> None:
    """A name the zip can record: UTF-8, at most 65,535 bytes."""
    shown = ascii(arcname)[1:-1]
    try:
        encoded = arcname.encode("utf-8")
    except UnicodeEncodeError:
        # A file name that is not UTF-8 on disk arrives as surrogates (PEP 383).
        raise BundleError(
            f"Cannot put {shown} into the bundle",
            why="its name is not valid UTF-8, and a zip records names as UTF-8",
            fix="Rename the file with a UTF-8 name, or leave it out with a .gcloudignore rule",
        ) from None
    if len(encoded) > 0xFFFF:
        raise BundleError(
            f"Cannot put {shown[:80]}… into the bundle",
            why=f"its name is too long for a zip ({len(encoded)} bytes; at most 65,535)",
            fix="Shorten the path, or leave it out with a .gcloudignore rule",
        )


def write_zip(
    entries: Sequence[Entry],
    dest: Path,
    *,
    source_date_epoch: int = ZIP_EPOCH_MIN,
    progress: ProgressFactory = silent,
    cache_dir: Path | None = None,
    level: int = COMPRESS_LEVEL,
) -> ZipResult:
    """Write ``entries`` to ``dest`` through a temporary file; replace ``dest`` when complete.

    Each file's compressed data comes from the Deflate cache under ``cache_dir``
    when it is there (and is verified), else it is compressed, in parallel.
    """
    date_time = zip_time(source_date_epoch)
    ordered = sorted(entries, key=lambda e: e.arcname)
    for entry in ordered:
        _check_name(entry.arcname)
    cache = DeflateCache(cache_dir / "deflate" if cache_dir else None, level)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    except OSError as exc:
        raise BundleError(
            f"Cannot write to {dest.parent}",
            why=exc.strerror or str(exc),
            fix="Choose a writable output directory with --out",
        ) from exc
    tmp = Path(tmp_name)
    bar = None
    blocks = cache_dir / "zipblocks" if cache_dir else None
    key_base = json.dumps([_BLOCK_MAGIC.decode(), cache.producer.key, list(date_time)])
    segments: list[_Segment] = []
    try:
        segments = _segments(ordered, blocks, key_base)
        fresh = [e for s in segments if s.block is None for e in s.entries]
        with os.fdopen(fd, "wb") as out:
            bar = progress("Zipping", sum(e.size() for e in fresh))
            items = iter(compress_all([e.read for e in fresh], cache, on_done=bar.advance))
            for segment in segments:
                if segment.block is None:
                    segment.compressed = [item for _, (_, item) in zip(segment.entries, items)]
            _write_archive(out, segments, _dos(date_time))
        log.debug(
            "zip: %d blocks copied, %d compressed data reused (each checked against its "
            "file), %d compressed now, %d cache entries discarded",
            sum(s.block is not None for s in segments),
            cache.hits,
            cache.misses,
            cache.discarded,
        )
        if blocks is not None:
            start = 0
            for segment in segments:
                if segment.key is not None and segment.block is None:
                    _keep_block(segment, tmp, start, blocks)
                start += segment.local_size
            _prune_blocks(blocks)
        digest = sha256_file(tmp)
        size = tmp.stat().st_size
        os.replace(tmp, dest)
    except OSError as exc:
        raise BundleError(
            f"Writing {dest} failed",
            why=f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc),
            fix="Check that the file named is readable and that the disk has room",
        ) from exc
    finally:
        if bar is not None:
            bar.close()
        tmp.unlink(missing_ok=True)
        for segment in segments:
            if segment.block is not None:
                segment.block.close()
    written = tuple(w for segment in segments for w in segment.written)
    return ZipResult(
        path=dest,
        sha256=digest,
        compressed_bytes=size,
        uncompressed_bytes=sum(w.uncompressed_bytes for w in written),
        entries=written,
    )
