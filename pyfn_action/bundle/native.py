"""Native code in a bundle: will each shared object load on the target?

Every ELF shared object in the bundle is read (pyelftools, through ``elf.py``)
and judged against the target: its CPU, the newest glibc symbol version it
needs against the image's glibc, the libraries it needs against what the
bundle and the image provide, and, for extension modules, the ABI in its file
name (CPython and ``abi3`` extensions do not load on PyPy; one built for a PyPy
release pyfn cannot target says which).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfn_action.bundle.entry import Entry
from pyfn_action.fetch import replace_file
from pyfn_action.runtime.elf import ElfInfo, NotElf, read_elf
from pyfn_action.runtime.libdeps import load_image_libs
from pyfn_action.runtime.releases import untargeted
from pyfn_action.runtime.targets import Target

_EXTENSION = re.compile(r"\.(?P<abi>cpython-\d+|abi3|pypy\d+-pp\d+)[-.]")


@dataclass(frozen=True)
class Problem:
    path: str
    problem: str


@dataclass(frozen=True)
class NativeReport:
    inspected: int
    problems: tuple[Problem, ...]

    def to_dict(self) -> dict[str, object]:
        return {
            "inspected": self.inspected,
            "problems": [{"path": p.path, "problem": p.problem} for p in self.problems],
        }


def _is_shared_object(arcname: str) -> bool:
    name = arcname.rsplit("/", 1)[-1]
    return name.endswith(".so") or ".so." in name


def judge(name: str, info: ElfInfo, target: Target, provided: frozenset[str]) -> list[str]:
    """What keeps one shared object from loading on ``target`` (empty when nothing)."""
    problems = []
    if info.machine != target.arch:
        problems.append(f"built for {info.machine}, the target is {target.arch}")
    if info.glibc_required and info.glibc_required > target.glibc:
        need = ".".join(map(str, info.glibc_required))
        have = ".".join(map(str, target.glibc))
        problems.append(f"needs glibc {need}, the target image has {have}")
    missing = [lib for lib in info.needed if lib not in provided]
    if missing:
        problems.append(
            f"needs {', '.join(missing)}, which neither the bundle nor the image provides"
        )
    match = _EXTENSION.search(name)
    if match:
        abi = match["abi"]
        expected = f"pypy{target.nodot}-pp{target.pp_tag}"
        if abi.startswith("cpython") or abi == "abi3":
            problems.append(f"a CPython extension ({abi}): PyPy cannot load it")
        elif abi != expected:
            foreign = untargeted([abi])
            if foreign is not None:
                problems.append(f"built for {foreign.describe()}; {foreign.fix()}")
            else:
                problems.append(f"built for {abi}, the runtime is {expected}")
    return problems


class ElfCache:
    """ELF facts by (path, size, mtime): files in pyfn's caches never change in place."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, dict[str, Any]] = {}
        self.dirty = False
        if path is not None:
            with contextlib.suppress(OSError, ValueError):
                loaded = json.loads(path.read_text())
                if isinstance(loaded, dict):
                    self.data = loaded

    def read(self, file: Path) -> ElfInfo:
        status = file.stat()
        key = f"{file}|{status.st_size}|{status.st_mtime_ns}"
        cached = self.data.get(key)
        if cached is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                return ElfInfo(
                    path=file,
                    machine=str(cached["machine"]),
                    elfclass=int(cached["elfclass"]),
                    soname=cached["soname"],
                    needed=tuple(cached["needed"]),
                    runpath=tuple(cached["runpath"]),
                    glibc_required=tuple(cached["glibc"]) if cached["glibc"] else None,
                )
        info = read_elf(file)
        self.data[key] = {
            "machine": info.machine,
            "elfclass": info.elfclass,
            "soname": info.soname,
            "needed": list(info.needed),
            "runpath": list(info.runpath),
            "glibc": list(info.glibc_required) if info.glibc_required else None,
        }
        self.dirty = True
        return info

    def save(self) -> None:
        if self.path is None or not self.dirty:
            return
        # Concurrent builds: the last one's facts win.
        replace_file(self.path, json.dumps(self.data).encode())


def inspect_entries(
    entries: Sequence[Entry], target: Target, cache_dir: Path | None = None
) -> NativeReport:
    """Judge every shared object among ``entries`` (files on disk)."""
    objects = [e for e in entries if _is_shared_object(e.arcname) and e.source is not None]
    cache = ElfCache(cache_dir / "elf-facts.json" if cache_dir else None)
    infos: dict[str, ElfInfo] = {}
    problems: list[Problem] = []
    for entry in objects:
        assert entry.source is not None
        try:
            infos[entry.arcname] = cache.read(entry.source)
        except NotElf as exc:
            problems.append(Problem(entry.arcname, f"named like a shared object but {exc}"))
        except OSError as exc:
            problems.append(Problem(entry.arcname, f"cannot be read: {exc}"))
    provided = frozenset(
        load_image_libs()
        | {arc.rsplit("/", 1)[-1] for arc in infos}
        | {info.soname for info in infos.values() if info.soname}
    )
    for arcname, info in sorted(infos.items()):
        for problem in judge(arcname.rsplit("/", 1)[-1], info, target, provided):
            problems.append(Problem(arcname, problem))
    cache.save()
    return NativeReport(len(objects), tuple(problems))
