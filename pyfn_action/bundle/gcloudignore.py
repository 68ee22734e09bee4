"""Ignore files as gcloud reads them: ``#!include:FILE``, and ``.gcloudignore``'s matcher.

Reading: an ignore file is read only if it is a regular file that resolves inside the
function's directory; ``#!include:FILE`` names a file beside it (a name with ``/`` is
refused), and an included file's own includes are not followed, as in gcloud.

Matching: a ``.gcloudignore`` keeps exactly the meaning it has for ``gcloud functions
deploy`` (googlecloudsdk/command_lib/util/gcloudignore.py and glob.py): parts of a
pattern match path parts from the right with fnmatch, a leading ``/`` anchors, ``**``
matches any number of parts; which rule decides a path is the trim step's business.

Default: with no ``.gcloudignore``, gcloud's own default for functions stands in for
one when the directory holds a ``.git``, a ``.gitignore`` or a ``node_modules``
(googlecloudsdk/command_lib/functions/source_util.py), followed by the rules of the
``.gitignore`` if there is one.
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
from importlib import resources
from pathlib import Path

from pyfn_action.errors import TrimError

log = logging.getLogger(__name__)

_INCLUDE = "!include:"
_DEFAULT_FILE = "gcloudignore-default.txt"
_DEFAULT_ORIGIN = "gcloud's default"
_DEFAULT_TRIGGERS = (".git", ".gitignore", "node_modules")


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


def _lines(text: str, *, git: bool) -> list[str]:
    """The lines of an ignore file: as git splits them (a byte-order mark skipped, a
    CR before each LF dropped), or as gcloud does (Python's ``splitlines``)."""
    if not git:
        return text.splitlines()
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and not lines[-1]:
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_ignore(
    path: Path, root: Path, *, nested: bool = False, git: bool = False
) -> list[tuple[str, int, str]]:
    """(file, line, pattern) from an ignore file, following ``#!include:FILE`` as gcloud
    does: FILE must be beside ``path``; an included file's own includes are not followed.
    Lines are split as git splits them when ``git``, else as gcloud does; blank lines
    and comments are left out."""
    shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    text = _read_text(path, root, shown=shown)
    out: list[tuple[str, int, str]] = []
    for number, line in enumerate(_lines(text, git=git), 1):
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
                out += read_ignore(path.parent / name, root, nested=True, git=git)
            continue
        if line.strip(" "):
            out.append((path.name, number, line))
    return out


def default_rules(source: Path) -> tuple[list[tuple[str, int, str]], str]:
    """What ``gcloud functions deploy`` leaves out of ``source`` when it has no
    ``.gcloudignore``: (file, line, pattern) as :func:`read_ignore` gives them, and a
    sentence saying which default applies.

    gcloud uses its default ignore file when the directory holds a ``.git``, a
    ``.gitignore`` or a ``node_modules``, and follows it with
    ``#!include:.gitignore`` when a ``.gitignore`` exists; otherwise it uploads
    every file."""
    present = [name for name in _DEFAULT_TRIGGERS if os.path.exists(source / name)]
    if not present:
        return [], (
            "no .gcloudignore, and no .git, .gitignore or node_modules: gcloud would upload "
            "every file, and pyfn bundles every file but those it always skips"
        )
    text = resources.files("pyfn_action").joinpath(f"data/{_DEFAULT_FILE}").read_text()
    rules = [
        (_DEFAULT_ORIGIN, number, line)
        for number, line in enumerate(text.splitlines(), 1)
        if line.strip() and not line.startswith("#")
    ]
    shown = ", ".join(line for _, _, line in rules)
    if ".gitignore" in present:
        rules += read_ignore(source / ".gitignore", source, nested=True)
        shown += ", then the rules of .gitignore"
    return rules, (
        f"no .gcloudignore: using gcloud's default for a directory with {' and '.join(present)}"
        f" ({shown}), as `gcloud functions deploy` would"
    )


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


@dataclass(frozen=True)
class GcloudPattern:
    """One ``.gcloudignore`` pattern, for the paths under ``base`` (the function's
    directory in the bundle)."""

    base: str
    glob: _Glob

    @property
    def negated(self) -> bool:
        return self.glob.negated

    def matches(self, path: str, raw: bytes, is_dir: bool) -> bool:
        """Whether gcloud's pattern matches ``path`` (``raw`` is not needed: gcloud
        matches text)."""
        if not path.startswith(self.base) or path == self.base:
            return False
        glob = self.glob
        if glob.must_be_dir and not is_dir:
            return False
        rel = path[len(self.base) :]
        if not glob.literals <= frozenset(rel.split("/")):
            return False  # a quick no: a name the pattern spells out is not in the path
        final = glob.parts[-1]
        if final != "**" and not fnmatch.fnmatchcase(rel.rpartition("/")[2], final):
            return False  # a quick no: the last part must match the last name
        return _glob_matches(glob.parts, rel)


def gcloud_pattern(line: str, base: str) -> GcloudPattern | None:
    """The pattern of a ``.gcloudignore`` line for the paths under ``base``, or
    ``None`` for a line gcloud skips."""
    glob = gcloud_glob(line)
    return None if glob is None else GcloudPattern(base, glob)
