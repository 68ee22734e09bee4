"""Safe extraction of runtime archives.

Every member is checked before anything is written: no absolute paths, no
``..``, no device files or FIFOs, no link that resolves outside the tree. The
whole archive is judged first, so a refused archive leaves nothing behind.
A single top-level directory (``pypy3.11-v7.3.19-linux64/``) is stripped.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import RuntimeFetchError, UnsafeArchive


@dataclass(frozen=True)
class Member:
    """One archive entry after judgement: where it goes and what it is."""

    info: tarfile.TarInfo
    relpath: str  # POSIX path below the stripped top directory


def _judge_name(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or name.startswith(("/", "\\")):
        raise UnsafeArchive(
            f"Refusing {archive.name}: entry {name!r} has an absolute path",
            why="extracting it would write outside the runtime directory",
            fix="Use an official PyPy build or one made by `pyfn runtime pack`",
        )
    if ".." in path.parts:
        raise UnsafeArchive(
            f"Refusing {archive.name}: entry {name!r} contains '..'",
            why="extracting it would write outside the runtime directory",
            fix="Use an official PyPy build or one made by `pyfn runtime pack`",
        )
    return path


def plan(archive: Path) -> tuple[list[Member], str | None]:
    """Judge every member of ``archive``; return them and the stripped top directory."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            infos = tar.getmembers()
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise RuntimeFetchError(
            f"{archive} is not a readable tar archive",
            why=str(exc),
            fix="Pass a .tar.bz2, .tar.gz or .tar.xz PyPy build in the official layout",
        ) from exc
    paths = [_judge_name(info.name, archive) for info in infos]
    tops = {p.parts[0] for p in paths if p.parts}
    top = tops.pop() if len(tops) == 1 else None
    if top is not None and not any(len(p.parts) > 1 for p in paths):
        top = None  # an archive of a single file has no top directory to strip
    members: list[Member] = []
    names: set[str] = set()
    for info, path in zip(infos, paths):
        parts = path.parts[1:] if top else path.parts
        if not parts:
            continue
        rel = "/".join(parts)
        if not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
            raise UnsafeArchive(
                f"Refusing {archive.name}: entry {info.name!r} is a device file or FIFO",
                why="a runtime archive holds only files, directories and links",
                fix="Use an official PyPy build or one made by `pyfn runtime pack`",
            )
        members.append(Member(info, rel))
        names.add(rel)
    for member in members:
        if member.info.issym():
            _judge_symlink(member, archive)
        elif member.info.islnk():
            target = _strip(member.info.linkname, top)
            if target is None or target not in names:
                raise UnsafeArchive(
                    f"Refusing {archive.name}: hard link {member.info.name!r} points to "
                    f"{member.info.linkname!r}, which is not in the archive",
                    fix="Use an official PyPy build or one made by `pyfn runtime pack`",
                )
    return members, top


def _strip(name: str, top: str | None) -> str | None:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        return None
    parts = path.parts[1:] if top and path.parts[:1] == (top,) else path.parts
    return "/".join(parts) if parts else None


def _judge_symlink(member: Member, archive: Path) -> None:
    link = member.info.linkname
    parent = posixpath.dirname(member.relpath)
    resolved = posixpath.normpath(posixpath.join(parent, link))
    if link.startswith("/") or resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchive(
            f"Refusing {archive.name}: symlink {member.info.name!r} points to {link!r}, "
            "outside the archive's tree",
            why="following it could read or overwrite files outside the runtime directory",
            fix="Use an official PyPy build or one made by `pyfn runtime pack`",
        )


def extract(archive: Path, dest: Path) -> str | None:
    """Extract ``archive`` into ``dest`` (which must not exist) after judging it.

    Returns the name of the stripped top-level directory, if there was one.
    """
    members, top = plan(archive)
    dest.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in members:
                _extract_one(tar, member, dest, top)
    except (tarfile.TarError, EOFError, OSError) as exc:
        shutil.rmtree(dest, ignore_errors=True)
        raise RuntimeFetchError(
            f"Extracting {archive} failed", why=str(exc), fix="Check the archive and disk space"
        ) from exc
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return top


def _extract_one(tar: tarfile.TarFile, member: Member, dest: Path, top: str | None) -> None:
    info = member.info
    target = dest / member.relpath
    if info.isdir():
        target.mkdir(parents=True, exist_ok=True)
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    if info.issym():
        os.symlink(info.linkname, target)
        return
    if info.islnk():
        source = _strip(info.linkname, top)
        assert source is not None  # judged in plan()
        shutil.copyfile(dest / source, target)
    else:
        fileobj = tar.extractfile(info)
        assert fileobj is not None
        with fileobj, target.open("wb") as out:
            shutil.copyfileobj(fileobj, out, 1 << 20)
    target.chmod(0o755 if info.mode & 0o111 else 0o644)
    # Keep the archive's times: compiled bytecode checks its source's mtime.
    os.utime(target, (info.mtime, info.mtime))
