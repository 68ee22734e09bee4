from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.trim import (
    builtin_rules,
    plan_trim,
    portable_deps_rules,
    protected_files,
    user_rules,
)
from pyfn_action.errors import TrimError

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


def test_a_later_pyfnignore_rule_brings_back_what_a_built_in_rule_removed(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    entries = [
        *_entries(),
        *(
            Entry(n, None, b"z", False, "c", "app")
            for n in (
                "pypy/lib/pypy3.11/lib2to3/__pycache__/main.cpython-311.pyc",
                "pypy/lib/pypy3.11/idlelib/help.txt",
            )
        ),
    ]
    (src / ".pyfnignore").write_text(
        "!site/numpy/__init__.pyi\n"  # a file a built-in rule matched
        "!pypy/lib/pypy3.11/lib2to3/\n"  # a directory a built-in rule matched
        "!pypy/lib/pypy3.11/idlelib/help.txt\n"  # inside a directory still left out
    )
    plan = plan_trim(entries, builtin_rules("pypy311") + user_rules(src), ())
    kept = _kept(plan)
    assert {"site/numpy/__init__.pyi", "pypy/lib/pypy3.11/lib2to3/main.py"} <= kept
    # the directory is back, and the built-in rules still judge what is inside it
    assert "pypy/lib/pypy3.11/lib2to3/__pycache__/main.cpython-311.pyc" not in kept
    # as in git, a file comes back only with its directory
    assert "pypy/lib/pypy3.11/idlelib/help.txt" not in kept


@pytest.mark.parametrize(
    ("rule", "victim"),
    [
        ("main.py", "app/main.py"),
        ("/pypy/bin/", "pypy/bin/pypy3.11"),
        ("*.py", "app/main.py"),
        ("site/*.dist-info/", "site/flask-3.1.dist-info/METADATA"),
    ],
)
def test_rules_that_remove_what_the_bundle_needs_are_refused(
    tmp_path: Path, rule: str, victim: str
) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / ".pyfnignore").write_text(rule + "\n")
    with pytest.raises(TrimError) as info:
        plan_trim(_entries(), user_rules(src), protected_files("3.11", "main.py"))
    assert victim in info.value.message and ".pyfnignore:" in info.value.message


def test_a_line_git_cannot_use_is_skipped_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / ".pyfnignore").write_text("*.log\n# fine\n!\n")
    plan = plan_trim(_entries(), user_rules(src), protected_files("3.11", "main.py"))
    assert "app/notes.log" not in _kept(plan) and "app/main.py" in _kept(plan)
    assert ".pyfnignore:3: '!' is not a rule git can use" in caplog.text


def test_include_outside_the_source_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (tmp_path / "outside").write_text("*\n")
    (src / ".gcloudignore").write_text("#!include:../outside\n")
    with pytest.raises(TrimError, match="outside the function's directory"):
        user_rules(src)


# --- .gcloudignore means what gcloud means; .pyfnignore reaches the bundle's trees -----

USER_TREES = [
    "app/site/build.py",
    "app/pypy/notes.txt",
    "app/lib/site/deep.py",
    "app/data/keep.csv",
    "app/data/other.csv",
    "app/x/sub/debug.log",
]


def _all_entries() -> list[Entry]:
    return [Entry(name, None, b"y" * 7, False, "c", "app") for name in BUNDLE + USER_TREES]


def _plan(src: Path, rules: list | None = None):  # type: ignore[no-untyped-def, type-arg]
    rules = user_rules(src) if rules is None else rules
    return plan_trim(_all_entries(), rules, protected_files("3.11", "main.py"))


def _source(tmp_path: Path, **files: str) -> Path:
    src = tmp_path / "fn"
    src.mkdir(exist_ok=True)
    for name, text in files.items():
        (src / name.replace("_", ".", 1) if name.startswith("_") else src / name).write_text(text)
    return src


def test_gcloudignore_rules_naming_site_or_pypy_apply_to_the_users_folders(
    tmp_path: Path,
) -> None:
    src = _source(tmp_path, _gcloudignore="site/\n/pypy/\n")
    plan = _plan(src)
    removed = {e.arcname for e in plan.removed}
    # gcloud: `site/` is any directory named site, `/pypy/` the top one, in the function.
    assert removed == {"app/site/build.py", "app/pypy/notes.txt", "app/lib/site/deep.py"}
    kept = _kept(plan)
    assert "site/flask/app.py" in kept and "pypy/lib/libffi.so.8" in kept


def test_pyfnignore_rules_naming_site_or_pypy_apply_to_the_bundles_trees(tmp_path: Path) -> None:
    src = _source(tmp_path, _pyfnignore="site/flask/py.typed\n/pypy/lib/libtcl8.6.so\n")
    removed = {e.arcname for e in _plan(src).removed}
    assert removed == {"site/flask/py.typed", "pypy/lib/libtcl8.6.so"}


def test_a_gcloudignore_rule_cannot_reach_the_runtime(tmp_path: Path) -> None:
    src = _source(tmp_path, _gcloudignore="!pypy/lib/pypy3.11/lib2to3/\npypy/bin/\n")
    plan = _plan(src, builtin_rules("pypy311") + user_rules(src))
    assert "pypy/lib/pypy3.11/lib2to3/main.py" not in _kept(plan)  # no re-include from here
    assert "pypy/bin/pypy3.11" in _kept(plan)  # and nothing refused: it names app/pypy/bin/


