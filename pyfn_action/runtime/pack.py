"""``pyfn runtime pack``: an installed PyPy, packed into a relocatable archive.

The archive has the official PyPy layout, so everything that takes an
official build takes it too::

    pypy3.9-v7.3.11-linux64/
        bin/pypy3.9  bin/libpypy3.9-c.so  bin/pypy3 -> pypy3.9  bin/pypy -> pypy3.9
        lib/pypy3.9/...              the standard library, copied faithfully
        lib/<soname>                 shared libraries the target image lacks
        lib/PYPY_PORTABLE_DEPS.txt   their sonames, one a line
        include/pypy3.9/...

The interpreter is asked where its files are; the ELF files found are followed
through DT_NEEDED, and every library not in ``data/image-libs.txt`` is
bundled. Compiled bytecode (``__pycache__``) is left out: it is the installation's
own state, written by the package manager and by any run that may write there, and
it differs from one machine to the next even for the same package (``pyfn build``
compiles every module it ships for the target anyway). The tar is deterministic
(sorted members, fixed times, owners and modes), written to a temporary file and
renamed into place.
"""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.errors import PackError
from pyfn_action.progress import ProgressFactory, silent
from pyfn_action.runtime.elf import ElfInfo, NotElf, is_elf, read_elf
from pyfn_action.runtime.interpreter import FIX_INTERPRETER, Interpreter, describe
from pyfn_action.runtime.libdeps import LibraryResolver, libraries_to_bundle, load_image_libs
from pyfn_action.runtime.tarball import COMPRESSIONS, TarEntry, compression_for, write_tar
from pyfn_action.runtime.targets import generation
from pyfn_action.sizes import format_size

log = logging.getLogger(__name__)

DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z
_ARCH_SUFFIX = {"x86_64": "linux64", "aarch64": "aarch64"}
_SITE_DIRS = frozenset({"site-packages", "dist-packages"})
_LIBPYPY = re.compile(r"^libpypy\d+(\.\d+)?-c\.so")
_FIX_REINSTALL = "Reinstall PyPy, or pack an installation that runs on this machine"


@dataclass(frozen=True)
class PackResult:
    """The archive written, and what it holds."""

    path: Path
    sha256: str
    python_version: str  # "3.9"
    pypy_version: str  # "7.3.11"
    arch: str  # "x86_64" or "aarch64"
    bundled_libs: tuple[str, ...]  # sonames copied into lib/
    glibc_required: tuple[int, int] | None  # newest over every ELF file packed
    top: str  # "pypy3.9-v7.3.11-linux64"


def pack_runtime(
    interpreter: Path,
    output: Path,
    *,
    progress: ProgressFactory = silent,
    source_date_epoch: int = DEFAULT_EPOCH,
    env: Mapping[str, str] | None = None,
) -> PackResult:
    """Pack the PyPy that ``interpreter`` runs into the archive ``output``.

    ``interpreter`` is asked to describe itself in what a build may see of ``env``
    (by default, nothing at all).

    The archive is written beside ``output`` under a temporary name and renamed
    into place; on any failure nothing is left behind. Raises :class:`PackError`.
    """
    compression = _compression(output)
    if source_date_epoch < 0:
        raise PackError(
            f"SOURCE_DATE_EPOCH {source_date_epoch} is negative",
            fix="Set SOURCE_DATE_EPOCH to a Unix time of 0 or later",
        )
    found = describe(interpreter, env or {})
    exe = _read(found.executable)
    if exe.machine not in _ARCH_SUFFIX:
        raise PackError(
            f"{found.executable} is built for {exe.machine}",
            why="pyfn supports x86_64 and aarch64 runtimes only",
            fix=FIX_INTERPRETER,
        )
    top = f"pypy{found.python}-v{found.pypy}-{_ARCH_SUFFIX[exe.machine]}"
    entries, elves, bundled = _plan(found, exe)
    try:
        sha256 = write_tar(
            {f"{top}/{name}": entry for name, entry in entries.items()},
            output,
            compression=compression,
            epoch=source_date_epoch,
            progress=progress,
            label=f"Packing {top}",
        )
    except OSError as exc:
        raise PackError(
            f"Cannot write {output}",
            why=exc.strerror or str(exc),
            fix="Choose an output path in a directory you can write to, with room for ~100 MB",
        ) from exc
    versions = [e.glibc_required for e in (*elves, *bundled.values()) if e.glibc_required]
    glibc = max(versions) if versions else None
    _check_glibc(output, glibc)
    log.info("packed %s (%s, sha256 %s)", output, format_size(output.stat().st_size), sha256)
    return PackResult(
        path=output,
        sha256=sha256,
        python_version=found.python,
        pypy_version=found.pypy,
        arch=exe.machine,
        bundled_libs=tuple(sorted(bundled)),
        glibc_required=glibc,
        top=top,
    )


