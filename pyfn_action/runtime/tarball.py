"""Deterministic tar archives: same entries, same bytes.

Members are sorted by name, every parent directory is a member, copied files
keep their own modification time (compiled bytecode records its source's, and
must stay valid) while everything else gets one fixed epoch, owners are 0 with
empty names, modes are exactly what the
entry says, and gzip headers carry no name and no time. The archive is written
to a temporary file beside its destination and renamed into place; on any
failure the temporary file is removed.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import posixpath
import tarfile
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from pyfn_action.fetch import sha256_file
from pyfn_action.progress import ProgressFactory, ProgressTask

COMPRESSIONS = {".tar.gz": "gz", ".tgz": "gz", ".tar.bz2": "bz2", ".tar.xz": "xz"}


@dataclass(frozen=True)
class TarEntry:
    """One member, before it is written: a directory, a file to copy, a symlink or bytes."""

    kind: str  # "dir", "file", "link" or "data"
    mode: int
    source: Path | None = None  # "file": what to copy
    link: str = ""  # "link": the relative target
    data: bytes = b""  # "data": the content
    size: int = 0  # bytes to write, for progress

    @classmethod
    def directory(cls) -> TarEntry:
        return cls("dir", 0o755)

    @classmethod
    def file(cls, path: Path, mode: int) -> TarEntry:
        return cls("file", mode, source=path, size=path.stat().st_size)

    @classmethod
    def symlink(cls, target: str, mode: int) -> TarEntry:
        return cls("link", mode, link=target)

    @classmethod
    def blob(cls, data: bytes, mode: int = 0o644) -> TarEntry:
        return cls("data", mode, data=data, size=len(data))


def compression_for(path: Path) -> str | None:
    """``"gz"``, ``"bz2"`` or ``"xz"`` from ``path``'s suffix; None when it names none."""
    for suffix, kind in COMPRESSIONS.items():
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return kind
    return None


def write_tar(
    entries: Mapping[str, TarEntry],
    output: Path,
    *,
    compression: str,
    epoch: int,
    progress: ProgressFactory,
    label: str,
) -> str:
    """Write ``entries`` (archive name → entry) to ``output``; return its SHA-256.

    Raises :class:`OSError` when the file cannot be written; nothing is left behind then.
    """
    members = dict(entries)
    for name in entries:
        parent = posixpath.dirname(name)
        while parent and parent not in members:
            members[parent] = TarEntry.directory()
            parent = posixpath.dirname(parent)
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".part", dir=output.parent)
    tmp = Path(tmp_name)
    bar = progress(label, sum(e.size for e in members.values()))
    try:
        with os.fdopen(fd, "wb") as raw, _compressor(raw, compression) as packed:
            tar = tarfile.TarFile(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT)
            with tar:
                for name in sorted(members):
                    _add_member(tar, name, members[name], epoch, bar)
        tmp.chmod(0o644)
        sha256 = sha256_file(tmp)
        tmp.replace(output)
        return sha256
    finally:
        bar.close()
        tmp.unlink(missing_ok=True)


def _compressor(raw: BinaryIO, kind: str) -> io.BufferedIOBase:
    if kind == "gz":  # no file name, mtime 0: the gzip header is the same every time
        return gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
    if kind == "bz2":
        return bz2.BZ2File(raw, "wb", compresslevel=9)
    if kind == "xz":
        return lzma.LZMAFile(raw, "wb", preset=6)
    raise ValueError(f"unknown compression {kind!r}; use one of gz, bz2, xz")


class _Counting:
    """A reader that reports every block it hands to tarfile."""

    def __init__(self, fh: BinaryIO, bar: ProgressTask) -> None:
        self._fh = fh
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        block = self._fh.read(size)
        self._bar.advance(len(block))
        return block


def _add_member(
    tar: tarfile.TarFile, name: str, entry: TarEntry, epoch: int, bar: ProgressTask
) -> None:
    info = tarfile.TarInfo(name)
    info.mtime = epoch
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = entry.mode
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "link":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link
        tar.addfile(info)
    elif entry.kind == "data":
        info.size = len(entry.data)
        tar.addfile(info, io.BytesIO(entry.data))
        bar.advance(info.size)
    elif entry.kind == "file" and entry.source is not None:
        with entry.source.open("rb") as fh:
            status = os.fstat(fh.fileno())
            info.size = status.st_size
            info.mtime = int(status.st_mtime)
            tar.addfile(info, _Counting(fh, bar))
    else:
        raise ValueError(f"tar entry {name!r} of kind {entry.kind!r} is incomplete")
