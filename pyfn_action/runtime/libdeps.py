"""Shared-library dependencies: where the loader finds a soname, and what an image lacks.

:class:`LibraryResolver` searches as ``ld.so`` does, closely enough for
packing: the needing object's run path (``$ORIGIN`` expanded), then
``ldconfig -p``, then the standard directories, taking only files of the same
machine and ELF class. :func:`libraries_to_bundle` follows DT_NEEDED from a
set of ELF files and returns every library the target image does not provide
(``data/image-libs.txt``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path

from pyfn_action.runtime.elf import ElfInfo, NotElf, read_elf

log = logging.getLogger(__name__)

LDCONFIG_TIMEOUT_SECONDS = 30
_TRIPLET = {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}
_SONAME = re.compile(r"^[A-Za-z0-9_+-][A-Za-z0-9_.+-]*\.so(\.[A-Za-z0-9_.]+)?$")
_LDCONFIG_LINE = re.compile(r"^\s+(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


def load_image_libs() -> frozenset[str]:
    """The sonames the Cloud Functions image provides, from packaged ``data/image-libs.txt``."""
    text = resources.files("pyfn_action").joinpath("data/image-libs.txt").read_text()
    names = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not _SONAME.match(line):
            raise RuntimeError(f"image-libs.txt line {lineno} is not a soname: {line!r}")
        names.add(line)
    if not names:
        raise RuntimeError("image-libs.txt lists no library")
    return frozenset(names)


class LibraryResolver:
    """Finds the file a soname names, for objects of one machine and ELF class."""

    def __init__(
        self,
        machine: str,
        elfclass: int,
        *,
        cache: dict[str, list[Path]] | None = None,
        dirs: tuple[str, ...] | None = None,
    ) -> None:
        self.machine = machine
        self.elfclass = elfclass
        triplet = _TRIPLET.get(machine, machine)
        standard = (f"/lib/{triplet}", f"/usr/lib/{triplet}", "/lib64", "/usr/lib64", "/lib")
        self._dirs = dirs if dirs is not None else (*standard, "/usr/lib")
        self._cache = cache if cache is not None else ldconfig_cache()

    def resolve(self, soname: str, needed_by: ElfInfo) -> Path | None:
        """The real path of the library ``needed_by`` loads as ``soname``, or None."""
        origin = str(needed_by.path.parent)
        runpath = [_expand(d, origin) for d in needed_by.runpath]
        candidates = [Path(d) / soname for d in runpath]
        candidates += self._cache.get(soname, [])
        candidates += [Path(d) / soname for d in self._dirs]
        for candidate in candidates:
            if candidate.is_file() and self._fits(candidate):
                return Path(os.path.realpath(candidate))
        return None

    def _fits(self, path: Path) -> bool:
        try:
            info = read_elf(path)
        except (NotElf, OSError):
            return False
        return info.machine == self.machine and info.elfclass == self.elfclass


def _expand(entry: str, origin: str) -> str:
    return entry.replace("${ORIGIN}", origin).replace("$ORIGIN", origin)


def ldconfig_cache() -> dict[str, list[Path]]:
    """soname → paths, from ``ldconfig -p``; empty when ldconfig is missing or fails."""
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    try:
        out = subprocess.run(
            [ldconfig, "-p"],
            capture_output=True,
            text=True,
            timeout=LDCONFIG_TIMEOUT_SECONDS,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("ldconfig -p failed (%s); searching the standard directories only", exc)
        return {}
    cache: dict[str, list[Path]] = {}
    for line in out.splitlines():
        match = _LDCONFIG_LINE.match(line)
        if match:
            cache.setdefault(match[1], []).append(Path(match[3]))
    return cache


def libraries_to_bundle(
    roots: Iterable[ElfInfo],
    provided: frozenset[str],
    resolver: LibraryResolver,
    *,
    skip: Callable[[str, Path], bool] = lambda soname, path: False,
) -> dict[str, ElfInfo]:
    """Every library ``roots`` need, recursively, that is not in ``provided``: soname → file.

    A library is followed further only when it is bundled (the image's own
    libraries bring their own dependencies). ``skip(soname, path)`` leaves out
    libraries that travel some other way (libpypy, the stdlib's own files).
    A soname that cannot be found is logged and left out.
    """
    bundled: dict[str, ElfInfo] = {}
    missing: set[str] = set()
    queue = list(roots)
    while queue:
        elf = queue.pop(0)
        for soname in elf.needed:
            if soname in provided or soname in bundled or soname in missing:
                continue
            path = resolver.resolve(soname, elf)
            if path is None:
                log.warning("%s needs %s, which is not installed: not bundled", elf.path, soname)
                missing.add(soname)
            elif not skip(soname, path):
                bundled[soname] = read_elf(path)
                queue.append(bundled[soname])
    return bundled