def _plan(
    found: Interpreter, exe: ElfInfo
) -> tuple[dict[str, TarEntry], list[ElfInfo], dict[str, ElfInfo]]:
    """The members below the top directory, the ELF files among them, the bundled libraries."""
    py = found.python
    resolver = LibraryResolver(exe.machine, exe.elfclass)
    libpypy_name, libpypy = _find_libpypy(exe, resolver)
    entries: dict[str, TarEntry] = {}
    entries[f"bin/pypy{py}"] = TarEntry.file(exe.path, 0o755)
    entries[f"bin/{libpypy_name}"] = TarEntry.file(libpypy.path, 0o755)  # found via $ORIGIN
    for alias in ("pypy3", "pypy"):
        if alias != f"pypy{py}":
            entries[f"bin/{alias}"] = TarEntry.symlink(f"pypy{py}", 0o755)
    paths: list[Path] = []
    for src, arc, skip_site in (
        (found.stdlib, f"lib/pypy{py}", True),
        (found.include, f"include/pypy{py}", False),
    ):
        if src is not None and src.is_dir():
            real = Path(os.path.realpath(src))
            _add_tree(src, arc, _Root(real, arc, skip_site), entries, paths)
    _check_extensions(found, entries)
    if f"include/pypy{py}/Python.h" not in entries:
        log.warning(
            "this PyPy has no C headers (no Python.h%s): the archive runs pure-Python "
            "code, but a requirement with C code cannot be built from its sdist with it "
            "(install the PyPy's development files, e.g. Debian's pypy3-dev, to pack them)",
            f" in {found.include}" if found.include else "",
        )
    _add_ensurepip_wheels(py, entries)

    elves = [exe, libpypy, *(_read(p) for p in paths)]
    stdlib = Path(os.path.realpath(found.stdlib))
    try:
        bundled = libraries_to_bundle(
            elves,
            load_image_libs(),
            resolver,
            skip=lambda soname, path: bool(_LIBPYPY.match(soname)) or path.is_relative_to(stdlib),
        )
    except (NotElf, OSError) as exc:
        raise PackError(
            "Cannot read a library the runtime needs", why=str(exc), fix=_FIX_REINSTALL
        ) from exc
    for soname, info in sorted(bundled.items()):
        entries[f"lib/{soname}"] = TarEntry.file(info.path, 0o755)
    deps = "".join(f"{soname}\n" for soname in sorted(bundled)).encode()
    entries["lib/PYPY_PORTABLE_DEPS.txt"] = TarEntry.blob(deps)
    return entries, elves, bundled


# Where Debian keeps the wheels its ensurepip installs (package python3-pip-whl).
DEBIAN_WHEELS = Path("/usr/share/python-wheels")


def _add_ensurepip_wheels(py: str, entries: dict[str, TarEntry]) -> None:
    """Give ``ensurepip`` its bundled wheels, as official builds have them.

    Distributions strip ``ensurepip/_bundled`` and keep the wheels elsewhere;
    pyfn runs the runtime's own pip from there to resolve requirements.
    """
    bundled = f"lib/pypy{py}/ensurepip/_bundled"
    if f"lib/pypy{py}/ensurepip/__init__.py" not in entries:
        return
    if any(name.startswith(bundled + "/") and name.endswith(".whl") for name in entries):
        return
    for name in ("pip", "setuptools"):
        wheels = sorted(DEBIAN_WHEELS.glob(f"{name}-*-py3-none-any.whl"))
        if wheels:
            entries.setdefault(bundled, TarEntry.directory())
            entries[f"{bundled}/{wheels[-1].name}"] = TarEntry.file(wheels[-1], 0o644)
        elif name == "pip":
            log.warning(
                "no pip wheel for ensurepip found in %s: pyfn will run this machine's pip "
                "inside the runtime instead (install python3-pip-whl to pack one)",
                DEBIAN_WHEELS,
            )


def _check_glibc(output: Path, glibc: tuple[int, int] | None) -> None:
    image_glibc = min(generation(gen).glibc for gen in (1, 2))
    if glibc is not None and glibc > image_glibc:
        log.warning(
            "%s needs glibc %d.%d but the Cloud Functions image has %d.%d: the archive serves "
            "locally but may not load on Cloud Functions",
            output.name,
            *glibc,
            *image_glibc,
        )


