"""Work done ahead while sdists build: it runs only then, it ends when the builds end
(however they end), and what it leaves in the caches is exactly what the bundle stage
would compute, so the bundle's bytes do not depend on it."""

from __future__ import annotations

import hashlib
import shutil
import threading
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from support.wheels import make_wheel

from pyfn_action.bundle import bytecode, deflate, prewarm
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.trim import builtin_rules
from pyfn_action.bundle.zipper import write_zip
from pyfn_action.deps.locked import fill_wheelhouse
from pyfn_action.deps.pip_runner import Interpreter
from pyfn_action.deps.sdist import SourceBuild
from pyfn_action.deps.sources import Sources
from pyfn_action.deps.uvlock import Locked, LockedFile
from pyfn_action.errors import NoCompatibleWheel
from pyfn_action.runtime.pypy import Runtime
from pyfn_action.runtime.targets import Target

WAIT = 30.0  # seconds any one side waits for the other before the test fails


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _locked(tmp_path: Path, *, sdist: bool) -> list[Locked]:
    files = tmp_path / "index"
    files.mkdir()
    wheel = make_wheel(files, "demo", "1.0", "py3-none-any")
    locked = [Locked("demo", "1.0", wheels=(LockedFile(str(wheel), wheel.name, _sha256(wheel)),))]
    if sdist:
        archive = files / "slow-1.0.tar.gz"
        archive.write_bytes(b"an sdist the fake builder never reads")
        locked.append(Locked("slow", "1.0", sdist=LockedFile(str(archive), archive.name, None)))
    return locked


def _fill(tmp_path: Path, locked: list[Locked], builder, meanwhile) -> Path:  # type: ignore[no-untyped-def]
    wheelhouse = tmp_path / "wheelhouse"
    fill_wheelhouse(
        locked,
        lock_dir=tmp_path,
        target=Target("3.11", "73", "x86_64", (2, 39)),
        interpreter=Interpreter(("pypy3",), {}, is_target=True),
        sources=Sources(),
        cache_dir=tmp_path / "cache",
        wheelhouse=wheelhouse,
        work=tmp_path / "work",
        builder=builder,
        meanwhile=meanwhile,
    )
    return wheelhouse


def test_work_ahead_runs_while_the_sdists_build_and_ends_with_them(tmp_path: Path) -> None:
    started, seen = threading.Event(), {}

    def meanwhile(wheels: Sequence[Path], built: threading.Event) -> None:
        seen["wheels"] = [w.name for w in wheels]
        seen["built then"] = built.is_set()
        started.set()
        seen["ended"] = built.wait(WAIT)

    def builder(spec, name, interpreter, sources, out):  # type: ignore[no-untyped-def]
        assert started.wait(WAIT), "the work ahead did not start while the sdist built"
        out.mkdir(parents=True, exist_ok=True)
        return SourceBuild((make_wheel(out, "slow", "1.0", "py3-none-any"),), "")

    wheelhouse = _fill(tmp_path, _locked(tmp_path, sdist=True), builder, meanwhile)
    assert seen == {"wheels": ["demo-1.0-py3-none-any.whl"], "built then": False, "ended": True}
    assert sorted(p.name for p in wheelhouse.glob("*.whl")) == [
        "demo-1.0-py3-none-any.whl",
        "slow-1.0-py3-none-any.whl",
    ]


def test_a_failed_build_ends_the_work_ahead_and_is_reported(tmp_path: Path) -> None:
    started, seen = threading.Event(), {}

    def meanwhile(wheels: Sequence[Path], built: threading.Event) -> None:
        started.set()
        seen["ended"] = built.wait(WAIT)

    def builder(spec, name, interpreter, sources, out):  # type: ignore[no-untyped-def]
        assert started.wait(WAIT)
        return SourceBuild((), "error: the compiler said no")

    with pytest.raises(NoCompatibleWheel, match="slow"):
        _fill(tmp_path, _locked(tmp_path, sdist=True), builder, meanwhile)
    assert seen == {"ended": True}


