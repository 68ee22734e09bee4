"""pyfn_action.runtime.elf on real files: Debian's PyPy, objects built here with cc, broken ones."""

from __future__ import annotations

import random
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from pyfn_action.runtime.elf import ElfInfo, NotElf, is_elf, read_elf

PYPY_BINARY = Path("/usr/bin/pypy3.9")
LIBPYPY = Path("/usr/lib/x86_64-linux-gnu/libpypy3.9-c.so")

DEP_C = "int dep_value(void) { return 7; }\n"
# memcpy pinned to two versions: the newest one (2.14) must win over 2.2.5,
# which sorts later as text. math.h pulls in libm; dep_value in libdep.so.7.
FOO_C = """\
#include <string.h>
#include <math.h>
__asm__(".symver memcpy, memcpy@GLIBC_2.14");
int dep_value(void);
double foo(char *d, const char *s, unsigned long n, double x) {
    memcpy(d, s, n);
    return sqrt(x) + dep_value();
}
"""
OLD_C = """\
#include <string.h>
__asm__(".symver memcpy, memcpy@GLIBC_2.2.5");
void *old(char *d, const char *s, unsigned long n) { return memcpy(d, s, n); }
"""
PLAIN_C = "int plain(void) { return 1; }\n"


def _cc() -> str:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler (cc/gcc) on PATH: install gcc (CI does)")
    return cc


def build_shared(tmp_path: Path, name: str, source: str, *flags: str) -> Path:
    """Compile ``source`` into the shared object ``tmp_path/name``."""
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / name
    cmd = [_cc(), "-shared", "-fPIC", "-o", str(out), str(src), *flags]
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True)
    return out


@pytest.fixture
def libfoo(tmp_path: Path) -> Path:
    build_shared(tmp_path, "libdep.so.7", DEP_C, "-Wl,-soname,libdep.so.7")
    return build_shared(
        tmp_path,
        "libfoo.so",
        FOO_C,
        "-Wl,-soname,libfoo.so.1",
        "-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib:/opt/x",
        "-Wl,--no-as-needed",
        "-lm",
        str(tmp_path / "libdep.so.7"),
    )


@pytest.mark.parametrize(
    ("path", "needed", "runpath"),
    [
        (PYPY_BINARY, ("libpypy3.9-c.so", "libc.so.6"), ("$ORIGIN/",)),
        (LIBPYPY, ("libffi.so.8", "libc.so.6", "libm.so.6"), ()),
    ],
    ids=["pypy3.9", "libpypy"],
)
def test_debian_pypy(path: Path, needed: tuple[str, ...], runpath: tuple[str, ...]) -> None:
    if not path.is_file():
        pytest.fail(f"{path} is missing: install Debian's pypy3 package (CI does)")
    info = read_elf(path)
    assert info.path == path
    assert info.machine == "x86_64"
    assert info.elfclass == 64
    assert info.soname is None
    assert set(needed) <= set(info.needed)
    assert info.runpath == runpath
    assert info.glibc_required is not None
    assert (2, 17) <= info.glibc_required < (3, 0)
    assert is_elf(path)


def test_built_library(libfoo: Path) -> None:
    assert read_elf(libfoo) == ElfInfo(
        path=libfoo,
        machine="x86_64",
        elfclass=64,
        soname="libfoo.so.1",
        needed=("libm.so.6", "libdep.so.7", "libc.so.6"),
        runpath=("$ORIGIN/../lib", "/opt/x"),
        glibc_required=(2, 14),
    )


@pytest.mark.parametrize(
    ("source", "flags", "expected"),
    [
        # DT_RPATH stands in for DT_RUNPATH; GLIBC_2.2.5 counts as (2, 2).
        (
            OLD_C,
            ("-Wl,--disable-new-dtags,-rpath,/opt/old:/opt/older",),
            ("/opt/old", "/opt/older"),
        ),
        (PLAIN_C, ("-nostdlib",), ()),
    ],
    ids=["rpath-old-glibc", "no-libc"],
)
def test_rpath_and_versions(
    tmp_path: Path, source: str, flags: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    info = read_elf(build_shared(tmp_path, "libx.so", source, *flags))
    assert info.runpath == expected
    if source == OLD_C:
        assert info.needed == ("libc.so.6",)
        assert info.glibc_required == (2, 2)
    else:
        assert info.needed == ()
        assert info.glibc_required is None


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("x.so", b"INPUT(-lfoo)\n"),  # a linker script named like a library
        ("empty.so", b""),
        ("magic-only.so", b"\x7fELF"),
        ("bad-class.so", b"\x7fELF\x07\x01\x01" + b"\x00" * 57),
        ("short-header.so", b"\x7fELF\x02\x01\x01" + b"\x00" * 9),
    ],
)
def test_not_elf(tmp_path: Path, name: str, content: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NotElf, match="is not a readable ELF file") as caught:
        read_elf(path)
    assert caught.value.path == path
    assert is_elf(path) == content.startswith(b"\x7fELF")


@pytest.mark.parametrize("keep", [0.9, 0.5, 0.1, 64, 16])
def test_truncated(libfoo: Path, tmp_path: Path, keep: float) -> None:
    data = libfoo.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    truncated = tmp_path / "truncated.so"
    truncated.write_bytes(data[:cut])
    assert is_elf(truncated)
    with pytest.raises(NotElf):
        read_elf(truncated)


def test_corrupt_bytes_never_crash(libfoo: Path, tmp_path: Path) -> None:
    """Random damage gives an ElfInfo or NotElf, never a pyelftools exception."""
    data = libfoo.read_bytes()
    rng = random.Random(1234)
    damaged = tmp_path / "damaged.so"
    outcomes: Counter[str] = Counter()
    for _ in range(500):
        mutable = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutable[rng.randrange(4, len(data))] = rng.randrange(256)
        damaged.write_bytes(bytes(mutable))
        try:
            read_elf(damaged)
            outcomes["parsed"] += 1
        except NotElf:
            outcomes["refused"] += 1
    assert outcomes["parsed"] and outcomes["refused"], outcomes


@pytest.mark.timeout(20)
@pytest.mark.parametrize("field", ["vn_cnt", "sh_info"])
def test_corrupt_version_counts(libfoo: Path, tmp_path: Path, field: str) -> None:
    """Huge counts in .gnu.version_r are refused (pyelftools alone would loop for hours)."""
    with libfoo.open("rb") as fh:
        elf = ELFFile(fh)
        index, section = next(
            (i, s) for i, s in enumerate(elf.iter_sections()) if s.name == ".gnu.version_r"
        )
        if field == "vn_cnt":  # Elf64_Verneed.vn_cnt, in the first entry
            offset, width = section["sh_offset"] + 2, 2
        else:  # Elf64_Shdr.sh_info: the number of entries
            offset, width = elf["e_shoff"] + index * elf["e_shentsize"] + 44, 4
    data = bytearray(libfoo.read_bytes())
    data[offset : offset + width] = b"\xff" * width
    damaged = tmp_path / "damaged.so"
    damaged.write_bytes(bytes(data))
    with pytest.raises(NotElf, match="claims more entries"):
        read_elf(damaged)


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "thing.so"
    if kind == "directory":
        path.mkdir()
    assert not is_elf(path)
    with pytest.raises(OSError):
        read_elf(path)
