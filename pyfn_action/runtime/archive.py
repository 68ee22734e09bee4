"""Safe extraction of runtime archives.

The whole archive is judged before anything is written, so a refused archive
leaves nothing behind. Members are judged by where they would really land, not
by how their names read: links are resolved through the other links of the
archive, as the kernel would resolve them once extracted.

- a name is relative and has no ``..``; files, directories and links only
  (no devices, no FIFOs); no name appears twice (except a directory);
- no member lies below a symlink member (or below a file): every path is
  written through real directories made by the extraction itself;
- a symlink resolves, through every link of the archive, to a place inside the
  tree (never absolute, never above the root, no loops);
- a hard link names an earlier regular file of the archive; it is written as a
  copy of that file.

Symlinks are made last, after every file, so nothing is ever written or read
through a link, and files are created with ``O_EXCL | O_NOFOLLOW``. The
judgement does not depend on the Python version (``tarfile``'s extraction
filters are not used: nothing is extracted by ``tarfile``). A single top-level
directory (``pypy3.11-v7.3.19-linux64/``) is stripped.
"""

from __future__ import annotations

import lzma
import os
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from pyfn_action.errors import RuntimeFetchError, UnsafeArchive

_FIX = "Use an official PyPy build or one made by `pyfn runtime pack`"
_OUTSIDE = "extracting it would write outside the runtime directory"
MAX_LINK_HOPS = 40  # as Linux: a longer chain of links is a loop
# What reading a damaged archive can raise: tarfile's own, the decompressors', the disk's.
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, ValueError, zlib.error, lzma.LZMAError)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
_OPEN = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Member:
    """One archive entry after judgement: where it goes and what it is."""

    info: tarfile.TarInfo
    relpath: str  # POSIX path below the stripped top directory
    copy_of: str | None = None  # a hard link: the relpath of the earlier file it copies


class _Escapes(Exception):
    """A link resolves outside the tree, or loops; the message says which."""


def _refuse(archive: Path, what: str, why: str = _OUTSIDE) -> UnsafeArchive:
    return UnsafeArchive(f"Refusing {archive.name}: {what}", why=why, fix=_FIX)


def _judge_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if "\0" in name or not name:
        raise _refuse(archive, f"entry {name!r} has an empty name or a NUL byte in it")
    if path.is_absolute() or name.startswith(("/", "\\")):
        raise _refuse(archive, f"entry {name!r} has an absolute path")
    if ".." in path.parts:
        raise _refuse(archive, f"entry {name!r} contains '..'")
    return path


def _read_members(archive: Path) -> list[tarfile.TarInfo]:
    try:
        with tarfile.open(archive, "r:*") as tar:
            return tar.getmembers()
    except _READ_ERRORS as exc:
        raise RuntimeFetchError(
            f"{archive} is not a readable tar archive",
            why=str(exc) or type(exc).__name__,
            fix="Pass a .tar.bz2, .tar.gz or .tar.xz PyPy build in the official layout",
        ) from exc


def plan(archive: Path) -> tuple[list[Member], str | None]:
    """Judge every member of ``archive``; return them and the stripped top directory."""
    infos = _read_members(archive)
    paths = [_judge_name(info.name, archive) for info in infos]
    tops = {p.parts[0] for p in paths if p.parts}
    top = tops.pop() if len(tops) == 1 else None
    if top is not None and not any(len(p.parts) > 1 for p in paths):
        top = None  # an archive of a single file has no top directory to strip
    members: list[Member] = []
    kinds: dict[str, str] = {}  # relpath → "dir" | "file" | "link", as far as read
    links: dict[str, str] = {}  # symlink relpath → its target
    for info, path in zip(infos, paths):
        parts = path.parts[1:] if top else path.parts
        if not parts:
            continue
        rel = "/".join(parts)
        kind = _kind(info, archive)
        if rel in kinds and not (kind == kinds[rel] == "dir"):
            raise _refuse(
                archive,
                f"entry {info.name!r} appears twice",
                why="a later entry would replace an earlier one, which is how an archive "
                "smuggles a write or a read through a link",
            )
        copy_of = _judge_hard_link(info, top, kinds, archive) if info.islnk() else None
        kinds[rel] = kind
        if info.issym():
            links[rel] = info.linkname
        members.append(Member(info, rel, copy_of))
    for member in members:
        _judge_parents(member, kinds, archive)
        if member.info.issym():
            _judge_symlink(member, links, archive)
    return members, top


def _kind(info: tarfile.TarInfo, archive: Path) -> str:
    if info.isdir():
        return "dir"
    if info.issym():
        return "link"
    if info.isfile() or info.islnk():
        return "file"
    raise _refuse(
        archive,
        f"entry {info.name!r} is a device file or FIFO",
        why="a runtime archive holds only files, directories and links",
    )


