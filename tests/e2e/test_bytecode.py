"""Precompiled bytecode is the same bytes whatever state the compiling PyPy is in."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pyfn_action.bundle import bytecode

pytestmark = pytest.mark.e2e


def _pypy() -> str:
    found = shutil.which("pypy3")
    if found is None:
        pytest.fail("pypy3 is not installed: CI installs Debian's pypy3")
    return found


def _stdlib(pypy: str) -> Path:
    out = subprocess.run(
        [pypy, "-c", "import email, os; print(os.path.dirname(os.path.dirname(email.__file__)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def _compile(pypy: str, preamble: str, sources: list[Path], out: Path) -> list[bytes]:
    """Compile ``sources`` (in the given order) after running ``preamble``."""
    out.mkdir()
    jobs = [[str(s), str(out / f"{n}.pyc"), f"lib/{s.name}"] for n, s in enumerate(sources)]
    result = subprocess.run(
        [pypy, "-c", preamble + bytecode._COMPILER],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    return [(out / f"{n}.pyc").read_bytes() for n in range(len(sources))]


def test_same_bytes_from_processes_in_different_states(tmp_path: Path) -> None:
    pypy = _pypy()
    lib = _stdlib(pypy)
    sources = sorted([*lib.glob("email/*.py"), *lib.glob("json/*.py"), *lib.glob("asyncio/*.py")])
    assert len(sources) > 40
    # Strings interned by earlier imports, or by earlier sources in the batch, once
    # changed how PyPy's marshal wrote the same constants.
    busy = "import email, asyncio, json, typing, decimal\n"
    first = _compile(pypy, busy, sources, tmp_path / "a")
    second = _compile(pypy, "", sources[::-1], tmp_path / "b")[::-1]
    differing = [s.name for s, a, b in zip(sources, first, second, strict=True) if a != b]
    assert differing == []
    # An unchecked-hash pyc (PEP 552 flags = 0b01) that the runtime loads and runs.
    assert all(pyc[4:8] == b"\x01\x00\x00\x00" for pyc in first)
    probe = tmp_path / "probe"
    probe.mkdir()
    decoder = sources.index(lib / "json" / "decoder.py")
    shutil.copy(tmp_path / "a" / f"{decoder}.pyc", probe / "m.pyc")  # sourceless
    ran = subprocess.run(
        [pypy, "-c", "import m; print(m.JSONDecoder().decode('[1]'))"],
        cwd=probe,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 0 and ran.stdout.strip() == "[1]", ran.stderr
