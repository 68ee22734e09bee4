"""Reading zip archives the way pyfn-oversized-files needs: directory sizes and methods.

Deflate64 archives are readable too (zipfile-deflate64 teaches zipfile the
method); it is only ever used to read, never to write. Members are read, one by
one and within limits, by the credentials scanner (:mod:`pyfn_action.secrets`).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import zipfile_deflate64  # noqa: F401  - registers Deflate64 with zipfile, for reading

ZIP_SUFFIXES = (".zip", ".whl", ".jar", ".egg")
# What Cloud Functions' extractor accepts.
EXTRACTABLE = {zipfile.ZIP_STORED: "Stored", zipfile.ZIP_DEFLATED: "Deflate"}
METHOD_NAMES = {9: "Deflate64", 12: "bzip2", 14: "LZMA", 93: "zstd", 95: "xz", 98: "PPMd"}


class ArchiveError(ValueError):
    """A file that claims to be a zip but cannot be read as one."""


@dataclass(frozen=True)
class ZipSummary:
    files: int
    uncompressed_bytes: int
    unsupported: tuple[tuple[str, str], ...]  # (member, method name) Cloud Functions refuses


def is_zip(path: Path) -> bool:
    if path.suffix.lower() in ZIP_SUFFIXES:
        return True
    try:
        with path.open("rb") as fh:
            return fh.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def summarize(path: Path) -> ZipSummary:
    """Sizes and compression methods, from the central directory only."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise ArchiveError(f"not a readable zip archive ({exc}); truncated?") from exc
    unsupported = tuple(
        (i.filename, METHOD_NAMES.get(i.compress_type, f"method {i.compress_type}"))
        for i in infos
        if i.compress_type not in EXTRACTABLE
    )
    return ZipSummary(len(infos), sum(i.file_size for i in infos), unsupported)
