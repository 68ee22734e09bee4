"""pyfn-oversized-files: files too large to ship, and archives Cloud Functions cannot extract.

Every file given is checked, not only newly added ones. A zip or wheel is also
measured by its uncompressed size (from its directory), and flagged when any
member uses a method other than Stored or Deflate.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from pyfn_action.hooks.archives import ArchiveError, is_zip, summarize
from pyfn_action.sizes import format_size, parse_size

DEFAULT_MAX = "10MB"


def check_file(path: Path, max_bytes: int) -> list[str]:
    """One line per problem with ``path``; none when it is fine."""
    problems = []
    size = path.stat().st_size
    if size > max_bytes:
        problems.append(f"{path} ({format_size(size)}) exceeds {format_size(max_bytes)}.")
    if is_zip(path):
        try:
            summary = summarize(path)
        except ArchiveError as exc:
            return [*problems, f"{path}: {exc}"]
        if summary.uncompressed_bytes > max_bytes:
            problems.append(
                f"{path} ({format_size(summary.uncompressed_bytes)} uncompressed) "
                f"exceeds {format_size(max_bytes)}."
            )
        for member, method in summary.unsupported[:3]:
            problems.append(
                f"{path}: {member} is compressed with {method}, which Cloud Functions cannot "
                "extract; re-create the archive with Deflate."
            )
        if len(summary.unsupported) > 3:
            problems.append(f"{path}: {len(summary.unsupported) - 3} more such members.")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyfn-oversized-files", description=__doc__)
    parser.add_argument("filenames", nargs="*")
    parser.add_argument(
        "--max-size",
        default=DEFAULT_MAX,
        help=f"largest size allowed, e.g. 500KB, 10MB, 95MiB (default {DEFAULT_MAX})",
    )
    args = parser.parse_args(argv)
    try:
        max_bytes = parse_size(args.max_size)
    except ValueError as exc:
        parser.error(f"--max-size: {exc}")
    failed = 0
    for name in args.filenames:
        path = Path(name)
        if not path.is_file() or path.is_symlink():
            continue
        for line in check_file(path, max_bytes):
            print(line)
            failed = 1
    return failed


if __name__ == "__main__":
    raise SystemExit(main())
