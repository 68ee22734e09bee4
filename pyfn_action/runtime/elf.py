"""ELF inspection: what an executable or shared object is, needs and requires.

:func:`read_elf` turns a file into an immutable :class:`ElfInfo` (machine,
class, soname, DT_NEEDED, run path, and the newest glibc symbol version it
requires); judging the result is the caller's business. Files that are not
ELF, or are truncated or corrupt, raise :class:`NotElf`, never a pyelftools
exception. Pure: no logging, no side effects beyond reading the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from elftools.elf.dynamic import Dynamic, DynamicSection, DynamicSegment, DynamicTag
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

MAGIC = b"\x7fELF"
_MACHINES = {"EM_X86_64": "x86_64", "EM_AARCH64": "aarch64"}
_GLIBC_VERSION = re.compile(r"^GLIBC_(\d+)\.(\d+)(?:\.\d+)?$")


class NotElf(ValueError):
    """A file that is not a readable ELF object: wrong magic, truncated or corrupt."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path} is not a readable ELF file: {reason}")


@dataclass(frozen=True)
class ElfInfo:
    """What the dynamic loader needs to know about one ELF file."""

    path: Path
    machine: str  # "x86_64", "aarch64", or the raw e_machine ("EM_386") otherwise
    elfclass: int  # 32 or 64
    soname: str | None
    needed: tuple[str, ...]  # DT_NEEDED, in order
    runpath: tuple[str, ...]  # DT_RUNPATH, else DT_RPATH, split on ':'
    glibc_required: tuple[int, int] | None  # newest GLIBC_x.y in .gnu.version_r


def is_elf(path: Path) -> bool:
    """True when ``path`` is a readable file that starts with the ELF magic."""
    try:
        with path.open("rb") as fh:
            return fh.read(4) == MAGIC
    except OSError:
        return False


def read_elf(path: Path) -> ElfInfo:
    """Parse ``path`` into an :class:`ElfInfo`.

    Raises :class:`NotElf` for a file that is not ELF, is truncated or is
    corrupt; :class:`OSError` when the file cannot be opened at all.
    """
    with path.open("rb") as fh:
        if fh.read(4) != MAGIC:
            raise NotElf(path, "it does not start with the ELF magic bytes")
        try:
            return _parse(path, fh)
        except NotElf:
            raise
        except Exception as exc:  # pyelftools raises many types on malformed input
            raise NotElf(path, f"{type(exc).__name__}: {exc}") from exc


def _parse(path: Path, fh: BinaryIO) -> ElfInfo:
    elf = ELFFile(fh)
    _check_extent(path, elf)
    machine = str(elf["e_machine"])
    dynamic, size = _dynamic(elf)
    needed: list[str] = []
    soname: str | None = None
    runpath: tuple[str, ...] = ()
    rpath: tuple[str, ...] = ()
    if dynamic is not None:
        max_tags = size // (elf.elfclass // 4)  # Elf32_Dyn is 8 bytes, Elf64_Dyn 16
        for count, tag in enumerate(dynamic.iter_tags()):
            if count >= max_tags:
                raise NotElf(path, "its dynamic section has no DT_NULL terminator")
            kind = tag.entry.d_tag
            if kind == "DT_NEEDED":
                needed.append(_text(tag, "needed"))
            elif kind == "DT_SONAME":
                soname = _text(tag, "soname")
            elif kind == "DT_RUNPATH":
                runpath += _split(_text(tag, "runpath"))
            elif kind == "DT_RPATH":
                rpath += _split(_text(tag, "rpath"))
    return ElfInfo(
        path=path,
        machine=_MACHINES.get(machine, machine),
        elfclass=int(elf.elfclass),
        soname=soname,
        needed=tuple(needed),
        runpath=runpath or rpath,
        glibc_required=_glibc_required(path, elf),
    )


def _check_extent(path: Path, elf: ELFFile) -> None:
    """Refuse a file whose headers point past its end (a truncated copy)."""
    size = elf.stream_len
    tables = (
        ("program header table", elf["e_phoff"], elf["e_phnum"] * elf["e_phentsize"]),
        ("section header table", elf["e_shoff"], elf["e_shnum"] * elf["e_shentsize"]),
    )
    for what, offset, length in tables:
        if offset and offset + length > size:
            raise NotElf(path, f"its {what} ends at byte {offset + length}, past its {size} bytes")
    for segment in elf.iter_segments():
        end = segment["p_offset"] + segment["p_filesz"]
        if end > size:
            raise NotElf(path, f"a {segment['p_type']} segment ends at byte {end}, past {size}")
    for section in elf.iter_sections():
        if section["sh_type"] == "SHT_NOBITS":
            continue
        end = section["sh_offset"] + section["sh_size"]
        if end > size:
            raise NotElf(path, f"section {section.name!r} ends at byte {end}, past {size}")


def _dynamic(elf: ELFFile) -> tuple[Dynamic | None, int]:
    """The dynamic section (or PT_DYNAMIC segment, when sections are stripped) and its size."""
    for section in elf.iter_sections():
        if isinstance(section, DynamicSection):
            return section, int(section["sh_size"])
    for segment in elf.iter_segments():
        if isinstance(segment, DynamicSegment):
            return segment, int(segment["p_filesz"])
    return None, 0


def _text(tag: DynamicTag, attribute: str) -> str:
    value = getattr(tag, attribute)  # pyelftools sets these per tag kind
    if not isinstance(value, str):
        raise TypeError(f"{tag.entry.d_tag} holds {value!r}, not a string")
    return value


def _split(paths: str) -> tuple[str, ...]:
    return tuple(p for p in paths.split(":") if p)


def _glibc_required(path: Path, elf: ELFFile) -> tuple[int, int] | None:
    newest: tuple[int, int] | None = None
    for section in elf.iter_sections():
        if not isinstance(section, GNUVerNeedSection):
            continue
        # Elf_Verneed and Elf_Vernaux are 16 bytes each: a section holds no more
        # entries than that, whatever its (possibly corrupt) counts claim.
        budget = int(section["sh_size"]) // 16
        if section.num_versions() > budget:
            raise NotElf(path, f"{section.name} claims more entries than it can hold")
        for verneed, auxiliaries in section.iter_versions():
            budget -= 1 + int(verneed["vn_cnt"])
            if budget < 0:
                raise NotElf(path, f"{section.name} claims more entries than it can hold")
            for aux in auxiliaries:
                match = _GLIBC_VERSION.match(aux.name)
                if match is None:
                    continue
                version = (int(match[1]), int(match[2]))
                if newest is None or version > newest:
                    newest = version
    return newest
