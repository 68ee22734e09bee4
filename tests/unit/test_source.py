from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from pyfn_action.bundle.source import check_source
from pyfn_action.bundle.stage import app_entries
from pyfn_action.bundle.zipper import write_zip
from pyfn_action.config import resolve
from pyfn_action.deps.reqfile import read_requirements, requirement_specs
from pyfn_action.errors import ConfigError, RequirementsError, SourceError


def _src(tmp_path: Path, main: str | None = "def hello(request):\n    return 'hi'\n") -> Path:
    src = tmp_path / "hello"
    src.mkdir()
    if main is not None:
        (src / "main.py").write_text(main)
    return src


def test_no_main_py(tmp_path: Path) -> None:
    src = _src(tmp_path, None)
    with pytest.raises(SourceError, match=r"No main\.py"):
        check_source(resolve(src, env={}, flags={}), (3, 11))


def test_entry_point_not_defined_lists_what_is(tmp_path: Path) -> None:
    src = _src(tmp_path, "def other(request):\n    pass\n\ndef more(r):\n    pass\n")
    with pytest.raises(SourceError) as info:
        check_source(resolve(src, env={}, flags={}), (3, 11))
    assert "'hello' is not defined" in info.value.message
    assert "more, other" in info.value.message


def test_syntax_too_new_for_the_runtime(tmp_path: Path) -> None:
    src = _src(
        tmp_path, "def hello(request):\n    match request:\n        case _:\n            pass\n"
    )
    with pytest.raises(SourceError, match=r"Python 3\.9"):
        check_source(resolve(src, env={}, flags={}), (3, 9))
    check_source(resolve(src, env={}, flags={}), (3, 10))


def test_script_mode_needs_the_script(tmp_path: Path) -> None:
    src = _src(tmp_path, None)
    (tmp_path / "x.py").write_text("print('outside')\n")
    (src / "linked.py").symlink_to(tmp_path / "x.py")
    for script in ("missing.py", "linked.py"):
        config = resolve(src, env={}, flags={"signature": "script", "script": script})
        with pytest.raises(SourceError, match="not found"):
            check_source(config, (3, 11))


@pytest.mark.parametrize("key", ["script", "requirements"])
@pytest.mark.parametrize("value", ["../x.py", "/etc/hostname", "a/../../x", "~/x", "..\\x"])
def test_a_file_of_the_function_is_named_inside_it(tmp_path: Path, key: str, value: str) -> None:
    src = _src(tmp_path, None)
    (src / "pyfn.toml").write_text(f"{key} = {json.dumps(value)}\n")
    with pytest.raises(ConfigError, match=f"Invalid value for '{key}' in .*pyfn.toml") as caught:
        resolve(src, env={}, flags={})
    assert "relative to the function's directory" in caught.value.why or (
        "leads out of" in caught.value.why
    )


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("requests\nflask >= = 2\n", ":2:"),
        ("# ok\nrequests \\\n  >=2\nnot a requirement!\n", ":4:"),
        ("-e ./lib\n", ":1:"),
        ("--user\n", ":1:"),
        ("-r ../outside.txt\n", "outside"),
        ("../elsewhere\n", "outside"),
    ],
)
def test_malformed_requirements(tmp_path: Path, text: str, line: str) -> None:
    src = _src(tmp_path)
    (tmp_path / "outside.txt").write_text("requests\n")
    (src / "requirements.txt").write_text(text)
    with pytest.raises(RequirementsError, match=line):
        read_requirements(src / "requirements.txt", src)


def test_requirements_names_and_includes(tmp_path: Path) -> None:
    src = _src(tmp_path)
    (src / "base.txt").write_text("Functions_Framework==3.8.1 ; python_version >= '3.9'\n")
    (src / "requirements.txt").write_text(
        "-r base.txt\n--index-url http://127.0.0.1:1/simple\nrequests[socks]>=2  # web\n"
    )
    result = read_requirements(src / "requirements.txt", src)
    assert result.names == {"functions-framework", "requests"}
    assert [p.name for p in result.files] == ["requirements.txt", "base.txt"]


