"""Read a function's ``requirements.txt`` before pip does, to fail early and clearly.

Every line is judged: a PEP 508 requirement, a local path inside the source
tree, a URL, or one of the pip options that make sense in a bundle. Included
files (``-r``, ``-c``) must stay inside the source tree too.

A local requirement (``./pkg``, ``file:pkg``, ``name @ file:…``, an archive's
name) is read as pip reads it, but relative to the requirements file that names
it, and found inside the source: :class:`LocalRequirement` says where. Each
file's judged lines are kept (:class:`Line`), for :mod:`.localreqs` to write
them back for pip.

Checks that look at one file at a time and report each line in place (the
pre-commit hooks) read the same lines with :func:`requirement_specs`, and a
``pyproject.toml``'s dependencies with :func:`project_requirements`.
"""

from __future__ import annotations

import os
import re
import shlex
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pyfn_action.deps.reqlines import (
    INCLUDE_OPTIONS,
    logical_lines,
    requirement_text,
    split_option,
)
from pyfn_action.errors import Finding, RequirementsError
from pyfn_action.toml import tomllib

# Options pip accepts in a requirements file that pyfn passes through unchanged.
_PASS_OPTIONS = {
    "--index-url",
    "-i",
    "--extra-index-url",
    "--find-links",
    "-f",
    "--no-index",
    "--pre",
    "--prefer-binary",
    "--only-binary",
    "--no-binary",
    "--trusted-host",
    "--require-hashes",
}
_FIND_LINKS_OPTIONS = {"--find-links", "-f"}
_REFUSED_OPTIONS = {
    "-e": "editable installs cannot be bundled; list the package itself",
    "--editable": "editable installs cannot be bundled; list the package itself",
}
# File names pip takes for a local archive even without a path (pip's ARCHIVE_EXTENSIONS).
_ARCHIVES = (
    ".whl",
    ".zip",
    ".tar.gz",
    ".tgz",
    ".tar",
    ".tar.bz2",
    ".tbz",
    ".tar.xz",
    ".txz",
    ".tlz",
    ".tar.lz",
    ".tar.lzma",
)
_EXTRAS = re.compile(r"^(.+)(\[[^\]]+\])$")  # pip's: ./pkg[extra]


@dataclass(frozen=True)
class LocalRequirement:
    """A line naming a directory or an archive of the source, and where it really is."""

    file: Path  # the requirements file that names it
    line: int
    written: str  # the location as the line writes it: ./pkg, file:pkg, file:///…
    path: Path  # what it names, resolved: inside the source
    relative: str  # ``path`` relative to the source (POSIX), "." for the source itself


@dataclass(frozen=True)
class Line:
    """One logical line of a requirements file, as judged."""

    number: int  # where it starts in its file
    text: str
    local: LocalRequirement | None = None
    include: tuple[str, Path] | None = None  # (-r or -c, the file it names)
    # (-f, the path) of find-links pip reads relative to the file: where that exists
    find_links: tuple[str, Path] | None = None


@dataclass(frozen=True)
class Requirements:
    """What a requirements file asks for, judged line by line."""

    files: tuple[Path, ...]  # the file and every file it includes
    names: frozenset[str]  # canonical names of the named requirements
    lines: Mapping[str, tuple[Path, int]] = field(default_factory=dict)  # name → file, line
    local: tuple[LocalRequirement, ...] = ()  # every local requirement, in reading order
    judged: Mapping[Path, tuple[Line, ...]] = field(default_factory=dict)  # each file's lines

    def where(self, name: str) -> tuple[Path | None, int | None]:
        """The file and line that name a distribution; else the file, for one pulled in."""
        found = self.lines.get(canonicalize_name(name))
        if found is not None:
            return found
        return (self.files[0] if self.files else None), None


def _error(path: Path, lineno: int, line: str, why: str, fix: str) -> RequirementsError:
    what = f"cannot use {line.strip()!r}"
    return RequirementsError(
        f"{path}:{lineno}: {what}",
        why=why,
        fix=fix,
        findings=[Finding(kind="requirements", message=f"{what}: {why}", file=path, line=lineno)],
    )


