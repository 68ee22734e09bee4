"""Tiny tar archives in the official PyPy layout (and broken ones), made on the spot."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

TOP = "pypy3.9-v7.3.11-linux64"


def add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    tar.addfile(info, io.BytesIO(data))


def add_link(tar: tarfile.TarFile, name: str, target: str, *, hard: bool = False) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def fake_runtime(path: Path, *, extra: dict[str, bytes] | None = None) -> str:
    """A runtime-shaped archive (not runnable); returns its SHA-256."""
    with tarfile.open(path, "w:gz") as tar:
        add_file(tar, f"{TOP}/bin/pypy3.9", b"#!/bin/sh\n", 0o755)
        add_file(tar, f"{TOP}/bin/libpypy3.9-c.so", b"\x7fELF-ish", 0o755)
        add_link(tar, f"{TOP}/bin/pypy3", "pypy3.9")
        add_file(tar, f"{TOP}/lib/pypy3.9/os.py", b"# os\n")
        add_file(tar, f"{TOP}/lib/pypy3.9/_ssl_cffi.pypy39-pp73-x86_64-linux-gnu.so", b"so")
        for name, data in (extra or {}).items():
            add_file(tar, f"{TOP}/{name}", data)
    return hashlib.sha256(path.read_bytes()).hexdigest()
