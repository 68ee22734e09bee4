"""Deterministic zip writing: same entries, same bytes.

Entries sorted, one fixed timestamp (``SOURCE_DATE_EPOCH``, never before
1980), Unix modes 0644/0755 with ``create_system = 3`` so executables stay
executable after extraction, Deflate or Stored only (the only methods Cloud
Functions' extractor accepts), no directory or symlink entries.
"""

from __future__ import annotations

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
from pyfn_action.fetch import sha256_file
from pyfn_action.progress import ProgressFactory, silent

ZIP_EPOCH_MIN = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can hold
COMPRESS_LEVEL = 9

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


def _write_archive(
    out: BinaryIO,
    entries: Sequence[Entry],
    compressed: Sequence[Compressed],
    date_time: tuple[int, int, int, int, int, int],
) -> None:
    """Local headers and data, then the central directory (ZIP64 end records when needed)."""
    dos_time, dos_date = _dos(date_time)
    central = []
    offset = 0
    for entry, item in zip(entries, compressed):
        name = entry.arcname.encode("utf-8")
        flags = _UTF8 if not entry.arcname.isascii() else 0
        if max(offset, item.size, len(item.payload)) > _LIMIT32:
            raise BundleError(
                f"{entry.arcname} does not fit in a zip this size",
                why="files and offsets over 4 GiB are not supported",
                fix="Trim the bundle: Cloud Functions refuses far smaller sources",
            )
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
    directory = b"".join(central)
    count = len(central)
    if count > 0xFFFF or offset > _LIMIT32 or len(directory) > _LIMIT32:
        end64_at = offset + len(directory)
        directory += _END64.pack(
            0x06064B50, _END64.size - 12, (3 << 8) | _ZIP64_VERSION, _ZIP64_VERSION,
            0, 0, count, count, len(directory), offset,
        )  # fmt: skip
        directory += _LOCATOR64.pack(0x07064B50, 0, end64_at, 1)
        directory += _END.pack(0x06054B50, 0, 0, 0xFFFF, 0xFFFF, _LIMIT32, _LIMIT32, 0)
    else:
        directory += _END.pack(0x06054B50, 0, 0, count, count, len(directory), offset, 0)
    out.write(directory)


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
    try:
        with os.fdopen(fd, "wb") as out:
            bar = progress("Zipping", sum(e.size() for e in ordered))
            cache = DeflateCache(cache_dir / "deflate" if cache_dir else None, level)
            items = compress_all([e.read for e in ordered], cache, on_done=bar.advance)
            compressed = [item for _, item in items]
            _write_archive(out, ordered, compressed, date_time)
        log.debug(
            "zip: %d compressed data reused (each checked against its file), %d compressed "
            "now, %d cache entries discarded",
            cache.hits, cache.misses, cache.discarded,
        )  # fmt: skip
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
    written = tuple(
        Written(e.arcname, e.component, e.kind, len(item.payload), item.size)
        for e, item in zip(ordered, compressed)
    )
    return ZipResult(
        path=dest,
        sha256=digest,
        compressed_bytes=size,
        uncompressed_bytes=sum(w.uncompressed_bytes for w in written),
        entries=written,
    )
