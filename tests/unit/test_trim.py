from __future__ import annotations

from pathlib import Path

import pytest

from pyfn_action.stage import Entry
from pyfn_action.trim import (
    TrimError,
    builtin_rules,
    plan_trim,
    portable_deps_rules,
    protected_files,
    user_rules,
)

BUNDLE = [
    "index.js",
    "package.json",
    "pyfn/manifest.json",
    "pyfn/worker.py",
    "pypy/bin/pypy3.11",
    "pypy/bin/libpypy3.11-c.so",
    "pypy/include/pypy3.11/Python.h",
    "pypy/lib/libffi.so.8",
    "pypy/lib/libtcl8.6.so",
    "pypy/lib/PYPY_PORTABLE_DEPS.txt",
    "pypy/lib/pypy3.11/os.py",
    "pypy/lib/pypy3.11/__pycache__/os.pypy311.pyc",
    "pypy/lib/pypy3.11/__pycache__/os.cpython-311.pyc",
    "pypy/lib/pypy3.11/__pycache__/os.pypy311.opt-1.pyc",
    "pypy/lib/pypy3.11/idlelib/editor.py",
    "pypy/lib/pypy3.11/idlelib/__pycache__/editor.pypy311.pyc",
    "pypy/lib/pypy3.11/lib2to3/main.py",
    "pypy/lib/pypy3.11/test/test_os.py",
    "pypy/lib/pypy3.11/json/tests/test_x.py",
    "site/flask/app.py",
    "site/flask/py.typed",
    "site/flask/tests/test_app.py",
    "site/numpy/__init__.pyi",
    "site/numpy/core/_multiarray.c",
    "site/flask-3.1.dist-info/METADATA",
    "site/flask-3.1.dist-info/entry_points.txt",
    "app/main.py",
    "app/data/big.csv",
    "app/notes.log",
    "app/sub/debug.log",
]


def _entries() -> list[Entry]:
    return [Entry(name, None, b"x" * 10, False, "c", "app") for name in BUNDLE]


def _kept(plan) -> set[str]:  # type: ignore[no-untyped-def]
    return {e.arcname for e in plan.kept}


def _runtime_root(tmp_path: Path) -> Path:
    root = tmp_path / "rt"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "PYPY_PORTABLE_DEPS.txt").write_text("libffi.so.8\n")
    for name in ("libffi.so.8", "libtcl8.6.so"):
        (root / "lib" / name).write_bytes(b"")
    return root


def test_builtin_rules(tmp_path: Path) -> None:
    rules = builtin_rules("pypy311") + portable_deps_rules(_runtime_root(tmp_path))
    plan = plan_trim(_entries(), rules, protected_files("3.11", "main.py"))
    removed = {e.arcname for e in plan.removed}
    assert removed == {
        "pypy/include/pypy3.11/Python.h",
        "pypy/lib/libtcl8.6.so",  # not in PYPY_PORTABLE_DEPS.txt
        "pypy/lib/pypy3.11/__pycache__/os.cpython-311.pyc",
        "pypy/lib/pypy3.11/__pycache__/os.pypy311.opt-1.pyc",
        "pypy/lib/pypy3.11/idlelib/editor.py",
        "pypy/lib/pypy3.11/idlelib/__pycache__/editor.pypy311.pyc",  # with its directory
        "pypy/lib/pypy3.11/lib2to3/main.py",
        "pypy/lib/pypy3.11/test/test_os.py",
        "pypy/lib/pypy3.11/json/tests/test_x.py",
        "site/flask/tests/test_app.py",
        "site/numpy/__init__.pyi",
        "site/numpy/core/_multiarray.c",
    }
    assert "pypy/lib/pypy3.11/__pycache__/os.pypy311.pyc" in _kept(plan)
    assert "site/flask-3.1.dist-info/METADATA" in _kept(plan)
    assert plan.removed_bytes == 10 * len(removed)
    assert sum(e.files for e in plan.effects) == len(removed)


def test_user_rules_apply_to_app_and_can_reinclude_runtime(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / ".gitignore").write_text("*.log\n")
    (src / ".gcloudignore").write_text("#!include:.gitignore\n/data/\n")
    (src / ".pyfnignore").write_text("# keep 2to3\n!pypy/lib/pypy3.11/lib2to3/\n!/sub/debug.log\n")
    rules = builtin_rules("pypy311") + user_rules(src)
    plan = plan_trim(_entries(), rules, protected_files("3.11", "main.py"))
    kept = _kept(plan)
    assert "app/data/big.csv" not in kept and "app/notes.log" not in kept
    assert "app/sub/debug.log" in kept  # re-included by .pyfnignore
    assert "pypy/lib/pypy3.11/lib2to3/main.py" in kept  # a trimmed runtime file, back
    where = {e.rule.where for e in plan.effects}
    assert ".gitignore:1" in where and ".gcloudignore:2" in where


@pytest.mark.parametrize(
    ("rule", "victim"),
    [("main.py", "app/main.py"), ("/pypy/bin/", "pypy/bin/pypy3.11"),
     ("*.py", "app/main.py"), ("site/*.dist-info/", "site/flask-3.1.dist-info/METADATA")],
)  # fmt: skip
def test_rules_that_remove_what_the_bundle_needs_are_refused(
    tmp_path: Path, rule: str, victim: str
) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / ".pyfnignore").write_text(rule + "\n")
    with pytest.raises(TrimError) as info:
        plan_trim(_entries(), user_rules(src), protected_files("3.11", "main.py"))
    assert victim in info.value.message and ".pyfnignore:" in info.value.message


def test_unparsable_rule_names_its_line(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / ".pyfnignore").write_text("*.log\n# fine\n!\n")
    with pytest.raises(TrimError, match=r"\.pyfnignore:3"):
        user_rules(src)


def test_include_outside_the_source_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (tmp_path / "outside").write_text("*\n")
    (src / ".gcloudignore").write_text("#!include:../outside\n")
    with pytest.raises(TrimError, match="outside the function's directory"):
        user_rules(src)
