"""The pieces of resolution by uv that need no index: uv's name for the target, the lock
read back, the wheel chosen for the target, the hashes pinned, pip's configuration
(read by pip itself) and the credentials a lock's URLs get back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from packaging.tags import Tag

from pyfn_action.deps import pipconfig
from pyfn_action.deps.files import with_credentials
from pyfn_action.deps.locked import best_wheel, fill_wheelhouse
from pyfn_action.deps.pip_runner import Interpreter
from pyfn_action.deps.reqlines import pinned_hashes
from pyfn_action.deps.sdist import build_from_source
from pyfn_action.deps.sources import Sources
from pyfn_action.deps.uvlock import Locked, LockedFile, python_platform, read_lock
from pyfn_action.errors import RequirementsError
from pyfn_action.runtime.targets import Target


def _target(glibc: tuple[int, int] = (2, 39), arch: str = "x86_64") -> Target:
    return Target("3.11", "73", arch, glibc)


@pytest.mark.parametrize(
    ("glibc", "arch", "named"),
    [
        ((2, 39), "x86_64", "x86_64-manylinux_2_39"),
        ((2, 35), "aarch64", "aarch64-manylinux_2_35"),
        ((2, 30), "x86_64", "x86_64-manylinux_2_28"),  # uv names no 2.29 or 2.30
        ((2, 17), "x86_64", "x86_64-manylinux_2_17"),
        ((2, 45), "x86_64", "x86_64-manylinux_2_40"),
    ],
)
def test_uv_is_told_the_newest_manylinux_the_target_loads(
    glibc: tuple[int, int], arch: str, named: str
) -> None:
    assert python_platform(_target(glibc, arch)) == named


def test_a_glibc_older_than_any_manylinux_uv_names_is_an_error() -> None:
    with pytest.raises(RequirementsError, match="older than any manylinux"):
        python_platform(_target((2, 12)))


LOCK = """\
lock-version = "1.0"
created-by = "uv"
requires-python = ">=3.11"

[[packages]]
name = "MarkupSafe"
version = "3.0.4"
sdist = { url = "https://idx.example/files/markupsafe-3.0.4.tar.gz", hashes = { sha256 = "aa" } }

[[packages]]
name = "blinker"
version = "1.9.0"
wheels = [
  { url = "https://idx.example/files/blinker-1.9.0-py3-none-any.whl", hashes = { sha256 = "bb" } },
]

