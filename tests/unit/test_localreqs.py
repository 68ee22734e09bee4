"""Local requirements: hashed with every file they hold, and handed to pip as private
copies named by absolute path (checked with this environment's real pip). How they
are judged is tested with the requirements files, in test_source.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.wheels import make_wheel

from pyfn_action.deps.localreqs import digest, local_paths, pip_files
from pyfn_action.deps.reqfile import read_requirements
from pyfn_action.deps.sitecache import cache_key
from pyfn_action.deps.sources import Sources
from pyfn_action.errors import RequirementsError
from pyfn_action.runtime.targets import Target


def _package(where: Path, says: str = "one") -> Path:
    (where / "mod").mkdir(parents=True)
    (where / "setup.py").write_text("from setuptools import setup\nsetup(name='mod')\n")
    (where / "mod" / "__init__.py").write_text(f"SAYS = {says!r}\n")
    return where


def _source(tmp_path: Path, requirements: str) -> Path:
    src = tmp_path / "fn"
    src.mkdir(parents=True)
    (src / "requirements.txt").write_text(requirements)
    return src


def _wheel(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    return make_wheel(directory, name, "1.0", "py3-none-any")


def _listing(root: Path) -> dict[str, bytes | str]:
    """Every path below ``root``: a link's target, a file's bytes, or "dir"."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[rel] = os.readlink(path)
        else:
            found[rel] = path.read_bytes() if path.is_file() else "dir"
    return found


# --- hashed with every file -----------------------------------------------------------


def test_the_digest_covers_every_file_of_every_local_requirement(tmp_path: Path) -> None:
    src = _source(tmp_path, "./pkg\n")
    pkg = _package(src / "pkg")
    (src / "main.py").write_text("print('not a requirement')\n")

    def now() -> str:
        return digest(read_requirements(src / "requirements.txt", src))

    base = now()
    assert base == now() and len(base) == 64
    named_only = _source(tmp_path / "other", "requests\n")
    assert digest(read_requirements(named_only / "requirements.txt", named_only)) == ""
    assert digest(None) == "" and local_paths(None) == ()
    seen = {base}
    changes = [
        lambda: (pkg / "mod" / "__init__.py").write_text("SAYS = 'two'\n"),
        lambda: (pkg / "mod" / "more.py").write_text(""),
        lambda: (pkg / "mod" / "more.py").rename(pkg / "mod" / "other.py"),
        lambda: (pkg / "mod" / "other.py").chmod(0o755),
        lambda: (pkg / "empty").mkdir(),
        lambda: os.symlink("mod/other.py", pkg / "alias.py"),
    ]
    for change in changes:
        change()
        seen.add(now())
    assert len(seen) == 1 + len(changes)
    # A file outside the package, or the same package written otherwise, changes nothing.
    before = now()
    (src / "main.py").write_text("print('changed, but not a requirement')\n")
    (src / "requirements.txt").write_text("pkg/\n")
    assert now() == before


def test_a_link_out_of_a_local_package_is_refused(tmp_path: Path) -> None:
    src = _source(tmp_path, "./pkg\n")
    pkg = _package(src / "pkg")
    (src / "shared.txt").write_text("in the source, but not in the package\n")
    os.symlink("../shared.txt", pkg / "shared.txt")
    requirements = read_requirements(src / "requirements.txt", src)
    with pytest.raises(RequirementsError) as info:
        digest(requirements)
    assert "shared.txt is a link that leads outside" in info.value.message


def test_a_fifo_in_a_local_package_is_refused_not_read(tmp_path: Path) -> None:
    src = _source(tmp_path, "./pkg\n")
    os.mkfifo(_package(src / "pkg") / "pipe")
    with pytest.raises(RequirementsError, match="pipe is not a regular file"):
        digest(read_requirements(src / "requirements.txt", src))