def _project(where: Path, says: str = "one") -> Path:
    (where / "mod").mkdir(parents=True)
    (where / "setup.py").write_text("from setuptools import setup\nsetup(name='mod')\n")
    (where / "mod" / "__init__.py").write_text(f"SAYS = {says!r}\n")
    return where


@pytest.mark.parametrize(
    "line",
    [
        "./pkg",
        "pkg/",
        "./pkg[extra] ; python_version >= '3'",
        "file:pkg",
        "file:./pkg#egg=mod",
        "mod @ file:pkg",
        "mod[extra] @ file:./pkg ; python_version >= '3'",
    ],
)
def test_a_local_path_is_read_relative_to_its_requirements_file(tmp_path: Path, line: str) -> None:
    src = tmp_path / "fn"
    _project(src / "deps" / "pkg")
    _project(src / "pkg", "the wrong one")
    (src / "deps" / "requirements.txt").write_text(f"{line}\n")
    result = read_requirements(src / "deps" / "requirements.txt", src)
    assert [(r.path, r.relative, r.line) for r in result.local] == [
        ((src / "deps" / "pkg").resolve(), "deps/pkg", 1)
    ]


def test_an_archive_name_is_local_as_pip_reads_it(tmp_path: Path) -> None:
    """pip takes ``demo-1.0.tar.gz`` (no ./) for a file, so pyfn judges it as one."""
    src = _src(tmp_path)
    (src / "requirements.txt").write_text("demo-1.0.tar.gz\nrequests\n")
    (src / "demo-1.0.tar.gz").write_bytes(b"x")
    result = read_requirements(src / "requirements.txt", src)
    assert [r.relative for r in result.local] == ["demo-1.0.tar.gz"]
    assert result.names == {"requests"}
    assert list(requirement_specs("demo-1.0.tar.gz\nrequests\n")) == [(2, "requests")]


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ("../outside", "outside the function's directory"),
        ("./up/outside", "outside the function's directory"),  # a link to ../outside
        ("file:../outside", "outside the function's directory"),
        ("file://{outside}", "outside the function's directory"),
        ("mod @ file://{outside}", "outside the function's directory"),
        ("mod @ file:up/outside", "outside the function's directory"),
        ("file://elsewhere/share/pkg", "another host"),
        ("mod @ git+file://{outside}", "repository on this machine"),
        ("./missing", "no directory or file"),
        ("missing-1.0.tar.gz", "no directory or file"),
    ],
)
def test_a_local_path_outside_the_source_is_refused(tmp_path: Path, line: str, why: str) -> None:
    src = _src(tmp_path)
    outside = _project(tmp_path / "outside")
    os.symlink(tmp_path, src / "up")
    (src / "requirements.txt").write_text(line.format(outside=outside) + "\n")
    with pytest.raises(RequirementsError) as info:
        read_requirements(src / "requirements.txt", src)
    assert "requirements.txt:1" in info.value.message
    assert why in info.value.why


def test_symlink_out_of_the_tree_is_reported_not_followed(tmp_path: Path) -> None:
    src = _src(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not ship")
    os.symlink(secret, src / "leak.txt")
    os.symlink(tmp_path, src / "up")
    (src / "data.txt").write_text("data")
    os.symlink("data.txt", src / "alias.txt")
    (src / "__pycache__").mkdir()
    (src / "__pycache__" / "main.cpython-311.pyc").write_bytes(b"x")
    entries, warnings = app_entries(src)
    names = [e.arcname for e in entries]
    assert names == ["app/alias.txt", "app/data.txt", "app/main.py"]
    assert any("leak.txt" in w and "outside the source tree" in w for w in warnings)
    assert any(w.startswith("up ") for w in warnings)
    out = write_zip(entries, tmp_path / "b.zip")
    with zipfile.ZipFile(out.path) as zf:
        assert zf.read("app/alias.txt") == b"data"
        assert b"do not ship" not in b"".join(zf.read(n) for n in zf.namelist())
