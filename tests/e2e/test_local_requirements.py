"""Local requirements (``./pkg`` in a requirements file) end to end: the package pyfn
judged is the one installed, a changed package is installed again, and building it
leaves the function's directory as it was."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest
from conftest import Served, build_args, hermetic_env, pyfn
from support.wheels import make_wheel

pytestmark = pytest.mark.e2e


def _project(where: Path, module: str, says: str) -> Path:
    """A setuptools project (``setup.py``) named ``localpkg``, holding ``module``."""
    (where / module).mkdir(parents=True)
    (where / module / "__init__.py").write_text(f"SAYS = {says!r}\n")
    (where / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
    )
    (where / "setup.py").write_text(
        "from setuptools import setup\n"
        f"setup(name='localpkg', version='1.0', packages=[{module!r}])\n"
    )
    return where


def _function(tmp_path: Path) -> Path:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    return src


def _build(src: Path, out: Path, served: Served, index_url: str, cache: Path, *more: str) -> None:
    args = build_args(
        src, out, served, index_url, "--signature", "script", "--script", "main.py", *more
    )
    result = pyfn(args, hermetic_env(cache))
    assert result.code == 0, result.stderr


def _site(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n.startswith("site/")}


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_the_package_judged_is_the_package_installed(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``./pkg`` in deps/requirements.txt is deps/pkg (where pyfn judged it), never the
    ``pkg`` of the working directory."""
    src = _function(tmp_path)
    _project(src / "deps" / "pkg", "judged", "deps/pkg")
    _project(src / "pkg", "working_directory", "pkg")  # the same name, elsewhere
    (src / "deps" / "requirements.txt").write_text("./pkg\n")
    monkeypatch.chdir(src)  # pip would read ./pkg here
    out = tmp_path / "out"
    _build(
        src, out, served_pypy, index_url, session_cache, "--requirements", "deps/requirements.txt"
    )
    site = _site(out / "bundle.zip")
    assert not any(n.startswith("site/working_directory/") for n in site)
    assert site["site/judged/__init__.py"] == b"SAYS = 'deps/pkg'\n"


def test_an_included_file_names_its_own_neighbours(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    """``-r nested/more.txt`` naming ``./extra`` (and ``file:`` forms) means
    nested/extra, whatever the working directory."""
    src = _function(tmp_path)
    (src / "requirements.txt").write_text("-r nested/more.txt\n")
    (src / "nested" / "wheels").mkdir(parents=True)
    make_wheel(src / "nested" / "wheels", "wheelpkg", "1.0", "py3-none-any")
    (src / "nested" / "more.txt").write_text(
        "./extra\nfile:other#egg=otherpkg\nwheelpkg @ file:wheels/wheelpkg-1.0-py3-none-any.whl\n"
    )
    _project(src / "nested" / "extra", "nested_extra", "nested")
    other = _project(src / "nested" / "other", "nested_other", "other")
    (other / "setup.py").write_text(
        "from setuptools import setup\n"
        "setup(name='otherpkg', version='2.0', packages=['nested_other'])\n"
    )
    out = tmp_path / "out"
    _build(src, out, served_pypy, index_url, session_cache)
    site = _site(out / "bundle.zip")
    assert site["site/nested_extra/__init__.py"] == b"SAYS = 'nested'\n"
    assert site["site/nested_other/__init__.py"] == b"SAYS = 'other'\n"
    assert site["site/wheelpkg/__init__.py"] == b"VERSION = '1.0'\n"


def test_a_changed_local_package_is_installed_again(
    tmp_path: Path, served_pypy: Served, index_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _function(tmp_path)
    monkeypatch.chdir(src)  # where ./pkg means the same to pip as to pyfn
    _project(src / "pkg", "localmod", "first")
    (src / "requirements.txt").write_text("./pkg\n")
    cache = tmp_path / "cache"
    _build(src, tmp_path / "one", served_pypy, index_url, cache)
    assert _site(tmp_path / "one" / "bundle.zip")["site/localmod/__init__.py"] == (
        b"SAYS = 'first'\n"
    )
    (src / "pkg" / "localmod" / "__init__.py").write_text("SAYS = 'second'\n")
    _build(src, tmp_path / "two", served_pypy, index_url, cache)
    site = _site(tmp_path / "two" / "bundle.zip")
    assert site["site/localmod/__init__.py"] == b"SAYS = 'second'\n"
    (src / "pkg" / "localmod" / "more.py").write_text("MORE = 1\n")  # a new file counts too
    _build(src, tmp_path / "three", served_pypy, index_url, cache)
    assert "site/localmod/more.py" in _site(tmp_path / "three" / "bundle.zip")


def test_building_a_local_package_writes_nothing_into_the_source(
    tmp_path: Path, served_pypy: Served, index_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = _function(tmp_path)
    monkeypatch.chdir(src)  # where ./pkg means the same to pip as to pyfn
    _project(src / "pkg", "quietmod", "quiet")
    (src / "requirements.txt").write_text("./pkg\n")
    before = _listing(src)
    out = tmp_path / "out"
    _build(src, out, served_pypy, index_url, tmp_path / "cache")  # installed, not reused
    assert _listing(src) == before
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = zf.namelist()
    app = [n for n in names if n.startswith("app/")]
    assert "app/pkg/setup.py" in app and "site/quietmod/__init__.py" in names
    assert not [n for n in app if "/build/" in n or ".egg-info" in n]


def test_a_local_package_linking_out_of_the_source_is_refused(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    src = _function(tmp_path)
    monkeypatch.chdir(src)
    _project(src / "pkg", "leaky", "leaky")
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the bundle")
    os.symlink(secret, src / "pkg" / "leaky" / "data.txt")
    (src / "requirements.txt").write_text("./pkg\n")
    args = build_args(
        src,
        tmp_path / "out",
        served_pypy,
        index_url,
        "--signature",
        "script",
        "--script",
        "main.py",
    )
    result = pyfn(args, hermetic_env(session_cache))
    assert result.code == 5, result.stderr
    assert "data.txt" in result.stderr and "outside" in result.stderr
    assert not (tmp_path / "out" / "bundle.zip").exists()
