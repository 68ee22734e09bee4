"""Local requirements (``./pkg``, ``file:`` URLs, archives of the source): their files'
digest, and private copies for pip.

pip reads a relative path in a requirements file against its working directory,
not the file's, and builds a project directory in place: setuptools leaves
``build/`` and ``*.egg-info`` there. So pip never sees the function's own paths.
Each local requirement is copied, from where :mod:`.reqfile` judged it, into the
build's private directory, and pip reads copies of the requirement files that name
those copies by absolute path.

:func:`digest` covers every file of every local requirement (relative paths,
bytes, the executable bit, links inside it), so the installed site is keyed by
what is installed. A copy is used only if it has that same digest: what pip
installs is what the key was made of. A link that leads out of its local
requirement, or a file that is neither regular, a directory nor a link, is refused.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

from pyfn_action.deps.reqfile import Line, LocalRequirement, Requirements, path_named
from pyfn_action.errors import RequirementsError

_CHUNK = 1 << 20


def local_paths(requirements: Requirements | None) -> tuple[Path, ...]:
    """Every directory or archive the requirements name in the source, once each (what
    :func:`digest` covers)."""
    return tuple(local.path for local in _distinct(requirements))


def digest(requirements: Requirements | None) -> str:
    """A SHA-256 over the files of every local requirement ("" when there are none)."""
    return _digest(_distinct(requirements), None)


def pip_files(requirements: Requirements | None, work: Path, *, expected: str) -> list[Path]:
    """The requirement files pip should read for ``requirements``.

    With no local requirement, the file itself. Otherwise every local requirement
    is copied into ``work`` and must have the digest ``expected`` (what the site
    cache was keyed by), and the requirement files are written there too, naming
    the copies."""
    if requirements is None:
        return []
    if not requirements.local:
        return [requirements.files[0]]
    moved: dict[Path, Path] = {}
    locals_ = _distinct(requirements)
    for n, local in enumerate(locals_):
        moved[local.path] = work / "packages" / str(n) / local.path.name
    copied = _digest(locals_, moved)
    if copied != expected:
        raise RequirementsError(
            "A local requirement changed while pyfn copied it",
            why="what is installed must be what the installed site is filed under",
            fix="Build again once nothing writes to the local packages",
        )
    files = list(dict.fromkeys(requirements.files))
    for n, file in enumerate(files):
        moved[file] = work / "files" / str(n) / file.name
    for file in files:
        moved[file].parent.mkdir(parents=True, exist_ok=True)
        moved[file].write_text(_for_pip(requirements.judged[file], moved), encoding="utf-8")
    return [moved[files[0]]]


def _for_pip(lines: Sequence[Line], moved: Mapping[Path, Path]) -> str:
    """A judged requirements file as pip should read it: each local requirement and each
    included file named by ``moved[its path]`` (absolute), find-links that pip would
    take beside the file by their absolute path, every other line as it was.

    Each line keeps its line number, so pip's messages still point at the user's
    lines. A new line that pip would not read back as exactly that path (a path with
    characters a requirements file reads as syntax) is refused."""
    out = [""] * max((line.number for line in lines), default=0)
    for line in lines:
        text = line.text
        if line.local is not None:
            text = _moved_local(line, moved[line.local.path])
        elif line.include is not None:
            text = _moved_option(line.include[0], moved[line.include[1]])
        elif line.find_links is not None:
            text = _moved_option(*line.find_links)
        out[line.number - 1] = text
    return "".join(f"{text}\n" for text in out)


def _moved_option(option: str, to: Path) -> str:
    text = f"{option} {shlex.quote(str(to))}"
    if path_named(text) != str(to):
        raise _unnamable(to)
    return text


def _moved_local(line: Line, to: Path) -> str:
    assert line.local is not None
    written = line.local.written
    if written.lower().startswith("file:"):  # a URL stays one, a path a path
        parts = urllib.parse.urlsplit(written)
        new = urllib.parse.urlunsplit(
            ("file", "", urllib.parse.quote(str(to)), parts.query, parts.fragment)
        )
    else:
        new = str(to)
    text = line.text.replace(written, new, 1)
    if path_named(text) != str(to):
        raise _unnamable(to)
    return text


def _unnamable(path: Path) -> RequirementsError:
    return RequirementsError(
        f"Cannot name {path} to pip in a requirements file",
        why="its path holds characters a requirements file reads as syntax (#, ;, [ or @)",
        fix="Use a cache_dir (and a function directory) whose path holds none of them",
    )


def _distinct(requirements: Requirements | None) -> list[LocalRequirement]:
    """The local requirements, one per path, in reading order."""
    first: dict[Path, LocalRequirement] = {}
    for local in requirements.local if requirements is not None else ():
        first.setdefault(local.path, local)
    return list(first.values())


def _digest(locals_: list[LocalRequirement], copies: dict[Path, Path] | None) -> str:
    if not locals_:
        return ""
    total = hashlib.sha256()
    for local in locals_:
        copy = None if copies is None else copies[local.path]
        if copy is not None and copy.resolve().is_relative_to(local.path):
            raise RequirementsError(
                f"The local requirement {local.relative} holds pyfn's cache directory",
                why="pyfn copies a local requirement before building it",
                fix="Set cache_dir to a directory outside the function's directory",
            )
        total.update(f"{local.relative}\0{_tree(local.path, copy)}\n".encode())
    return total.hexdigest()


def _tree(top: Path, copy: Path | None) -> str:
    """A SHA-256 of the tree at ``top`` (a directory or a file), copied to ``copy``."""
    digest = hashlib.sha256()
    if copy is not None:
        copy.parent.mkdir(parents=True, exist_ok=True)
    for rel, path, st in _entries(top):
        name = rel.encode("utf-8", "surrogateescape")
        to = None if copy is None else (copy / rel if rel else copy)
        if stat.S_ISDIR(st.st_mode):
            digest.update(b"d " + name + b"\0")
            if to is not None:
                to.mkdir()
        elif stat.S_ISLNK(st.st_mode):
            target = _inside_link(top, path)
            digest.update(b"l " + name + b"\0" + target.encode("utf-8", "surrogateescape") + b"\0")
            if to is not None:
                os.symlink(target, to)
        else:
            executable = bool(st.st_mode & 0o111)
            content = _copy_file(path, to, executable)
            digest.update(b"f " + name + b"\0" + (b"x" if executable else b"-") + content + b"\0")
    return digest.hexdigest()


def _entries(top: Path, rel: str = "") -> Iterator[tuple[str, Path, os.stat_result]]:
    """(relative POSIX path, path, lstat) of ``top`` and everything below, sorted; never
    through a link."""
    path = top / rel if rel else top
    try:
        st = path.lstat()
        names = sorted(os.listdir(path)) if stat.S_ISDIR(st.st_mode) else []
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
        raise _refused(path, "is not a regular file, a directory or a link")
    yield rel, path, st
    for name in names:
        yield from _entries(top, f"{rel}/{name}" if rel else name)


def _inside_link(top: Path, link: Path) -> str:
    """A link's target relative to the link, if it resolves inside ``top``; else refused."""
    try:
        resolved = link.resolve()
    except (OSError, RuntimeError) as exc:  # a loop of links
        raise _refused(link, f"is a link that cannot be followed ({exc})") from exc
    if not resolved.is_relative_to(top):
        raise _refused(link, f"is a link that leads outside {top}")
    return os.path.relpath(resolved, link.parent)


def _copy_file(path: Path, to: Path | None, executable: bool) -> bytes:
    """The SHA-256 of a regular file (opened without following a link), copied to ``to``."""
    digest = hashlib.sha256()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with open(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                raise _refused(path, "is not a regular file")
            with open(to, "xb") if to is not None else nullcontext() as out:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    if to is not None:
        os.chmod(to, 0o755 if executable else 0o644)
    return digest.digest()


def _unreadable(path: Path, exc: OSError) -> RequirementsError:
    return RequirementsError(
        f"Cannot read {path}", why=exc.strerror or str(exc), fix="Make the local package readable"
    )


def _refused(path: Path, what: str) -> RequirementsError:
    return RequirementsError(
        f"{path} {what}",
        why="a local requirement is copied and hashed with everything in it, "
        "and never reaches outside it",
        fix="Copy the file into the package, or remove it",
    )
