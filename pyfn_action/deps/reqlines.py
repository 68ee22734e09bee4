"""A requirements file's lines as pip reads them, and what pip takes from them besides
the requirements: the hashes they pin and the package sources they name.

:mod:`.reqfile` judges each line against the function's source; these read the
text alone (continuations joined, comments dropped, options split), so whoever
writes or checks requirements for pip reads them the same way.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and drop comments, keeping the first line number."""
    out: list[tuple[int, str]] = []
    buffer, start = "", 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not buffer:
            start = lineno
        if raw.endswith("\\"):
            buffer += raw[:-1]
            continue
        line = buffer + raw
        buffer = ""
        # pip strips comments that start a line or follow whitespace.
        if line.lstrip().startswith("#"):
            continue
        if " #" in line or "\t#" in line:
            line = line[: min(i for i in (line.find(" #"), line.find("\t#")) if i >= 0)]
        if line.strip():
            out.append((start, line.strip()))
    if buffer.strip():
        out.append((start, buffer.strip()))
    return out


def requirement_text(line: str) -> str:
    """The requirement on a line, without the ``--hash`` options pip allows after it."""
    return line.split(" --hash", 1)[0].strip().rstrip(";").strip()


_HASH = re.compile(r"--hash[= ]\s*(?P<algorithm>[A-Za-z0-9]+):(?P<digest>[0-9A-Fa-f]+)")


def split_option(line: str) -> tuple[str, str]:
    """(option, value) of an option line: ``-f wheels``, ``--find-links=wheels``."""
    words = shlex.split(line)
    option, _, inline = words[0].partition("=")
    return option, inline or (words[1] if len(words) > 1 else "")


def lines_through_includes(path: Path) -> Iterator[tuple[Path, str]]:
    """(file, logical line) of ``path`` and, in their place, of the files it includes
    (``-r``, ``-c``), each file once: the lines as pip reads them."""
    seen: set[Path] = set()

    def lines(current: Path) -> Iterator[tuple[Path, str]]:
        if current in seen:
            return
        seen.add(current)
        for _, line in logical_lines(current.read_text(encoding="utf-8")):
            option, value = split_option(line) if line.startswith("-") else ("", "")
            if option in INCLUDE_OPTIONS and value:
                yield from lines(current.parent / value)
            else:
                yield current, line

    yield from lines(path)


def pinned_hashes(path: Path) -> tuple[dict[str, set[str]], bool]:
    """The SHA-256 hashes each requirement of ``path`` (and the files it includes) pins
    with ``--hash``, by canonical name, and whether ``--require-hashes`` is given: pip's
    hash-checking mode is on when either is."""
    found: dict[str, set[str]] = {}
    required = False
    for _, line in lines_through_includes(path):
        if line.startswith("-"):
            required = required or split_option(line)[0] == "--require-hashes"
            continue
        digests = {
            m["digest"].lower() for m in _HASH.finditer(line) if m["algorithm"].lower() == "sha256"
        }
        try:
            name: str = canonicalize_name(Requirement(requirement_text(line)).name)
        except InvalidRequirement:
            name = requirement_text(line)  # a path or URL: it has no name to pin by
        if digests or _HASH.search(line):
            found.setdefault(name, set()).update(digests)
    return found, required


_SOURCE_OPTIONS = {
    "--index-url": "--index-url",
    "-i": "--index-url",
    "--extra-index-url": "--extra-index-url",
    "--find-links": "--find-links",
    "-f": "--find-links",
    "--no-index": "--no-index",
}


def source_options(path: Path) -> list[str]:
    """pip's arguments for the package sources that ``path`` (and the files it includes)
    names on lines of their own (``--no-index``, ``--find-links DIR``, …): a local
    find-links directory is made absolute, as pip reads it relative to its file."""
    args: list[str] = []
    for current, line in lines_through_includes(path):
        if not line.startswith("-"):
            continue
        option, value = split_option(line)
        flag = _SOURCE_OPTIONS.get(option)
        if flag == "--no-index":
            args.append(flag)
        elif flag and value:
            beside = Path(os.path.abspath(current.parent), value)
            local = flag == "--find-links" and os.path.exists(beside)
            args += [flag, str(beside) if local else value]
    return args
