"""Deterministic zip writing: same entries, same bytes.

Entries sorted, one fixed timestamp (``SOURCE_DATE_EPOCH``, never before
1980), Unix modes 0644/0755 with ``create_system = 3`` so executables stay
executable after extraction, Deflate or Stored only (the only methods Cloud
Functions' extractor accepts), no directory or symlink entries.
"""

from __future__ import annotations

import os
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import BundleError
from .fetch import sha256_file
from .progress import ProgressFactory, silent
from .stage import Entry

ZIP_EPOCH_MIN = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip can hold
COMPRESS_LEVEL = 9


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


def _info(entry: Entry, date_time: tuple[int, int, int, int, int, int]) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(entry.arcname, date_time=date_time)
    info.create_system = 3
    mode = 0o755 if entry.executable else 0o644
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def write_zip(
    entries: Sequence[Entry],
    dest: Path,
    *,
    source_date_epoch: int = ZIP_EPOCH_MIN,
    progress: ProgressFactory = silent,
) -> ZipResult:
    """Write ``entries`` to ``dest`` through a temporary file; replace ``dest`` when complete."""
    date_time = zip_time(source_date_epoch)
    ordered = sorted(entries, key=lambda e: e.arcname)
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
    os.close(fd)
    bar = None
    try:
        bar = progress("Zipping", sum(e.size() for e in ordered))
        written: list[Written] = []
        with zipfile.ZipFile(tmp, "w", compresslevel=COMPRESS_LEVEL) as zf:
            for entry in ordered:
                data = entry.read()
                zf.writestr(_info(entry, date_time), data, compresslevel=COMPRESS_LEVEL)
                stored = zf.getinfo(entry.arcname)
                written.append(
                    Written(
                        entry.arcname,
                        entry.component,
                        entry.kind,
                        stored.compress_size,
                        stored.file_size,
                    )
                )
                bar.advance(len(data))
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
    return ZipResult(
        path=dest,
        sha256=digest,
        compressed_bytes=size,
        uncompressed_bytes=sum(w.uncompressed_bytes for w in written),
        entries=tuple(written),
    )
