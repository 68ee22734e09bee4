"""pyfn-no-credentials: keys that must never ship inside a function.

A thin hook over :mod:`pyfn_action.secrets`, the scanner ``pyfn build`` uses: private
keys (PEM, PGP, DER, PKCS#12, Java key stores), Google service-account keys and user
credentials, also base64-encoded, in UTF-16, and inside zip archives, wheels and
tarballs, nested. One line per finding, naming the file (``archive.zip!member``) and
the kind of key, never the key; one line per file or member that could not be
scanned (too large, encrypted, damaged, or a limit reached), which fails the hook too:
exclude such a file from the hook once you know it holds no key.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from pyfn_action.secrets import (
    ADVICE,
    MAX_FILE_BYTES,
    Finding,
    Scan,
    Unscanned,
    iter_lines,
    scan_bytes,
    scan_file,
    shown_name,
)

MAX_SCANNED_BYTES = MAX_FILE_BYTES

__all__ = [
    "ADVICE",
    "MAX_SCANNED_BYTES",
    "Finding",
    "Unscanned",
    "main",
    "scan_bytes",
    "scan_files",
    "scan_path",
]


def scan_path(path: Path) -> Scan:
    """A file, and its members when it is an archive."""
    return scan_file(path)


def scan_files(paths: Iterable[Path]) -> list[Scan]:
    """Regular files only: links, directories, FIFOs and devices are passed over."""
    scans = []
    for path in paths:
        try:
            mode = os.lstat(path).st_mode
        except OSError as exc:
            reason = exc.strerror or str(exc)
            why = f"cannot be read ({reason})"
            scans.append(Scan(unscanned=(Unscanned(shown_name(str(path)), why),)))
            continue
        if stat.S_ISREG(mode):
            scans.append(scan_path(path))
    return scans


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyfn-no-credentials", description=__doc__)
    parser.add_argument("filenames", nargs="*")
    args = parser.parse_args(argv)
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")  # a terminal that is not UTF-8
    failed = False
    for scan in scan_files(Path(n) for n in args.filenames):
        for line in iter_lines(scan):
            print(line)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