[[packages]]
name = "mypkg"
directory = { path = "pkg" }
"""


def test_the_lock_is_read_back_sorted_by_name(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text(LOCK)
    locked = read_lock(tmp_path / "pylock.toml")
    assert [p.name for p in locked] == ["blinker", "MarkupSafe", "mypkg"]
    blinker, markupsafe, mine = locked
    assert blinker.wheels == (
        LockedFile(
            "https://idx.example/files/blinker-1.9.0-py3-none-any.whl",
            "blinker-1.9.0-py3-none-any.whl",
            "bb",
        ),
    )
    assert markupsafe.sdist == LockedFile(
        "https://idx.example/files/markupsafe-3.0.4.tar.gz", "markupsafe-3.0.4.tar.gz", "aa"
    )
    assert mine == Locked("mypkg", None, (), None, "pkg")


def test_a_version_control_requirement_in_the_lock_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text(
        '[[packages]]\nname = "r"\nvcs = { type = "git", url = "https://x/r.git" }\n'
    )
    with pytest.raises(RequirementsError, match="version-control requirement"):
        read_lock(tmp_path / "pylock.toml")


def test_a_lock_that_is_not_toml_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pylock.toml").write_text("[[packages]\n")
    with pytest.raises(RequirementsError, match="uv wrote no usable lock"):
        read_lock(tmp_path / "pylock.toml")


def _wheel(tag: str) -> LockedFile:
    name = f"demo-1.0-{tag}.whl"
    return LockedFile(f"https://idx.example/{name}", name, tag)


def test_the_wheel_chosen_is_the_targets_most_specific() -> None:
    order = _target().ordered_tags()
    pure = _wheel("py3-none-any")
    native = _wheel("pp311-pypy311_pp73-manylinux_2_17_x86_64.manylinux2014_x86_64")
    newer = _wheel("pp311-pypy311_pp73-manylinux_2_34_x86_64")
    cpython = _wheel("cp311-cp311-manylinux_2_17_x86_64")
    too_new = _wheel("pp311-pypy311_pp73-manylinux_2_40_x86_64")
    assert best_wheel([pure, native, cpython], order) == native
    assert best_wheel([pure, native, newer], order) == newer
    assert best_wheel([too_new, pure], order) == pure
    assert best_wheel([cpython, too_new], order) is None
    assert order[0] == Tag("pp311", "pypy311_pp73", "manylinux_2_39_x86_64")


def _hashed(tmp_path: Path, text: str, name: str = "requirements.txt") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_hashes_are_read_by_name_through_included_files(tmp_path: Path) -> None:
    _hashed(tmp_path, "Blinker==1.9.0 \\\n    --hash=sha256:AB --hash=sha256:cd\n", "more.txt")
    top = _hashed(tmp_path, "-r more.txt\nclick==8.1.8 --hash=sha256:ef  # pinned\n")
    assert pinned_hashes(top) == ({"blinker": {"ab", "cd"}, "click": {"ef"}}, False)
    plain = _hashed(tmp_path, "click\n", "plain.txt")
    assert pinned_hashes(plain) == ({}, False)
    required = _hashed(tmp_path, "--require-hashes\nclick\n", "required.txt")
    assert pinned_hashes(required) == ({}, True)


def _locked(sha256: str) -> Locked:
    return Locked(
        "demo",
        "1.0",
        (LockedFile("x/demo-1.0-py3-none-any.whl", "demo-1.0-py3-none-any.whl", sha256),),
    )


@pytest.mark.parametrize(
    ("hashes", "error"),
    [
        ({"demo": {"00"}}, "No file of demo 1.0 matches the hashes the requirements pin"),
        ({"other": {"ff"}}, "demo has no --hash in the requirements"),
        ({}, "demo has no --hash in the requirements"),
    ],
)
def test_in_hash_checking_mode_every_file_must_be_pinned(
    tmp_path: Path, hashes: dict[str, set[str]], error: str
) -> None:
    interpreter = Interpreter(("pypy3",), {}, is_target=True)
    with pytest.raises(RequirementsError, match=error):
        fill_wheelhouse(
            [_locked("ff")],
            lock_dir=tmp_path,
            target=_target(),
            interpreter=interpreter,
            sources=Sources(),
            cache_dir=tmp_path / "cache",
            wheelhouse=tmp_path / "wh",
            work=tmp_path,
            builder=build_from_source,
            hashes=hashes,
        )
    assert not (tmp_path / "cache").exists()  # refused before anything was fetched


@pytest.mark.parametrize(
    ("url", "given"),
    [
        ("https://idx.example/files/a.whl", "https://robot:s3cret@idx.example/files/a.whl"),
        ("https://idx.example:8443/files/a.whl", "https://idx.example:8443/files/a.whl"),
        ("http://idx.example/files/a.whl", "http://idx.example/files/a.whl"),
        ("https://files.example/a.whl", "https://files.example/a.whl"),
        ("https://other:pw@idx.example/a.whl", "https://other:pw@idx.example/a.whl"),
    ],
)
def test_a_locked_url_gets_the_credentials_of_its_own_source_only(url: str, given: str) -> None:
    sources = Sources(index_url="https://robot:s3cret@idx.example/simple/")
    assert with_credentials(url, sources) == given


def _pip_env(tmp_path: Path, conf: str, **more: str) -> dict[str, str]:
    (tmp_path / "pip.conf").write_text(conf)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    return {**env, "PIP_CONFIG_FILE": str(tmp_path / "pip.conf"), **more}


def test_pip_configuration_is_read_as_pip_install_reads_it(tmp_path: Path) -> None:
    env = _pip_env(
        tmp_path,
        "[global]\nindex-url = https://global.example/simple\n"
        "extra-index-url = https://a.example/simple https://b.example/simple\n"
        "[install]\nindex-url = https://install.example/simple\ntrusted-host = a.example\n"
        "[download]\nindex-url = https://download.example/simple\n",
        PIP_FIND_LINKS="/srv/wheels",
    )
    found = pipconfig.settings(Sources(extra_index_urls=("https://mine.example/simple",)), env)
    assert found.sources == Sources(
        index_url="https://install.example/simple",
        extra_index_urls=(
            "https://a.example/simple",
            "https://b.example/simple",
            "https://mine.example/simple",
        ),
        find_links=("/srv/wheels",),
    )
    assert found.trusted_hosts == ("a.example",)
    # (this machine's /etc/pip.conf may set a certificate too: pip reads it, and so do we)
    assert {k: v for k, v in found.environment.items() if k != "PIP_CERT"} == {
        "PIP_INDEX_URL": "https://install.example/simple",
        "PIP_EXTRA_INDEX_URL": "https://a.example/simple https://b.example/simple",
        "PIP_FIND_LINKS": "/srv/wheels",
        "PIP_TRUSTED_HOST": "a.example",
    }
    # pyfn's own index replaces pip's, as --index-url does on pip's command line.
    mine = pipconfig.settings(Sources(index_url="https://mine.example/simple"), env)
    assert mine.sources.index_url == "https://mine.example/simple"


def test_a_variable_beats_the_file_and_devnull_turns_files_off(tmp_path: Path) -> None:
    env = _pip_env(
        tmp_path,
        "[global]\nindex-url = https://file.example/simple\nno-index = true\n",
        PIP_INDEX_URL="https://var.example/simple",
    )
    found = pipconfig.settings(Sources(), env)
    assert found.sources.index_url == "https://var.example/simple"
    assert found.sources.no_index
    off = {**env, "PIP_CONFIG_FILE": os.devnull}
    del off["PIP_INDEX_URL"]
    assert pipconfig.settings(Sources(), off).sources == Sources()


def test_pyfns_own_pip_reads_the_configuration_whatever_pythonpath_says(tmp_path: Path) -> None:
    """A build's environment points PYTHONPATH at the runtime's pip (a tree this Python
    may not have compiled, or may not even import): the configuration is still read, by
    the pip pyfn runs with."""
    shadow = tmp_path / "shadow" / "pip"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('the PYTHONPATH pip was imported')\n")
    env = _pip_env(
        tmp_path,
        "[global]\nindex-url = https://file.example/simple\n",
        PYTHONPATH=str(shadow.parent),
    )
    assert pipconfig.settings(Sources(), env).sources.index_url == "https://file.example/simple"


def test_a_pip_configuration_pip_cannot_read_is_an_error(tmp_path: Path) -> None:
    env = _pip_env(tmp_path, "[global\nindex-url = x\n")
    with pytest.raises(RequirementsError, match="Cannot read pip's configuration"):
        pipconfig.settings(Sources(), env)


def test_a_failed_build_shows_the_compilers_own_error_first() -> None:
    from pyfn_action.deps.sdist import build_reason

    stderr = """\
  error: subprocess-exited-with-error
  × Building wheel for grpcio (pyproject.toml) did not run successfully.
  ╰─> [9 lines of output]
      building 'grpc._cython.cygrpc' extension
      src/grpc/_cython/cygrpc.cpp:4:10: fatal error: Python.h: No such file or directory
          4 | #include "Python.h"
      compilation terminated.
      error: command '/usr/bin/gcc' failed with exit code 1
      Hint: on Mac OS X, install the Xcode command line tools
      Hint: on Windows, install Visual Studio
      Hint: check the platform's documentation
      Hint: see grpc.io
      [end of output]