def test_gcloudignore_cannot_reinclude_inside_an_excluded_directory_like_gcloud(
    tmp_path: Path,
) -> None:
    src = _source(tmp_path, _gcloudignore="data/\n!data/keep.csv\n")
    removed = {e.arcname for e in _plan(src).removed}
    assert {"app/data/keep.csv", "app/data/other.csv"} <= removed
    # .pyfnignore comes last: as a later line of one gitignore, it brings a file back
    # only once its directory is back
    src = _source(tmp_path, _pyfnignore="!/data/keep.csv\n")
    assert "app/data/keep.csv" not in _kept(_plan(src))
    src = _source(tmp_path, _pyfnignore="!/data/\n/data/*\n!/data/keep.csv\n")
    plan = _plan(src)
    assert "app/data/keep.csv" in _kept(plan) and "app/data/other.csv" not in _kept(plan)
    assert {e.rule.where for e in plan.effects} == {".pyfnignore:2"}


def test_gcloudignore_patterns_match_as_gcloud_matches_them(tmp_path: Path) -> None:
    # gcloud anchors a pattern only on a leading slash: `sub/debug.log` also matches
    # x/sub/debug.log (git would not); `*` alone takes every top-level entry.
    src = _source(tmp_path, _gcloudignore="sub/debug.log\n")
    assert "app/x/sub/debug.log" not in _kept(_plan(src))
    src = _source(tmp_path, _gcloudignore="*\n!main.py\n!data/\n")
    kept_app = {n for n in _kept(_plan(src)) if n.startswith("app/")}
    assert kept_app == {
        "app/main.py",
        "app/data/keep.csv",
        "app/data/other.csv",
        "app/data/big.csv",
    }


def test_a_gcloudignore_rule_removing_the_entry_module_is_refused(tmp_path: Path) -> None:
    src = _source(tmp_path, _gcloudignore="*.py\n")
    with pytest.raises(TrimError) as info:
        _plan(src)
    assert "app/main.py" in info.value.message and ".gcloudignore:1" in info.value.message


def test_lines_gcloud_skips_are_skipped_with_a_warning_naming_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """docs/configuration.md: "lines gcloud cannot parse are skipped with a warning"; so
    are an included file's, under its own name."""
    src = _source(
        tmp_path,
        _gcloudignore="!\n/\nfoo\\\n   \n*.log\n#!include:.gitignore\n",
        _gitignore="*.tmp\n!/\n",
    )
    with caplog.at_level(logging.WARNING, logger="pyfn_action"):
        plan = _plan(src)
    assert "app/notes.log" not in _kept(plan) and "app/main.py" in _kept(plan)
    skipped = "is not a rule gcloud can use; it is skipped, as gcloud skips it"
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, f".gcloudignore:1: '!' {skipped}"),
        (logging.WARNING, f".gcloudignore:2: '/' {skipped}"),
        (logging.WARNING, f".gcloudignore:3: 'foo\\\\' {skipped}"),
        (logging.WARNING, f".gitignore:2: '!/' {skipped}"),
    ]  # a blank line (4) is no rule, and nothing to warn about


@pytest.mark.parametrize("directive", ["#!include:.gitignore", "# !include:.gitignore"])
def test_include_reads_a_file_beside_the_ignore_file(tmp_path: Path, directive: str) -> None:
    src = _source(tmp_path, _gitignore="*.log\n", _gcloudignore=directive + "\n")
    assert "app/notes.log" not in _kept(_plan(src))


@pytest.mark.parametrize("name", ["sub/.gitignore", "../outside", "/etc/passwd"])
def test_include_of_another_directory_is_refused_as_gcloud_refuses_it(
    tmp_path: Path, name: str
) -> None:
    (tmp_path / "outside").write_text("*\n")
    src = _source(tmp_path, _gcloudignore=f"#!include:{name}\n")
    (src / "sub").mkdir()
    (src / "sub" / ".gitignore").write_text("*\n")
    with pytest.raises(TrimError, match="same directory"):
        user_rules(src)


@pytest.mark.parametrize("kind", ["symlink-out", "dotdot", "fifo", "directory"])
def test_include_never_reads_outside_the_source_nor_blocks(tmp_path: Path, kind: str) -> None:
    import os

    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-LINE\n")
    src = _source(tmp_path)
    name = ".gitignore"
    if kind == "symlink-out":
        (src / name).symlink_to(secret)
    elif kind == "dotdot":
        name = ".."
    elif kind == "fifo":
        os.mkfifo(src / name)
    else:
        (src / name).mkdir()
    (src / ".gcloudignore").write_text(f"#!include:{name}\n")
    with pytest.raises(TrimError) as info:
        user_rules(src)
    assert "TOP-SECRET-LINE" not in info.value.message


def test_an_ignore_file_that_links_outside_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside-ignore"
    outside.write_text("*.log\n")
    src = _source(tmp_path)
    (src / ".gcloudignore").symlink_to(outside)
    with pytest.raises(TrimError, match="outside the function's directory"):
        user_rules(src)


def test_includes_do_not_nest_as_in_gcloud(tmp_path: Path) -> None:
    src = _source(
        tmp_path, _gcloudignore="#!include:.gitignore\n", _gitignore="#!include:more\n*.csv\n"
    )
    (src / "more").write_text("*.log\n")
    plan = _plan(src)
    assert "app/data/keep.csv" not in _kept(plan)  # .gitignore's own rule
    assert "app/notes.log" in _kept(plan)  # its include is not followed