def test_nothing_is_done_ahead_when_nothing_builds(tmp_path: Path) -> None:
    calls: list[object] = []

    def builder(spec, name, interpreter, sources, out):  # type: ignore[no-untyped-def]
        raise AssertionError("nothing to build")

    wheelhouse = _fill(
        tmp_path, _locked(tmp_path, sdist=False), builder, lambda *args: calls.append(args)
    )
    assert calls == []
    assert [p.name for p in wheelhouse.glob("*.whl")] == ["demo-1.0-py3-none-any.whl"]


# The caches: what is done ahead is what the bundle stage would have done.


def _pypy() -> Interpreter:
    pypy = shutil.which("pypy3")
    if pypy is None:
        pytest.fail("pypy3 is not on PATH: install Debian's pypy3 package (CI does)")
    return Interpreter((pypy, "-s"), {}, is_target=True)


def _runtime(tmp_path: Path) -> Runtime:
    # Debian's pypy3 is PyPy 3.9; the runtime's identity only names the caches' stores.
    return Runtime(tmp_path, "3.9", None, "x86_64", "73", "ab" * 32, "test")


def _wheel(tmp_path: Path) -> Path:
    """A wheel with two modules, a data file and a test module the built-in rules trim."""
    path = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("demo/__init__.py", "from demo.core import answer\n")
        archive.writestr("demo/core.py", "def answer():\n    return 42\n")
        archive.writestr("demo/data.json", '{"answer": 42}\n')
        archive.writestr("demo/tests/test_core.py", "def test():\n    pass\n")
        archive.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
    return path


def _installed(tmp_path: Path, wheel: Path) -> list[Entry]:
    """The wheel's files as the bundle stage sees them once installed under ``site/``."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return [
        Entry(f"site/{p.relative_to(site).as_posix()}", p, None, False, "demo", "package")
        for p in sorted(site.rglob("*"))
        if p.is_file() and "dist-info" not in p.as_posix() and "/tests/" not in p.as_posix()
    ]


def _bundle(tmp_path: Path, entries: list[Entry], cache: Path, name: str) -> bytes:
    compiled = bytecode.compile_entries(entries, _runtime(tmp_path), _pypy(), cache)
    write_zip(compiled, tmp_path / name / "bundle.zip", cache_dir=cache)
    return (tmp_path / name / "bundle.zip").read_bytes()


def test_what_is_done_ahead_is_what_the_bundle_stage_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = _wheel(tmp_path)
    entries = _installed(tmp_path, wheel)
    cold = _bundle(tmp_path, entries, tmp_path / "cold", "cold")
    warmed = tmp_path / "warmed"
    prewarm.warm(
        [wheel],
        threading.Event(),
        runtime=_runtime(tmp_path),
        interpreter=_pypy(),
        rules=builtin_rules("pypy39"),
        cache_dir=warmed,
    )
    stored = sorted(p.name for p in (warmed / "bytecode").rglob("*.pyc"))
    assert len(stored) == 2  # the two modules; the trimmed test module is not compiled

    def no(*args: object, **kwargs: object) -> None:
        raise AssertionError("computed again what was done ahead")

    monkeypatch.setattr(bytecode, "_compile", no)
    monkeypatch.setattr(deflate, "compress", no)
    assert _bundle(tmp_path, entries, warmed, "warmed") == cold


def test_nothing_is_done_ahead_once_the_builds_are_done(tmp_path: Path) -> None:
    built = threading.Event()
    built.set()
    prewarm.warm(
        [_wheel(tmp_path)],
        built,
        runtime=_runtime(tmp_path),
        interpreter=_pypy(),
        rules=builtin_rules("pypy39"),
        cache_dir=tmp_path / "cache",
    )
    assert not list((tmp_path / "cache").rglob("*.pyc"))
    assert not (tmp_path / "cache" / "deflate").exists()


def test_a_wheel_that_cannot_be_read_is_left_to_the_install_to_report(tmp_path: Path) -> None:
    broken = tmp_path / "broken-1.0-py3-none-any.whl"
    broken.write_bytes(b"not a zip")
    prewarm.warm(
        [broken],
        threading.Event(),
        runtime=_runtime(tmp_path),
        interpreter=_pypy(),
        rules=builtin_rules("pypy39"),
        cache_dir=tmp_path / "cache",
    )
    assert not (tmp_path / "cache").exists()
