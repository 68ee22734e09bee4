from __future__ import annotations

import importlib.metadata
import zipfile
from pathlib import Path

import pytest

from pyfn_action.errors import BundleError
from pyfn_action.pip_runner import _pip_for_target
from pyfn_action.runtime import Runtime


def _runtime(tmp_path: Path, python: str, wheels: dict[str, bytes] | None = None) -> Runtime:
    root = tmp_path / "rt"
    bundled = root / "lib" / f"pypy{python}" / "ensurepip" / "_bundled"
    bundled.mkdir(parents=True)
    for name, data in (wheels or {}).items():
        with zipfile.ZipFile(bundled / name, "w") as zf:
            zf.writestr("pip/__main__.py", data)
    return Runtime(root, python, "7.3.19", "x86_64", "73", "0" * 64, "test")


def test_prefers_the_runtimes_own_pip(tmp_path: Path) -> None:
    runtime = _runtime(
        tmp_path,
        "3.10",
        {"pip-9.0-py3-none-any.whl": b"# old", "pip-24.0-py3-none-any.whl": b"# newest"},
    )
    home = _pip_for_target(runtime, tmp_path / "cache")
    assert (home / "pip" / "__main__.py").read_bytes() == b"# newest"
    assert _pip_for_target(runtime, tmp_path / "cache") == home  # unpacked once
    assert [p.name for p in home.parent.iterdir()] == [home.name]  # no temporaries


def test_falls_back_to_this_pip_when_it_supports_the_runtime(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "3.11")
    home = _pip_for_target(runtime, tmp_path / "cache")
    assert home.name == f"host-{importlib.metadata.version('pip')}"
    assert (home / "pip" / "__main__.py").is_file()


def test_refuses_a_pip_that_cannot_run_on_the_runtime(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "3.0")  # no pip supports Python 3.0
    with pytest.raises(BundleError, match=r"does not run on Python 3\.0"):
        _pip_for_target(runtime, tmp_path / "cache")