"""
    reason = build_reason(stderr).splitlines()
    assert reason[0] == (
        "src/grpc/_cython/cygrpc.cpp:4:10: fatal error: Python.h: No such file or directory"
    )
    assert reason[-1] == "Hint: see grpc.io"  # the build's own last words follow
    assert build_reason("ERROR: no such file\n") == "ERROR: no such file"


def test_a_long_run_is_never_silent(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import sys

    from pyfn_action.deps.pip_runner import run_group

    with caplog.at_level(logging.INFO):
        done = run_group(
            [sys.executable, "-m", "pip", "--version"], dict(os.environ), 60, heartbeat=0.05
        )
    assert done.returncode == 0 and "pip" in done.stdout
    assert "pip is still working" in caplog.text


def test_a_run_cut_short_takes_its_whole_process_group(tmp_path: Path) -> None:
    """A timeout (as Ctrl-C or SIGTERM) kills what the process started too: a build
    backend left running would write into a tree that is being removed."""
    import subprocess
    import sys
    import time

    from pyfn_action.deps.pip_runner import run_group

    marker = tmp_path / "grandchild-alive"
    child = (
        "import subprocess, sys, time;"
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', {str(marker)!r}]);"
        "time.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_group([sys.executable, "-c", child], dict(os.environ), 1.0, heartbeat=0.2)
    assert time.monotonic() - started < 30
    alive = []
    for _ in range(50):
        alive = [
            p
            for p in Path("/proc").iterdir()
            if p.name.isdigit() and str(marker).encode() in _read(p / "cmdline")
        ]
        if not alive:
            break
        time.sleep(0.1)
    assert alive == []


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_the_sources_a_requirements_file_names_are_read_as_pip_reads_them(
    tmp_path: Path,
) -> None:
    from pyfn_action.deps.reqlines import source_options

    (tmp_path / "wheels").mkdir()
    (tmp_path / "more.txt").write_text("--extra-index-url https://extra.example/simple\nsix\n")
    top = _hashed(
        tmp_path,
        "--no-index\n-f wheels\n--find-links=https://links.example/\n-i https://idx.example/s\n"
        "-r more.txt\nclick\n",
    )
    assert source_options(top) == [
        "--no-index",
        "--find-links",
        str(tmp_path / "wheels"),
        "--find-links",
        "https://links.example/",
        "--index-url",
        "https://idx.example/s",
        "--extra-index-url",
        "https://extra.example/simple",
    ]


def test_the_tags_that_exist_are_summed_up_briefly() -> None:
    """A package with wheels for every platform (MarkupSafe) gives a line, not a page."""
    from pyfn_action.deps.index import summarize

    platforms = [
        "macosx_11_0_arm64",
        "win_amd64",
        "musllinux_1_2_x86_64",
        "manylinux_2_17_x86_64",
        "manylinux_2_17_aarch64",
        "manylinux_2_5_i686",
        "win32",
    ]
    tags = [Tag(f"cp3{n}", f"cp3{n}", p) for n in range(9, 14) for p in platforms]
    assert summarize(tags, limit=2) == (
        "cp310-cp310 (manylinux_aarch64, manylinux_i686, manylinux_x86_64, "
        "macosx_arm64, 3 more), cp311-cp311 (manylinux_aarch64, manylinux_i686, "
        "manylinux_x86_64, macosx_arm64, 3 more), and 3 more"
    )
    assert summarize([Tag("py3", "none", "any")]) == "py3-none (any)"
