"""Requirements resolved by uv (the default) and by pip: the same bundle from either, an
sdist built once per cache, pip's own configuration honoured by both (as pip itself
reads it), hash-checking mode, credentials, and errors that name the real reason.

Script-mode functions keep the Python Functions Framework out of the way where a test
serves an index of its own."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import EXAMPLES, WHEELHOUSE, Outcome, Served, build_args, hermetic_env, pyfn
from support.servers import index_routes, serve
from support.wheels import make_wheel

pytestmark = pytest.mark.e2e

RESOLVERS = pytest.mark.parametrize("resolver", ["uv", "pip"])
DEAD_INDEX = "http://127.0.0.1:9/simple/"  # the discard port: nothing answers there


def _function(tmp_path: Path, requirements: str, name: str = "fn") -> Path:
    src = tmp_path / name
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    (src / "requirements.txt").write_text(requirements)
    return src


def _args(src: Path, out: Path, served: Served, *more: str) -> list[str]:
    """A script-mode build with no index named: where to look comes from ``more``, or
    from pip's configuration."""
    return [
        "build",
        str(src),
        "--out",
        str(out),
        "--pypy-archive",
        served.url,
        "--pypy-sha256",
        served.sha256,
        "--signature",
        "script",
        "--script",
        "main.py",
        "--json",
        *more,
    ]


def _components(result: Outcome) -> dict[str, str]:
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    return {c["name"]: c.get("version") for c in report["components"] if c["kind"] == "package"}


