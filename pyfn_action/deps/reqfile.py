"""Read a function's ``requirements.txt`` before pip does, to fail early and clearly.

Every line is judged: a PEP 508 requirement, a local path inside the source
tree, a URL, or one of the pip options that make sense in a bundle. Included
files (``-r``, ``-c``) must stay inside the source tree too.

Checks that look at one file at a time and report each line in place (the
pre-commit hooks) read the same lines with :func:`requirement_specs`, and a
``pyproject.toml``'s dependencies with :func:`project_requirements`.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from pyfn_action.errors import Finding, RequirementsError
from pyfn_action.toml import tomllib

# Options pip accepts in a requirements file that pyfn passes through unchanged.
_PASS_OPTIONS = {
    "--index-url", "-i", "--extra-index-url", "--find-links", "-f", "--no-index",
    "--pre", "--prefer-binary", "--only-binary", "--no-binary", "--trusted-host",
}  # fmt: skip
_INCLUDE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
_REFUSED_OPTIONS = {
    "-e": "editable installs cannot be bundled; list the package itself",
    "--editable": "editable installs cannot be bundled; list the package itself",
}


@dataclass(frozen=True)
class Requirements:
    """What a requirements file asks for, judged line by line."""

    files: tuple[Path, ...]  # the file and every file it includes
    names: frozenset[str]  # canonical names of the named requirements
    lines: Mapping[str, tuple[Path, int]] = field(default_factory=dict)  # name → file, line

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
        findings=[Finding("requirements", f"{what}: {why}", path, lineno)],
    )


def _logical_lines(text: str) -> list[tuple[int, str]]:
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


def read_requirements(path: Path, root: Path) -> Requirements:
    """Judge ``path`` (and what it includes) against the source tree ``root``."""
    names: dict[str, tuple[Path, int]] = {}
    files: list[Path] = []
    _read(path, root.resolve(), names, files, depth=0)
    return Requirements(files=tuple(files), names=frozenset(names), lines=names)


def _read(
    path: Path, root: Path, names: dict[str, tuple[Path, int]], files: list[Path], depth: int
) -> None:
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
    files.append(path)
    for lineno, line in _logical_lines(text):
        _judge_line(path, lineno, line, root, names, files, depth)


def _judge_line(
    path: Path,
    lineno: int,
    line: str,
    root: Path,
    names: dict[str, tuple[Path, int]],
    files: list[Path],
    depth: int,
) -> None:
    if line.startswith("-"):
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise _error(path, lineno, line, str(exc), "Fix the quoting") from exc
        option, _, inline = words[0].partition("=")
        value = inline or (words[1] if len(words) > 1 else "")
        if option in _REFUSED_OPTIONS:
            raise _error(path, lineno, line, _REFUSED_OPTIONS[option], "Remove the line")
        if option in _INCLUDE_OPTIONS:
            if not value:
                raise _error(path, lineno, line, f"{option} needs a file name", "Name the file")
            _read(path.parent / value, root, names, files, depth + 1)
            return
        if option in _PASS_OPTIONS or option.startswith("--hash"):
            return
        raise _error(
            path,
            lineno,
            line,
            f"{option} is not an option pyfn can pass to pip in a requirements file",
            f"Use one of {', '.join(sorted(_PASS_OPTIONS))}, or set it in pyfn's configuration",
        )
    requirement = _requirement_text(line)
    if _is_local(requirement):
        local = path.parent / requirement.removeprefix("file:")
        if not local.resolve().is_relative_to(root):
            raise _error(
                path,
                lineno,
                line,
                "the path leads outside the function's directory",
                "Keep local packages inside the function's directory",
            )
        return
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
    names.setdefault(canonicalize_name(parsed.name), (path, lineno))


def _requirement_text(line: str) -> str:
    """The requirement on a line, without the ``--hash`` options pip allows after it."""
    return line.split(" --hash", 1)[0].strip().rstrip(";").strip()


def _is_local(requirement: str) -> bool:
    """Whether a requirement names a local path rather than a distribution."""
    return requirement.startswith((".", "/")) or requirement.startswith("file:")


def requirement_specs(text: str) -> Iterator[tuple[int, str]]:
    """(line number, requirement) for every requirement a requirements file names.

    The lines are read as :func:`read_requirements` reads them (continuations joined,
    comments and ``--hash`` options dropped); options, included files and local paths
    are passed over. The requirements are not parsed: whoever checks them reports a
    bad one at its line.
    """
    for lineno, line in _logical_lines(text):
        if line.startswith("-"):
            continue
        requirement = _requirement_text(line)
        if requirement and not _is_local(requirement):
            yield lineno, requirement


def project_requirements(text: str) -> list[str]:
    """Every requirement of a ``pyproject.toml``'s ``[project]``: its dependencies, then
    each optional group's. Raises ``tomllib.TOMLDecodeError`` for text that is not TOML."""
    project = tomllib.loads(text).get("project", {})
    specs = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        specs += group
    return [str(spec) for spec in specs]
