"""`pyfn runtime pack` on Debian's real PyPy: deterministic, relocatable, official layout."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pyfn_action.errors import PackError
from pyfn_action.progress import ProgressTask
from pyfn_action.runtime import archive
from pyfn_action.runtime.elf import read_elf
from pyfn_action.runtime.libdeps import load_image_libs
from pyfn_action.runtime.pack import PackResult, _check_glibc, pack_runtime
from pyfn_action.runtime.pypy import inspect_tree

pytestmark = pytest.mark.e2e

TOP = "pypy3.9-v7.3.11-linux64"


@dataclass
class Recorder:
    """A ProgressFactory that remembers what it was told."""

    calls: list[tuple[str, int | None]] = field(default_factory=list)
    advanced: int = 0
    closed: int = 0

    def __call__(self, label: str, total: int | None, unit: str = "B") -> ProgressTask:
        self.calls.append((label, total))
        return self

    def advance(self, n: int) -> None:
        self.advanced += n

    def close(self) -> None:
        self.closed += 1


def _pypy() -> Path:
    found = shutil.which("pypy3")
    if found is None:
        pytest.fail("pypy3 is not on PATH: install Debian's pypy3 package (CI does)")
    return Path(found)


@pytest.fixture(scope="module")
def extracted(pypy_archive: PackResult, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extracted") / "pypy"
    assert archive.extract(pypy_archive.path, root) == pypy_archive.top
    return root


def _run(root: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the extracted PyPy with its bundled libraries on the loader's path."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LD_LIBRARY_PATH": str(root / "lib")}
    return subprocess.run(
        [str(root / "bin" / "pypy3.9"), "-S", "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )


def test_result(pypy_archive: PackResult) -> None:
    assert pypy_archive.path.name == f"{TOP}.tar.gz"
    assert pypy_archive.top == TOP
    assert (pypy_archive.python_version, pypy_archive.pypy_version) == ("3.9", "7.3.11")
    assert pypy_archive.arch == "x86_64"
    assert pypy_archive.sha256 == hashlib.sha256(pypy_archive.path.read_bytes()).hexdigest()
    bundled = set(pypy_archive.bundled_libs)
    assert bundled, "Debian's stdlib needs libgdbm and libpanelw, which the image lacks"
    assert not bundled & load_image_libs()
    assert not any(name.startswith("libpypy") for name in bundled)
    assert pypy_archive.glibc_required is not None
    assert pypy_archive.glibc_required >= (2, 17)


def test_deterministic(
    pypy_archive: PackResult, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    with caplog.at_level(logging.WARNING, logger="pyfn_action.runtime.pack"):
        again = pack_runtime(_pypy(), tmp_path / "again.tar.gz", progress=recorder)
    # A PyPy without its C headers (Debian's pypy3 without pypy3-dev) is packed with a
    # warning: sdists with C code cannot be built with the archive.
    with tarfile.open(tmp_path / "again.tar.gz") as tar:
        headers = any(name.endswith("/Python.h") for name in tar.getnames())
    warned = any("has no C headers" in r.getMessage() for r in caplog.records)
    assert warned is not headers
    assert again.sha256 == pypy_archive.sha256
    assert again.bundled_libs == pypy_archive.bundled_libs
    assert [p.name for p in tmp_path.iterdir()] == ["again.tar.gz"]  # no temporary left
    [(label, total)] = recorder.calls
    assert TOP in label
    assert total == recorder.advanced
    assert total is not None and total > 50_000_000
    assert recorder.closed == 1


def test_layout(pypy_archive: PackResult) -> None:
    raw = pypy_archive.path.read_bytes()
    assert raw[4:8] == b"\0\0\0\0", "gzip header mtime must be 0"
    assert not raw[3] & 0x08, "gzip header must not carry a file name"
    with tarfile.open(pypy_archive.path) as tar:
        members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        by_name = {m.name: m for m in members}
        assert any(n.startswith(f"{TOP}/lib/pypy3.9/ensurepip/_bundled/pip-") for n in names)
        deps = tar.extractfile(f"{TOP}/lib/PYPY_PORTABLE_DEPS.txt")
        assert deps is not None
        assert deps.read().decode().split() == list(pypy_archive.bundled_libs)
    for m in members:
        assert (m.uid, m.gid, m.uname, m.gname) == (0, 0, "", "")
        if not m.isfile():
            assert m.mtime == 315532800, m.name  # files keep theirs, as installed
        assert m.mode in (0o644, 0o755), m.name
        assert m.name == TOP or m.name.startswith(f"{TOP}/")
        assert m.isdir() or m.isfile() or m.issym(), m.name
        if m.isdir():
            assert m.mode == 0o755
        if m.name.endswith(".so") or ".so." in m.name:
            assert m.mode == 0o755, m.name
    for name in ("bin/pypy3.9", "bin/libpypy3.9-c.so"):
        assert by_name[f"{TOP}/{name}"].isfile()
        assert by_name[f"{TOP}/{name}"].mode == 0o755
    for alias in ("pypy3", "pypy"):
        assert by_name[f"{TOP}/bin/{alias}"].issym()
        assert by_name[f"{TOP}/bin/{alias}"].linkname == "pypy3.9"
    for soname in pypy_archive.bundled_libs:
        assert by_name[f"{TOP}/lib/{soname}"].isfile()
    stdlib = f"{TOP}/lib/pypy3.9/"
    assert f"{stdlib}os.py" in by_name
    assert f"{TOP}/include/pypy3.9/pypy_decl.h" in by_name
    # The installation's own bytecode differs between machines: never packed.
    assert not [n for n in names if "/__pycache__" in n]
    assert any(n.startswith(f"{stdlib}test/") for n in names), "test suites are kept"
    assert f"{stdlib}EXTERNALLY-MANAGED" not in by_name
    assert not [n for n in names if "-packages/" in n and n.startswith(stdlib)]


def test_extracted_runs_relocated(extracted: Path) -> None:
    code = "import sys, ssl, sqlite3, lzma, json; print(json.dumps([sys.prefix, sys.path]))"
    prefix, path = json.loads(_run(extracted, code).stdout)
    assert Path(prefix) == extracted
    assert [p for p in path if p.startswith("/usr")] == []
    assert str(extracted / "lib" / "pypy3.9") in path


def test_bundled_libraries_load_from_the_archive(extracted: Path) -> None:
    """Every stdlib extension that needs a bundled library loads it from <root>/lib."""
    bundled = set((extracted / "lib" / "PYPY_PORTABLE_DEPS.txt").read_text().split())
    users = {
        str(so): sorted(bundled & set(read_elf(so).needed))
        for so in (extracted / "lib" / "pypy3.9").rglob("*.so")
    }
    users = {so: needs for so, needs in users.items() if needs}
    assert set().union(*users.values()) == bundled
    code = (
        "import ctypes, json, sys\n"
        "held = [ctypes.CDLL(so) for so in json.loads(sys.argv[1])]  # kept open\n"
        "print(open('/proc/self/maps').read())\n"
    )
    maps = _run(extracted, code, json.dumps(sorted(users))).stdout
    loaded = {line.split()[-1] for line in maps.splitlines() if "/" in line}
    for soname in bundled:
        assert str(extracted / "lib" / soname) in loaded, soname


def test_inspect_tree(pypy_archive: PackResult, extracted: Path) -> None:
    runtime = inspect_tree(
        extracted,
        sha256=pypy_archive.sha256,
        source=str(pypy_archive.path),
        names=(pypy_archive.top, pypy_archive.path.name, str(pypy_archive.path)),
    )
    assert runtime.python_version == "3.9"
    assert runtime.pypy_version == "7.3.11"
    assert runtime.arch == "x86_64"
    assert runtime.pp_tag == "73"
    assert runtime.executable.is_file()


def _regular_file_as_parent(tmp: Path) -> tuple[Path, Path]:
    (tmp / "a-file").write_text("not a directory")
    return _pypy(), tmp / "a-file" / f"{TOP}.tar.gz"


def _not_executable(tmp: Path) -> tuple[Path, Path]:
    script = tmp / "pypy3"
    script.write_text("#!/bin/sh\n")
    return script, tmp / "out.tar.gz"


def _prints_a_list(tmp: Path) -> tuple[Path, Path]:
    script = tmp / "pypy3"
    script.write_text("#!/bin/sh\necho '[1, 2]'\n")
    script.chmod(0o755)
    return script, tmp / "out.tar.gz"


BAD_INPUTS: dict[str, tuple[Callable[[Path], tuple[Path, Path]], str]] = {
    "missing-interpreter": (
        lambda tmp: (tmp / "no-such-pypy", tmp / "out.tar.gz"),
        "does not exist",
    ),
    "cpython": (lambda tmp: (Path(sys.executable), tmp / "out.tar.gz"), "is not PyPy"),
    "not-python": (lambda tmp: (Path("/bin/true"), tmp / "out.tar.gz"), "could not describe"),
    "not-executable": (_not_executable, "Cannot run"),
    "odd-answer": (_prints_a_list, "could not describe"),
    "zip-suffix": (lambda tmp: (_pypy(), tmp / "out.zip"), r"\.tar\.gz, \.tgz"),
    "bare-tar": (lambda tmp: (_pypy(), tmp / "out.tar"), "Cannot tell how to compress"),
    "parent-is-a-file": (_regular_file_as_parent, "Cannot write"),
    "proc": (lambda tmp: (_pypy(), Path(f"/proc/{TOP}.tar.gz")), "Cannot write"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs(tmp_path: Path, case: str) -> None:
    make, message = BAD_INPUTS[case]
    interpreter, output = make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(PackError, match=message) as caught:
        pack_runtime(interpreter, output)
    assert caught.value.fix, "every PackError says what to do"
    assert sorted(tmp_path.rglob("*")) == before
    assert not output.exists()


@pytest.mark.parametrize(
    ("glibc", "warned"),
    [((2, 36), True), ((3, 0), True), ((2, 35), False), ((2, 17), False), (None, False)],
)
def test_glibc_warning(
    caplog: pytest.LogCaptureFixture, glibc: tuple[int, int] | None, warned: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger="pyfn_action.runtime.pack"):
        _check_glibc(Path("x.tar.gz"), glibc)
    messages = [r.getMessage() for r in caplog.records]
    assert bool(messages) == warned
    if warned:
        assert "may not load on Cloud Functions" in messages[0]
        assert "2.35" in messages[0]