@dataclass
class _Reading:
    """What reading a requirements file and its includes has found so far."""

    root: Path  # the source, resolved
    names: dict[str, tuple[Path, int]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)
    judged: dict[Path, tuple[Line, ...]] = field(default_factory=dict)


def read_requirements(path: Path, root: Path) -> Requirements:
    """Judge ``path`` (and what it includes) against the source tree ``root``."""
    reading = _Reading(root=root.resolve())
    _read(path, reading, depth=0)
    names = reading.names
    local = tuple(
        line.local for f in dict.fromkeys(reading.files) for line in reading.judged[f] if line.local
    )
    return Requirements(
        files=tuple(reading.files),
        names=frozenset(names),
        lines=names,
        local=local,
        judged=dict(reading.judged),
    )


def _read(path: Path, reading: _Reading, depth: int) -> None:
    root = reading.root
    if depth > 10:
        raise RequirementsError(f"{path}: requirements files include each other too deeply")
    if not path.resolve().is_relative_to(root):
        raise RequirementsError(
            f"Requirements file {path} is outside the source tree {root}",
            why="pyfn never reads files outside the function's directory",
            fix="Copy the file into the function's directory",
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RequirementsError(f"{path} is not UTF-8 text", why=str(exc)) from exc
    except OSError as exc:
        raise RequirementsError(f"Cannot read {path}", why=exc.strerror or str(exc)) from exc
    reading.files.append(path)
    judged = [
        _judge_line(path, lineno, line, reading, depth) for lineno, line in logical_lines(text)
    ]
    reading.judged[path] = tuple(judged)


def _judge_line(path: Path, lineno: int, line: str, reading: _Reading, depth: int) -> Line:
    if line.startswith("-"):
        try:
            option, value = split_option(line)
        except ValueError as exc:
            raise _error(path, lineno, line, str(exc), "Fix the quoting") from exc
        if option in _REFUSED_OPTIONS:
            raise _error(path, lineno, line, _REFUSED_OPTIONS[option], "Remove the line")
        if option in INCLUDE_OPTIONS:
            if not value:
                raise _error(path, lineno, line, f"{option} needs a file name", "Name the file")
            _read(path.parent / value, reading, depth + 1)
            return Line(number=lineno, text=line, include=(option, path.parent / value))
        beside = Path(os.path.abspath(path.parent), value)
        if option in _FIND_LINKS_OPTIONS and value and os.path.exists(beside):
            return Line(number=lineno, text=line, find_links=(option, beside))
        if option in _PASS_OPTIONS or option.startswith("--hash"):
            return Line(number=lineno, text=line)
        raise _error(
            path,
            lineno,
            line,
            f"{option} is not an option pyfn can pass to pip in a requirements file",
            f"Use one of {', '.join(sorted(_PASS_OPTIONS))}, or set it in pyfn's configuration",
        )
    requirement = requirement_text(line)
    location = _location(requirement)
    if location is not None:
        return Line(
            number=lineno, text=line, local=_judge_local(path, lineno, line, location, reading.root)
        )
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as exc:
        raise _error(
            path,
            lineno,
            line,
            f"it is not a valid requirement ({exc})",
            "Write it as PEP 508 requires, e.g. requests>=2.31 or name @ https://host/name.whl",
        ) from exc
    reading.names.setdefault(canonicalize_name(parsed.name), (path, lineno))
    url = parsed.url or ""
    if _scheme(url).endswith("+file"):
        raise _error(
            path,
            lineno,
            line,
            "a repository on this machine is read from wherever it is, outside what pyfn judges",
            "List the package's directory inside the function's directory instead (./pkg)",
        )
    if _scheme(url) == "file":
        return Line(
            number=lineno, text=line, local=_judge_local(path, lineno, line, url, reading.root)
        )
    return Line(number=lineno, text=line)


def _scheme(text: str) -> str:
    """The URL scheme ``text`` starts with, lowercase, as pip tells a URL ("" if none)."""
    scheme, colon, _ = text.partition(":")
    return scheme.lower() if colon and re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme) else ""