def _compression(output: Path) -> str:
    kind = compression_for(output)
    if kind is not None:
        return kind
    raise PackError(
        f"Cannot tell how to compress {output.name}",
        why=f"the output's name must end with one of {', '.join(COMPRESSIONS)}",
        fix="Name the archive like pypy3.9-v7.3.11-linux64.tar.gz (or .tar.bz2, .tar.xz)",
    )


def _read(path: Path) -> ElfInfo:
    try:
        return read_elf(path)
    except (NotElf, OSError) as exc:
        raise PackError(
            f"Cannot read {path} as a shared library or executable",
            why=str(exc),
            fix=_FIX_REINSTALL,
        ) from exc


def _find_libpypy(exe: ElfInfo, resolver: LibraryResolver) -> tuple[str, ElfInfo]:
    """The soname the executable loads libpypy by (its name in bin/), and the library."""
    name = next((n for n in exe.needed if _LIBPYPY.match(n)), None)
    if name is None:
        raise PackError(
            f"{exe.path} does not load a libpypy shared library",
            why=f"its DT_NEEDED entries are {', '.join(exe.needed) or 'none'}",
            fix="Pack a PyPy built as executable + libpypy3.X-c.so, as official builds are",
        )
    path = resolver.resolve(name, exe)
    if path is None:
        raise PackError(
            f"Cannot find {name}, which {exe.path} needs",
            why="it is not on the executable's run path, in ldconfig's cache or the standard "
            "library directories",
            fix="Install the package that provides it (Debian: libpypy3.X-c) and try again",
        )
    return name, _read(path)


def _file_mode(path: Path, name: str) -> int:
    shared = name.endswith(".so") or ".so." in name
    return 0o755 if shared or path.stat().st_mode & 0o111 else 0o644


@dataclass(frozen=True)
class _Root:
    """A tree being planned: its real path, its name in the archive, what to leave out."""

    path: Path
    arc: str
    skip_site: bool  # the stdlib: leave out EXTERNALLY-MANAGED and the site dirs' contents


def _add_tree(
    src: Path,
    arc: str,
    root: _Root,
    entries: dict[str, TarEntry],
    elves: list[Path],
    ancestors: frozenset[Path] = frozenset(),
) -> None:
    """Plan the directory ``src`` as ``arc``, recursively."""
    entries[arc] = TarEntry.directory()
    ancestors |= {Path(os.path.realpath(src))}
    at_top = arc == root.arc and root.skip_site
    for child in sorted(src.iterdir()):
        name = f"{arc}/{child.name}"
        if at_top and child.name == "EXTERNALLY-MANAGED":
            continue
        if child.is_symlink():
            _add_link(child, name, root, entries, elves, ancestors)
        elif child.is_dir():
            if child.name == "__pycache__":
                continue  # this installation's own bytecode: see the module's docstring
            if at_top and child.name in _SITE_DIRS:
                entries[name] = TarEntry.directory()
            else:
                _add_tree(child, name, root, entries, elves, ancestors)
        elif child.is_file():
            _add_regular(child, name, entries, elves)
        else:
            log.warning("skipping %s: not a file, directory or symlink", child)


def _add_regular(path: Path, name: str, entries: dict[str, TarEntry], elves: list[Path]) -> None:
    entries[name] = TarEntry.file(path, _file_mode(path, name))
    if is_elf(path):
        elves.append(path)


def _add_link(
    link: Path,
    name: str,
    root: _Root,
    entries: dict[str, TarEntry],
    elves: list[Path],
    ancestors: frozenset[Path],
) -> None:
    """Keep a link that stays inside its tree; otherwise copy what it points to."""
    target = Path(os.path.realpath(link))
    if not target.exists():
        log.warning("skipping %s: a dangling symlink", link)
    elif target == root.path or target.is_relative_to(root.path):
        target_arc = posixpath.join(root.arc, target.relative_to(root.path).as_posix())
        relative = posixpath.relpath(target_arc, posixpath.dirname(name))
        mode = 0o755 if target.is_dir() else _file_mode(target, target.name)
        entries[name] = TarEntry.symlink(relative, mode)
    elif target in ancestors:
        log.warning("skipping %s: a symlink loop", link)
    elif target.is_dir():
        _add_tree(target, name, root, entries, elves, ancestors)
    else:
        _add_regular(target, name, entries, elves)


def _check_extensions(found: Interpreter, entries: dict[str, TarEntry]) -> None:
    prefix = f"lib/pypy{found.python}/"
    suffixes = found.ext_suffixes
    if not any(n.startswith(prefix) and n.endswith(suffixes) for n in entries):
        raise PackError(
            f"{found.stdlib} holds no compiled extension ({', '.join(suffixes)})",
            why="a PyPy standard library without its extension modules is incomplete, and "
            "its ABI cannot be told from the archive",
            fix="Pack a complete PyPy installation",
        )
