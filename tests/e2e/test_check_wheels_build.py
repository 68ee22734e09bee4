"""pyfn-native-wheels builds sdist-only requirements with a real PyPy and reports the outcome."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path

import pytest
from support.servers import index_routes, serve

from pyfn_action.hooks.native_wheels import main
from pyfn_action.runtime.pack import PackResult
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime

pytestmark = pytest.mark.e2e
WHEELHOUSE = Path(__file__).parents[1] / ".wheelhouse"
SETUP_PY = b"""import platform
import sys

if platform.python_implementation() == "PyPy":
    sys.exit("cextonly needs CPython's C API: PyPy is not supported")
from setuptools import setup

setup(name="cextonly", version="1.0")
"""
PYPROJECT = b"""[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"
"""


def _sdist(directory: Path, name: str, files: dict[str, bytes]) -> None:
    with tarfile.open(directory / f"{name}.tar.gz", "w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{name}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.fixture(autouse=True)
def hermetic_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")


def test_sdists_are_built_with_pypy_and_judged_by_the_result(
    tmp_path: Path, pypy_archive: PackResult, capsys: pytest.CaptureFixture[str]
) -> None:
    index = tmp_path / "index"
    index.mkdir()
    for pattern in ("markupsafe-*.tar.gz", "setuptools-*.whl"):
        for found in WHEELHOUSE.glob(pattern):
            shutil.copy(found, index)
    _sdist(
        index,
        "cextonly-1.0",
        {
            "setup.py": SETUP_PY,
            "pyproject.toml": PYPROJECT,
            "PKG-INFO": b"Metadata-Version: 2.1\nName: cextonly\nVersion: 1.0\n",
        },
    )
    cache = tmp_path / "cache"
    request = RuntimeRequest(
        runtime="pypy3.11",
        arch="x86_64",
        pypy_version=None,
        archive=str(pypy_archive.path),
        sha256=pypy_archive.sha256,
        mirror=None,
    )
    resolve_runtime(request, cache)  # what any pyfn build leaves in the cache
    req = tmp_path / "requirements.txt"
    req.write_text("markupsafe==3.0.4\ncextonly==1.0\n")
    with serve(index_routes(index)) as base:
        args = [
            str(req),
            "--runtime",
            "pypy3.9",
            "--index-url",
            f"{base}/simple/",
            "--cache-dir",
            str(cache),
        ]
        assert main(args) == 1
        out = capsys.readouterr().out
        assert main(args) == 1  # again, from the cache of sdist builds
        again = capsys.readouterr().out
    assert (
        f"{req}:1 markupsafe==3.0.4: only an sdist (markupsafe-3.0.4.tar.gz); it builds for "
        "PyPy 3.9" in out
    )
    assert (
        f"{req}:2 cextonly==1.0: only an sdist (cextonly-1.0.tar.gz), which does not build "
        "for PyPy 3.9:"
        in out
        and "PyPy is not supported" in out
    )
    assert again == out
    builds = json.loads((cache / "sdist-builds.json").read_text())
    assert len(builds) == 2


def test_pypy_of_another_python_is_refused(
    tmp_path: Path, pypy_archive: PackResult, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    request = RuntimeRequest(
        runtime="pypy3.11",
        arch="x86_64",
        pypy_version=None,
        archive=str(pypy_archive.path),
        sha256=pypy_archive.sha256,
        mirror=None,
    )
    runtime = resolve_runtime(request, cache)
    req = tmp_path / "requirements.txt"
    req.write_text("markupsafe\n")
    code = main(
        [str(req), "--runtime", "pypy3.11", "--pypy", str(runtime.root), "--cache-dir", str(cache)]
    )
    assert code == 2
    assert "is PyPy 3.9 for x86_64, and the target is PyPy 3.11" in capsys.readouterr().err