def _looks_like_path(name: str) -> bool:
    return name.startswith(".") or "/" in name


def _location(requirement: str) -> str | None:
    """The path or ``file:`` URL a requirement line names, as pip tells one, or None
    for a named requirement.

    pip takes a ``file:`` URL (up to ``; `` and its markers) and, before any ``;``
    marker and ``[extras]``, a name that looks like a path (``.`` first, or a ``/``)
    or like an archive's file name (``pkg-1.0.tar.gz``), unless it is
    ``name @ URL``."""
    if _scheme(requirement) == "file":
        return requirement.split("; ", 1)[0].strip()
    name = requirement.split(";", 1)[0].strip()
    head, at, _ = name.partition("@")
    if at and not _looks_like_path(head):
        return None
    match = _EXTRAS.match(name)
    path = match.group(1) if match else name
    if _looks_like_path(name) or path.lower().endswith(_ARCHIVES):
        return path
    return None


def _named_path(location: str, base: Path) -> Path | None:
    """The path a location names, relative to ``base``; None for another host's URL."""
    if _scheme(location) != "file":
        return base / location
    parts = urllib.parse.urlsplit(location)
    if parts.netloc not in ("", "localhost"):
        return None
    return base / urllib.parse.unquote(parts.path)


def _judge_local(path: Path, lineno: int, line: str, location: str, root: Path) -> LocalRequirement:
    """Where a local requirement is: relative to its requirements file, inside ``root``."""
    named = _named_path(location, path.parent)
    if named is None:
        raise _error(
            path,
            lineno,
            line,
            "a file: URL naming another host is read from outside the function's directory",
            "Keep local packages inside the function's directory and name them by path",
        )
    try:
        resolved = named.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise _error(path, lineno, line, str(exc), "Fix the links on that path") from exc
    if not resolved.is_relative_to(root):
        raise _error(
            path,
            lineno,
            line,
            "the path leads outside the function's directory",
            "Keep local packages inside the function's directory",
        )
    if not (resolved.is_dir() or resolved.is_file()):
        raise _error(
            path,
            lineno,
            line,
            f"there is no directory or file {named}",
            "Name the package by its path relative to the requirements file",
        )
    relative = resolved.relative_to(root).as_posix()
    return LocalRequirement(
        file=path, line=lineno, written=location, path=resolved, relative=relative
    )


def path_named(text: str) -> str | None:
    """The absolute path a line written for pip names (a local requirement, or an option's
    value), read as :func:`read_requirements` reads it; None if it names no one path."""
    logical = logical_lines(text)
    if len(logical) != 1:
        return None
    line = logical[0][1]
    if line.startswith("-"):
        try:
            words = shlex.split(line)
        except ValueError:
            return None
        return words[1] if len(words) == 2 else None
    requirement = requirement_text(line)
    location = _location(requirement)
    if location is None:
        try:
            location = Requirement(requirement).url
        except InvalidRequirement:
            return None
    named = _named_path(location or "", Path("/"))
    return None if named is None else str(named)


def requirement_specs(text: str) -> Iterator[tuple[int, str]]:
    """(line number, requirement) for every requirement a requirements file names.

    The lines are read as :func:`read_requirements` reads them (continuations joined,
    comments and ``--hash`` options dropped); options, included files and local paths
    are passed over. The requirements are not parsed: whoever checks them reports a
    bad one at its line.
    """
    for lineno, line in logical_lines(text):
        if line.startswith("-"):
            continue
        requirement = requirement_text(line)
        if requirement and _location(requirement) is None:
            yield lineno, requirement


def project_requirements(text: str) -> list[str]:
    """Every requirement of a ``pyproject.toml``'s ``[project]``: its dependencies, then
    each optional group's. Raises ``tomllib.TOMLDecodeError`` for text that is not TOML."""
    project = tomllib.loads(text).get("project", {})
    specs = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        specs += group
    return [str(spec) for spec in specs]
