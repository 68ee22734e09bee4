"""Fixtures shared by the unit and end-to-end tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pyfn_action.runtime.pack import PackResult, pack_runtime


@pytest.fixture(scope="session")
def pypy_archive(tmp_path_factory: pytest.TempPathFactory) -> PackResult:
    """Debian's PyPy 3.9, packed once per session into an archive in the official layout.

    It stands in for the official download. Its bundled libraries (lib/*.so*)
    load only with LD_LIBRARY_PATH=<root>/lib: Debian's extension modules carry
    no run path.
    """
    pypy = shutil.which("pypy3")
    if pypy is None:
        pytest.fail("pypy3 is not on PATH: install Debian's pypy3 package (CI does)")
    out = tmp_path_factory.mktemp("pypy-archive") / "pypy3.9-v7.3.11-linux64.tar.gz"
    return pack_runtime(Path(pypy), out)