def _judge_parents(member: Member, kinds: dict[str, str], archive: Path) -> None:
    """Every directory above ``member`` is a real directory of the extraction."""
    parts = member.relpath.split("/")
    for n in range(1, len(parts)):
        above = "/".join(parts[:n])
        kind = kinds.get(above)
        if kind == "link":
            raise _refuse(
                archive,
                f"entry {member.info.name!r} lies below the symlink {above!r}",
                why="writing it would follow the link, and the link decides where it lands",
            )
        if kind == "file":
            raise _refuse(
                archive,
                f"entry {member.info.name!r} lies below the file {above!r}",
                why="a file cannot hold entries",
            )


def _judge_hard_link(
    info: tarfile.TarInfo, top: str | None, kinds: dict[str, str], archive: Path
) -> str:
    """The relpath of the earlier regular file that hard link ``info`` names."""
    source = _strip(info.linkname, top)
    if source is None or kinds.get(source) != "file":
        raise _refuse(
            archive,
            f"hard link {info.name!r} points to {info.linkname!r}, which is not in the "
            "archive as a regular file before it",
            why="a hard link may only copy a file the archive itself holds",
        )
    return source


def _strip(name: str, top: str | None) -> str | None:
    """``name`` (a hard link's target) as a relpath, or None when it is not a member's."""
    path = PurePosixPath(name)
    if not name or "\0" in name or path.is_absolute() or ".." in path.parts:
        return None
    if top is not None:
        if path.parts[:1] != (top,):
            return None
        path = PurePosixPath(*path.parts[1:])
    return "/".join(path.parts) or None


def _judge_symlink(member: Member, links: dict[str, str], archive: Path) -> None:
    link = member.info.linkname
    try:
        if not link or "\0" in link:
            raise _Escapes("it has no target")
        if link.startswith("/"):
            raise _Escapes("an absolute target lies outside the archive's tree")
        parent = member.relpath.rsplit("/", 1)[0] if "/" in member.relpath else ""
        _resolve(f"{parent}/{link}", links)
    except _Escapes as exc:
        raise _refuse(
            archive,
            f"symlink {member.info.name!r} points to {link!r}: {exc}",
            why="following it could read or overwrite files outside the runtime directory",
        ) from None


def _resolve(path: str, links: dict[str, str]) -> str:
    """Resolve ``path`` (relative to the tree's root) through ``links`` as the kernel would.

    Returns the resolved relpath ("" for the root); raises :class:`_Escapes` when a
    step leaves the tree or the links loop. A name that is not a link is taken as
    what it is: a directory, a file or nothing, none of which can lead elsewhere.
    """
    pending = [p for p in reversed(path.split("/")) if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while pending:
        part = pending.pop()
        if part == "..":
            if not resolved:
                raise _Escapes("it resolves above the root, outside the archive's tree")
            resolved.pop()
            continue
        here = "/".join([*resolved, part])
        target = links.get(here)
        if target is None:
            resolved.append(part)
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise _Escapes(f"it goes through more than {MAX_LINK_HOPS} links, a loop")
        if target.startswith("/"):
            raise _Escapes(f"it goes through {here!r}, whose absolute target lies outside")
        pending.extend(p for p in reversed(target.split("/")) if p not in ("", "."))
    return "/".join(resolved)


def extract(archive: Path, dest: Path) -> str | None:
    """Extract ``archive`` into ``dest`` (which must not exist) after judging it.

    Returns the name of the stripped top-level directory, if there was one.
    """
    members, top = plan(archive)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in members:
                if not member.info.issym():
                    _extract_one(tar, member, dest)
        # Links last: until now the tree held only directories and files of its own.
        for member in members:
            if member.info.issym():
                target = dest / member.relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                os.symlink(member.info.linkname, target)
    except (*_READ_ERRORS, OverflowError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise RuntimeFetchError(
            f"Extracting {archive} failed",
            why=str(exc) or type(exc).__name__,
            fix="Check the archive and disk space",
        ) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return top


def _extract_one(tar: tarfile.TarFile, member: Member, dest: Path) -> None:
    info = member.info
    target = dest / member.relpath
    if info.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o755 if info.mode & 0o111 else 0o644
    with os.fdopen(os.open(target, _CREATE, 0o600), "wb") as out:
        if member.copy_of is not None:
            with os.fdopen(os.open(dest / member.copy_of, _OPEN), "rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)
        else:
            fileobj = tar.extractfile(info)
            assert fileobj is not None  # a regular file, judged in plan()
            with fileobj:
                shutil.copyfileobj(fileobj, out, 1 << 20)
        out.flush()
        os.fchmod(out.fileno(), mode)
        # Keep the archive's times: compiled bytecode checks its source's mtime.
        os.utime(out.fileno(), (info.mtime, info.mtime))
