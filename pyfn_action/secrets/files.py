"""Where a scan starts: a file on disk, or one file's content given as bytes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pyfn_action.secrets.model import LIMITS, Finding, Limits, Scan, Unscanned, too_large
from pyfn_action.secrets.names import reason, shown_name
from pyfn_action.secrets.scanner import Scanner


def scan_file(path: Path, where: str | None = None, limits: Limits = LIMITS) -> Scan:
    """Scan a file (``where`` names it in messages; its path by default).

    Only a regular file is read: a FIFO, socket or device is passed over, without
    waiting for a writer. A file larger than ``limits.file_bytes`` is reported, not read.
    """
    shown = shown_name(str(path) if where is None else where)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is passed over below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return Scan(unscanned=(Unscanned(shown, f"cannot be read ({reason(exc)})"),))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Scan()
        if info.st_size > limits.file_bytes:
            return Scan(unscanned=(Unscanned(shown, too_large(info.st_size, limits)),))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limits.file_bytes + 1)
    except OSError as exc:
        return Scan(unscanned=(Unscanned(shown, f"cannot be read ({reason(exc)})"),))
    finally:
        os.close(fd)
    if len(data) > limits.file_bytes:  # it grew while we read it
        return Scan(unscanned=(Unscanned(shown, too_large(len(data), limits)),))
    return Scanner(limits=limits).run(shown, data)


def scan_content(where: str, data: bytes, limits: Limits = LIMITS) -> Scan:
    """Scan one file's content, given as bytes; ``where`` names it in messages."""
    shown = shown_name(where)
    if len(data) > limits.file_bytes:
        return Scan(unscanned=(Unscanned(shown, too_large(len(data), limits)),))
    return Scanner(limits=limits).run(shown, data)


def scan_bytes(where: str, data: bytes) -> list[Finding]:
    """The keys in one file's content, archives included (what could not be read aside)."""
    return list(scan_content(where, data).findings)
