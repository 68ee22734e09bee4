"""Ignore files as gcloud reads them: ``#!include:FILE``, and ``.gcloudignore``'s matcher.

Reading: an ignore file is read only if it is a regular file that resolves inside the
function's directory; ``#!include:FILE`` names a file beside it (a name with ``/`` is
refused), and an included file's own includes are not followed, as in gcloud.

Matching: a ``.gcloudignore`` keeps exactly the meaning it has for ``gcloud functions
deploy`` (googlecloudsdk/command_lib/util/gcloudignore.py and glob.py): parts of a
pattern match path parts from the right with fnmatch, a leading ``/`` anchors, ``**``
matches any number of parts, and nothing inside an ignored directory comes back.
"""

from __future__ import annotations

import fnmatch
import functools
import logging
import os
import posixpath
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.errors import ConfigError

log = logging.getLogger(__name__)

_INCLUDE = "!include:"


class TrimError(ConfigError):
    """A trim rule cannot be read, or would remove a file the bundle needs."""


def _inside(path: Path, root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def _read_text(path: Path, root: Path, *, shown: str) -> str:
    """An ignore file's text, if it is a regular file inside ``root`` (links resolved)."""
    try:
        resolved = path.resolve()
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, RuntimeError) as exc:  # a link loop
        raise TrimError(f"Cannot read {shown}", why=str(exc)) from exc
    if not inside:
        raise TrimError(
            f"{shown} is outside the function's directory",
            why=f"it resolves to {resolved}; pyfn never reads files outside the function's "
            "directory",
            fix="Keep ignore files and the files they include inside the function's directory",
        )
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(resolved, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise TrimError(f"Cannot read {shown}", why=exc.strerror or str(exc)) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TrimError(
                f"Cannot read {shown}", why="it is not a regular file", fix="Name a file"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read()
    finally:
        os.close(fd)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TrimError(f"Cannot read {shown}", why=f"it is not UTF-8 text ({exc})") from exc


def read_ignore(path: Path, root: Path, *, nested: bool = False) -> list[tuple[str, int, str]]:
    """(file, line, pattern) from an ignore file, following ``#!include:FILE`` as gcloud
    does: FILE must be beside ``path``; an included file's own includes are not followed."""
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    text = _read_text(path, root, shown=shown)
    out: list[tuple[str, int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            if line[1:].lstrip().startswith(_INCLUDE):
                name = line[line.find(_INCLUDE) + len(_INCLUDE) :]
                if "/" in name:
                    outside = not _inside(path.parent / name, root)
                    raise TrimError(
                        f"{shown}:{number}: cannot include {name!r}"
                        + (", which is outside the function's directory" if outside else ""),
                        why="#!include may only include files in the same directory (as in gcloud)",
                        fix=f"Copy the rules into {path.name}, or include a file beside it",
                    )
                if nested:
                    log.info("%s:%d: %s is not followed in an included file", shown, number, line)
                    continue
                out += read_ignore(path.parent / name, root, nested=True)
            continue
        if line.strip():
            out.append((path.name, number, line))
    return out


# gcloud's matcher


@dataclass(frozen=True)
class _Glob:
    parts: tuple[str, ...]
    negated: bool
    must_be_dir: bool

    @functools.cached_property
    def literals(self) -> frozenset[str]:
        """Parts without wildcards: each must be one of a matching path's names."""
        return frozenset(p for p in self.parts if p not in ("", "**") and not _WILD.search(p))


_WILD = re.compile(r"[*?\[]")
_ODD_BACKSLASHES = re.compile(r"(?<!\\)\\(\\\\)*$")


def _handle_spaces(line: str) -> str:
    """Unescaped trailing spaces stripped, escaped spaces unescaped."""
    tokens: list[str] = []
    i = 0
    while i < len(line):
        if line[i] == "\\" and i + 1 < len(line):
            tokens.append(line[i : i + 2])
            i += 2
        else:
            tokens.append(line[i])
            i += 1
    while tokens and tokens[-1] == " ":
        tokens.pop()
    return "".join(tokens).replace("\\ ", " ")


@functools.lru_cache(maxsize=1024)
def gcloud_glob(line: str) -> _Glob | None:
    """The pattern of a ``.gcloudignore`` line, or ``None`` for a line gcloud skips."""
    negated = line.startswith("!")
    body = line[1:] if negated else line
    must_be_dir = body.endswith("/")
    if must_be_dir:
        body = body[:-1]
    body = _handle_spaces(body)
    if _ODD_BACKSLASHES.search(body):
        return None  # ends in an odd number of backslashes
    body = re.sub(r"\\([^\\])", r"\1", body).replace("\\\\", "\\")
    if not body:
        return None  # blank
    return _Glob(tuple(body.split("/")), negated, must_be_dir)


def _prefixes(path: str) -> list[str]:
    """'a/b/c' → ['', 'a', 'a/b', 'a/b/c']."""
    parts = path.split("/")
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _glob_matches(parts: Sequence[str], path: str | None) -> bool:
    if not parts:
        return True
    if path is None:
        return False  # '*' matches the root, '/*' does not
    part, rest = parts[-1], list(parts[:-1])
    if path:
        path = posixpath.normpath(path)
    head, tail = posixpath.split(path)
    remaining: str | None = head if tail else None
    if part == "**":
        if not (rest and rest[0] == ""):
            rest.insert(0, "")
        return any(_glob_matches(rest, prefix) for prefix in _prefixes(path))
    if part == "*" and not rest and remaining and len(remaining) > 1:
        return False  # a leading '*' spans one directory (gcloud's own test)
    if not fnmatch.fnmatchcase(tail, part):
        return False
    return _glob_matches(rest, remaining)


Decision = tuple[int, bool]  # (index of the deciding rule, whether it ignores)


def _last_match(
    rules: Sequence[tuple[int, str]],
    prefix: str,
    is_dir: bool,
    memo: dict[tuple[str, bool], Decision | None],
) -> Decision | None:
    """The last rule matching ``prefix``, remembered: files share their directories."""
    key = (prefix, is_dir)
    if key not in memo:
        last: Decision | None = None
        names = frozenset(prefix.split("/"))
        for index, line in rules:
            glob = gcloud_glob(line)
            assert glob is not None
            if glob.must_be_dir and not is_dir:
                continue
            if not glob.literals <= names:
                continue  # a quick no: a name the pattern spells out is not in the path
            final = glob.parts[-1]
            if final != "**" and not fnmatch.fnmatchcase(prefix.rpartition("/")[2], final):
                continue  # a quick no: the last part must match the last name
            if _glob_matches(glob.parts, prefix):
                last = (index, not glob.negated)
        memo[key] = last
    return memo[key]


def gcloud_decision(
    rules: Sequence[tuple[int, str]],
    path: str,
    memo: dict[tuple[str, bool], Decision | None],
) -> Decision | None:
    """(index of the deciding rule, whether it ignores ``path``) as gcloud decides, from
    ``rules`` as (index, ``.gcloudignore`` line) in order, ``path`` being relative to
    the function's directory; ``None`` if no rule matches.

    Each prefix of the path (its directories, then itself) is judged by the last
    rule matching it; the first ignored prefix ignores the path, so nothing inside
    an ignored directory comes back."""
    decided: Decision | None = None
    for prefix in _prefixes(path)[1:]:  # the root directory cannot be matched
        last = _last_match(rules, prefix, prefix != path, memo)
        if last is not None and last[1]:
            return last
        if prefix == path:
            decided = last
    return decided