def _only_here(tmp_path: Path) -> Path:
    """A directory of wheels no public index has: a build that installs them read the
    index it was told about."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "pyfn_only_here", "1.0", "py3-none-any")
    make_wheel(wheels, "pyfn_only_here", "2.0", "py3-none-any")
    return wheels


def test_uv_and_pip_build_the_same_bundle(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    """examples/hello (an sdist among its requirements) gives the same bytes with either
    resolver, and the report says which one ran."""
    built = {}
    for resolver in ("uv", "pip"):
        out = tmp_path / resolver
        args = build_args(EXAMPLES / "hello", out, served_pypy, index_url, "--resolver", resolver)
        result = pyfn(args, hermetic_env(session_cache))
        assert result.code == 0, result.stderr
        report = json.loads((out / "report.json").read_text())
        assert report["resolver"] == resolver
        built[resolver] = hashlib.sha256((out / "bundle.zip").read_bytes()).hexdigest()
        assert built[resolver] == report["bundle"]["sha256"]
    assert built["uv"] == built["pip"]


def test_an_sdist_is_built_once_per_cache(
    tmp_path: Path, served_pypy: Served, index_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """MarkupSafe has only an sdist on the tests' index: the first requirement set that
    needs it builds it; another set on the same cache takes the wheel built then."""
    env = hermetic_env(tmp_path / "cache")
    first = _function(tmp_path, "markupsafe==3.0.4\n", "first")
    with caplog.at_level(logging.INFO):
        result = pyfn(_args(first, tmp_path / "o1", served_pypy, "--index-url", index_url), env)
    assert _components(result)["markupsafe"] == "3.0.4"
    assert "building it from source" in caplog.text
    caplog.clear()
    second = _function(tmp_path, "markupsafe==3.0.4\nblinker\n", "second")
    with caplog.at_level(logging.INFO):
        result = pyfn(_args(second, tmp_path / "o2", served_pypy, "--index-url", index_url), env)
    assert set(_components(result)) == {"markupsafe", "blinker"}
    assert "building it from source" not in caplog.text
    assert "reusing the wheel built from markupsafe-3.0.4.tar.gz" in caplog.text
    built = list((tmp_path / "cache" / "built").glob("*/*/*.whl"))
    assert len(built) == 1 and built[0].name.startswith("markupsafe-3.0.4-")


@RESOLVERS
@pytest.mark.parametrize("how", ["pip.conf", "PIP_INDEX_URL", "install over global"])
def test_pip_configuration_applies_with_either_resolver(
    tmp_path: Path, served_pypy: Served, session_cache: Path, resolver: str, how: str
) -> None:
    """pip.conf and PIP_* name the index as they do for pip: the ``install`` section
    over ``global``, the variable over the file."""
    with serve(index_routes(_only_here(tmp_path))) as base:
        index = f"{base}/simple/"
        conf = tmp_path / "pip.conf"
        extra: dict[str, str] = {"PIP_CONFIG_FILE": str(conf)}
        if how == "pip.conf":
            conf.write_text(f"[global]\nindex-url = {index}\n")
        elif how == "PIP_INDEX_URL":
            conf.write_text(f"[global]\nindex-url = {DEAD_INDEX}\n")
            extra["PIP_INDEX_URL"] = index
        else:
            conf.write_text(f"[global]\nindex-url = {DEAD_INDEX}\n[install]\nindex-url = {index}\n")
        src = _function(tmp_path, "pyfn-only-here\n")
        result = pyfn(
            _args(src, tmp_path / "out", served_pypy, "--resolver", resolver, "--refresh"),
            hermetic_env(session_cache, **extra),
        )
    assert _components(result) == {"pyfn-only-here": "2.0"}


@RESOLVERS
def test_hash_checking_mode_holds_with_either_resolver(
    tmp_path: Path, served_pypy: Served, session_cache: Path, resolver: str
) -> None:
    wheels = _only_here(tmp_path)
    good = hashlib.sha256((wheels / "pyfn_only_here-1.0-py3-none-any.whl").read_bytes())
    with serve(index_routes(wheels)) as base:
        index = ["--index-url", f"{base}/simple/", "--resolver", resolver, "--refresh"]
        src = _function(tmp_path, f"pyfn-only-here==1.0 --hash=sha256:{good.hexdigest()}\n")
        result = pyfn(_args(src, tmp_path / "o1", served_pypy, *index), hermetic_env(session_cache))
        assert _components(result) == {"pyfn-only-here": "1.0"}
        bad = _function(tmp_path, f"pyfn-only-here==1.0 --hash=sha256:{'0' * 64}\n", "bad")
        result = pyfn(_args(bad, tmp_path / "o2", served_pypy, *index), hermetic_env(session_cache))
    assert result.code == 5, result.stderr
    assert "hash" in result.stderr.lower()
    assert not (tmp_path / "o2" / "bundle.zip").exists()


@RESOLVERS
def test_credentials_of_an_index_reach_it_and_nothing_else(
    tmp_path: Path, served_pypy: Served, session_cache: Path, resolver: str
) -> None:
    """An index that wants Basic auth gets it for every page and file, and the password
    is in no output; a wrong one fails the build, still without showing it."""
    routes = index_routes(_only_here(tmp_path))
    routes.authorization = "Basic " + base64.b64encode(b"robot:s3cr3t-1ndex").decode()
    with serve(routes) as base:
        for password, code in (("s3cr3t-1ndex", 0), ("wr0ng-s3cr3t", 5)):
            out = tmp_path / f"out-{code}"
            index = f"{base}/simple/".replace("://", f"://robot:{password}@")
            src = _function(tmp_path, "pyfn-only-here\n", f"fn-{code}")
            result = pyfn(
                _args(
                    src,
                    out,
                    served_pypy,
                    "--index-url",
                    index,
                    "--resolver",
                    resolver,
                    "--refresh",
                    "--debug",
                ),
                hermetic_env(session_cache),
            )
            assert result.code == code, result.stderr
            shown = result.stdout + result.stderr
            assert password not in shown
            if code == 0:
                assert "s3cr3t-1ndex" not in (out / "report.json").read_text()
    assert routes.hits, "the index was asked"


@RESOLVERS
def test_an_extra_index_with_credentials_serves_what_the_index_lacks(
    tmp_path: Path, served_pypy: Served, session_cache: Path, resolver: str
) -> None:
    """``extra_index_urls`` with user info: its pages and files get its credentials (and
    no other host's), the index keeps none, and the password is in no output. uv's
    files go in ``<cache>/uv``, inside pyfn's cache, which the Action's cache keeps."""
    (tmp_path / "plain").mkdir()
    make_wheel(tmp_path / "plain", "blinker", "1.9.0", "py3-none-any")
    extra = index_routes(_only_here(tmp_path))
    extra.authorization = "Basic " + base64.b64encode(b"robot:3xtra-s3cret").decode()
    plain = index_routes(tmp_path / "plain")
    cache = tmp_path / "cache"
    with serve(plain) as index, serve(extra) as more:
        src = _function(tmp_path, "pyfn-only-here\nblinker\n")
        secret_url = f"{more}/simple/".replace("://", "://robot:3xtra-s3cret@")
        result = pyfn(
            _args(
                src,
                tmp_path / "out",
                served_pypy,
                "--index-url",
                f"{index}/simple/",
                "--extra-index-urls",
                secret_url,
                "--resolver",
                resolver,
                "--debug",
            ),
            hermetic_env(cache),
        )
    assert _components(result) == {"pyfn-only-here": "2.0", "blinker": "1.9.0"}
    assert "3xtra-s3cret" not in result.stdout + result.stderr
    assert extra.hits and plain.hits
    if resolver == "uv":
        assert any((cache / "uv").iterdir())


@RESOLVERS
def test_a_source_named_relative_to_the_working_directory_builds(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    resolver: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pyfn build fn`` from the directory that holds ``fn``, as a user types it."""
    _function(tmp_path, "blinker\n")
    monkeypatch.chdir(tmp_path)
    args = ["--index-url", index_url, "--resolver", resolver, "--refresh"]
    result = pyfn(_args(Path("fn"), Path("out"), served_pypy, *args), hermetic_env(session_cache))
    assert _components(result) == {"blinker": "1.9.0"}


def test_a_local_packages_uv_sources_are_not_followed(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    """A local package (a pull request's own) whose pyproject.toml tells uv to take a
    dependency from a path outside the source: uv reads the metadata as published,
    as pip does, and the dependency comes from the index."""
    src = _function(tmp_path, "./pkg\n")
    (src / "pkg" / "mine").mkdir(parents=True)
    (src / "pkg" / "mine" / "__init__.py").write_text("")
    (src / "pkg" / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "mine"\nversion = "1.0"\ndependencies = ["blinker"]\n'
        '[tool.setuptools]\npackages = ["mine"]\n'
        f'[tool.uv.sources]\nblinker = {{ path = "{tmp_path / "outside"}" }}\n'
    )
    args = ["--index-url", index_url, "--resolver", "uv", "--refresh"]
    result = pyfn(_args(src, tmp_path / "out", served_pypy, *args), hermetic_env(session_cache))
    assert _components(result) == {"mine": "1.0", "blinker": "1.9.0"}


def test_requires_python_is_the_reason_given(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    """Only a release for a newer Python than the target's: the error says so, not that
    no wheel has the target's tags."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "modern", "1.5", "py3-none-any", requires_python=">=3.8")
    make_wheel(wheels, "modern", "2.0", "py3-none-any", requires_python=">=3.12")
    with serve(index_routes(wheels)) as base:
        src = _function(tmp_path, "modern==2.0\n")
        args = _args(src, tmp_path / "out", served_pypy, "--index-url", f"{base}/simple/")
        result = pyfn(args, hermetic_env(session_cache))
    assert result.code == 5, result.stderr
    assert "modern 2.0 requires Python >=3.12, but the runtime is Python 3.9" in result.stderr
    assert "Pin modern==1.5, its newest release for Python 3.9" in result.stderr


def test_the_wheelhouse_is_what_the_tests_index_serves() -> None:
    """The other tests lean on MarkupSafe being an sdist alone there."""
    assert [p.name for p in WHEELHOUSE.glob("markupsafe-*")] == ["markupsafe-3.0.4.tar.gz"]
    assert shutil.which("pypy3"), "uv judges with the target PyPy or a pypy3 (CI installs it)"


@RESOLVERS
def test_an_aarch64_target_is_resolved_on_this_x86_64_machine(
    tmp_path: Path, resolver: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A target this machine cannot run: the target's wheels are chosen all the same (uv
    judges with this machine's pypy3, told the target's platform), and, with uv,
    markers are judged for the target's CPU."""
    from pyfn_action.deps.pip_runner import host_interpreter
    from pyfn_action.deps.requirements import install_requirements
    from pyfn_action.deps.sources import Sources
    from pyfn_action.runtime.targets import Target

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for arch in ("x86_64", "aarch64"):
        make_wheel(wheels, "native", "1.0", f"pp39-pypy39_pp73-manylinux_2_17_{arch}")
    make_wheel(wheels, "armonly", "1.0", "py3-none-any")
    make_wheel(wheels, "intelonly", "1.0", "py3-none-any")
    wanted = tmp_path / "requirements.txt"
    wanted.write_text(
        "native\narmonly; platform_machine == 'aarch64'\nintelonly; platform_machine == 'x86_64'\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYFN_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    with serve(index_routes(wheels)) as base, caplog.at_level(logging.INFO):
        installed = install_requirements(
            [],
            requirement_files=[wanted],
            target=Target("3.9", "73", "aarch64", (2, 35)),
            interpreter=host_interpreter(env),
            site=tmp_path / "site",
            work=tmp_path / "work",
            cache_dir=tmp_path / "cache",
            sources=Sources(index_url=f"{base}/simple/"),
            resolver=resolver,
        )
    chosen = {d.name: d.wheel for d in installed.distributions}
    assert chosen["native"] == "native-1.0-pp39-pypy39_pp73-manylinux_2_17_aarch64.whl"
    assert installed.resolver == resolver
    if resolver == "uv":  # pip judges markers for this machine (and says so)
        assert set(chosen) == {"native", "armonly"}
        # What a marker left out is named in the build's output.
        assert (
            'intelonly is not installed: its marker (platform_machine == "x86_64") is '
            "false for the target" in caplog.text
        )


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _pids_under(marker: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if marker.encode() in (proc / "cmdline").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                pass
    return found


@RESOLVERS
def test_a_build_stopped_by_sigterm_leaves_no_temporary_tree(
    tmp_path: Path, served_pypy: Served, index_url: str, resolver: str
) -> None:
    """A cancelled CI job (SIGTERM) while an sdist is being built: the build's trees,
    pip's and uv's build directories among them, are all removed, its processes are
    gone, and nothing half-made is left looking like a cache entry."""
    cache, tmp = tmp_path / "cache", tmp_path / "tmp"
    tmp.mkdir()
    src = _function(tmp_path, "markupsafe==3.0.4\n")
    argv = [
        sys.executable,
        "-m",
        "pyfn_action",
        *_args(
            src, tmp_path / "out", served_pypy, "--index-url", index_url, "--resolver", resolver
        ),
    ]
    process = subprocess.Popen(
        argv,
        env=hermetic_env(cache, TMPDIR=str(tmp)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        deadline = time.monotonic() + 180
        building = False
        while time.monotonic() < deadline and process.poll() is None:
            # Building: the build backend runs (under pip or uv), in a tree of the cache.
            building = any((cache / "work").glob("*/pip/*")) and any(
                "build_wheel" in _cmdline(pid) for pid in _pids_under(str(cache))
            )
            if building:
                break
            time.sleep(0.05)
        assert building, "".join(lines)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 130, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        reader.join(timeout=30)
    assert "pyfn: interrupted" in "".join(lines)
    assert list((cache / "work").iterdir()) == []
    assert list(tmp.iterdir()) == []
    for _ in range(20):  # its process group was killed: gone within moments, not seconds
        if not _pids_under(str(cache)):
            break
        time.sleep(0.1)
    assert [_cmdline(pid) for pid in _pids_under(str(cache))] == []
    assert not (tmp_path / "out" / "bundle.zip").exists()
    assert not list((cache / "site").glob("*/installed.json"))
    assert not list((cache / "built").glob("*/*/.complete"))


@RESOLVERS
def test_find_links_and_constraints_hold_with_either_resolver(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path, resolver: str
) -> None:
    """``--find-links`` (a setting, and a line of the requirements file with
    ``--no-index``) and ``-c`` constraints mean what they mean to pip."""
    links = _only_here(tmp_path)
    flag = _function(tmp_path, "pyfn-only-here\n", "flag")
    args = ["--index-url", index_url, "--find-links", str(links), "--resolver", resolver]
    result = pyfn(
        _args(flag, tmp_path / "o1", served_pypy, *args, "--refresh"), hermetic_env(session_cache)
    )
    assert _components(result) == {"pyfn-only-here": "2.0"}
    inline = _function(
        tmp_path, "--no-index\n--find-links wheels\n-c pins.txt\npyfn-only-here\n", "inline"
    )
    shutil.copytree(links, inline / "wheels")
    (inline / "pins.txt").write_text("pyfn-only-here==1.0\n")
    result = pyfn(
        _args(inline, tmp_path / "o2", served_pypy, "--resolver", resolver, "--refresh"),
        hermetic_env(session_cache),
    )
    assert _components(result) == {"pyfn-only-here": "1.0"}