def test_the_site_cache_key_follows_the_local_digest(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_text("./pkg\n")
    target = Target("3.11", "73", "x86_64", (2, 35))
    keys = {cache_key([req], [], target, Sources(), "a" * 64, local=d) for d in ("", "1", "2")}
    assert len(keys) == 3


# --- copied, and named to pip by absolute path ------------------------------------------


def test_pip_reads_copies_named_by_absolute_path_on_the_same_lines(tmp_path: Path) -> None:
    src = _source(tmp_path, "# local\n./pkg\n-r nested/more.txt\nrequests \\\n  >=2\n")
    pkg = _package(src / "pkg")
    os.symlink("mod/__init__.py", pkg / "alias.py")
    (src / "nested").mkdir()
    (src / "nested" / "more.txt").write_text("file:wheels/demo-1.0-py3-none-any.whl\n")
    _wheel(src / "nested" / "wheels", "demo")
    original = _listing(src)
    requirements = read_requirements(src / "requirements.txt", src)
    work = tmp_path / "work"
    top = pip_files(requirements, work, expected=digest(requirements))[0]
    assert top.is_relative_to(work)
    lines = top.read_text().splitlines()
    copy = work / "packages" / "0" / "pkg"
    assert lines[0] == "" and lines[1] == str(copy) and lines[3] == "requests   >=2"
    assert lines[2].startswith("-r ") and Path(lines[2][3:]).is_relative_to(work)
    more = Path(lines[2][3:]).read_text()
    wheel = work / "packages" / "1" / "demo-1.0-py3-none-any.whl"
    assert more == f"{wheel.as_uri()}\n"
    assert _listing(copy) == _listing(pkg) and os.readlink(copy / "alias.py") == "mod/__init__.py"
    assert wheel.read_bytes() == (src / "nested" / "wheels" / wheel.name).read_bytes()
    assert _listing(src) == original
    assert local_paths(requirements) == (
        pkg.resolve(),
        (src / "nested" / "wheels" / wheel.name).resolve(),
    )


def test_a_copy_that_is_not_what_was_hashed_is_refused(tmp_path: Path) -> None:
    src = _source(tmp_path, "./pkg\n")
    _package(src / "pkg")
    requirements = read_requirements(src / "requirements.txt", src)
    with pytest.raises(RequirementsError, match="changed while pyfn copied it"):
        pip_files(requirements, tmp_path / "work", expected="0" * 64)


def test_a_cache_inside_the_local_package_is_refused(tmp_path: Path) -> None:
    src = _source(tmp_path, ".\n")
    requirements = read_requirements(src / "requirements.txt", src)
    with pytest.raises(RequirementsError, match="holds pyfn's cache directory"):
        pip_files(requirements, src / ".cache" / "work", expected=digest(requirements))


def test_a_copy_pip_would_misread_is_refused(tmp_path: Path) -> None:
    src = _source(tmp_path, "./pkg\n")
    _package(src / "pkg")
    requirements = read_requirements(src / "requirements.txt", src)
    with pytest.raises(RequirementsError, match="characters a requirements file reads"):
        pip_files(requirements, tmp_path / "a #b", expected=digest(requirements))


def test_real_pip_installs_the_copies_whatever_its_working_directory(tmp_path: Path) -> None:
    """This environment's pip, run elsewhere, resolves every form to the judged files,
    and finds links beside the file that names them, as it did before the copy."""
    src = tmp_path / "fn"
    deps = src / "deps"
    _wheel(deps / "wheels", "alpha")
    _wheel(deps / "nested" / "wheels", "beta")
    _wheel(deps / "nested" / "wheels", "gamma")
    _wheel(deps / "nested" / "found", "delta")
    (deps / "requirements.txt").write_text("./wheels/alpha-1.0-py3-none-any.whl\n-r nested/b.txt\n")
    (deps / "nested" / "b.txt").write_text(
        "file:wheels/beta-1.0-py3-none-any.whl\n"
        "gamma @ file:./wheels/gamma-1.0-py3-none-any.whl\n"
        "--find-links found\n"
        "delta\n"
    )
    cwd = tmp_path / "elsewhere"
    for name in ("alpha", "beta", "gamma"):  # what pip would take, read from its directory
        _wheel(cwd / "wheels", name)
    _wheel(cwd / "found", "delta")
    requirements = read_requirements(deps / "requirements.txt", src)
    work = tmp_path / "work"
    top = pip_files(requirements, work, expected=digest(requirements))[0]
    report = tmp_path / "report.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--disable-pip-version-check",
            "--isolated",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--no-index",
            "--quiet",
            "--report",
            str(report),
            "-r",
            str(top),
        ],
        cwd=cwd,
        check=True,
        capture_output=True,
        timeout=120,
    )
    installs = json.loads(report.read_text())["install"]
    urls = {item["metadata"]["name"]: item["download_info"]["url"] for item in installs}
    assert urls == {
        "alpha": (work / "packages" / "0" / "alpha-1.0-py3-none-any.whl").as_uri(),
        "beta": (work / "packages" / "1" / "beta-1.0-py3-none-any.whl").as_uri(),
        "gamma": (work / "packages" / "2" / "gamma-1.0-py3-none-any.whl").as_uri(),
        "delta": (deps / "nested" / "found" / "delta-1.0-py3-none-any.whl").as_uri(),
    }
