from __future__ import annotations

import importlib.metadata
import logging
import os
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from support.wheels import make_wheel

from pyfn_action.deps import requirements as req
from pyfn_action.deps import sdist
from pyfn_action.deps.pip_runner import Interpreter, _pip_for_target
from pyfn_action.deps.sources import Sources, mask_text, mask_url
from pyfn_action.errors import BundleError, NoCompatibleWheel, RequirementsError
from pyfn_action.runtime.pypy import Runtime
from pyfn_action.runtime.targets import Target


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


def test_the_byte_for_byte_check_is_done_once_while_nothing_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyfn_action.deps import pip_runner

    runtime = _runtime(tmp_path, "3.10", {"pip-24.0-py3-none-any.whl": b"# the real pip"})
    checks: list[Path] = []
    real = pip_runner._holds_exactly

    def counted(home: Path, files: pip_runner.Files) -> bool:
        checks.append(home)
        return real(home, files)

    monkeypatch.setattr(pip_runner, "_holds_exactly", counted)
    home = _pip_for_target(runtime, tmp_path / "cache")  # made and checked
    # Just made: its times cannot yet tell a change in the same tick, so no stamp.
    assert not (home.parent / f"{home.name}.checked").exists()
    from pyfn_action import fetch

    monkeypatch.setattr(fetch, "SETTLED_SECONDS", -1.0)  # as if made long ago
    assert _pip_for_target(runtime, tmp_path / "cache") == home  # checked, stamped
    made = len(checks)
    assert _pip_for_target(runtime, tmp_path / "cache") == home
    assert len(checks) == made  # the stamp says the same files: not read again
    # Same size, other bytes: the file's change time moves, so it is checked and remade.
    (home / "pip" / "__main__.py").write_bytes(b"# the evil pip")
    st = (home / "pip" / "__main__.py").stat()  # a later time, as a change after 2 s gets
    os.utime(home / "pip" / "__main__.py", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert _pip_for_target(runtime, tmp_path / "cache") == home
    assert len(checks) > made
    assert (home / "pip" / "__main__.py").read_bytes() == b"# the real pip"


def test_falls_back_to_this_pip_when_it_supports_the_runtime(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "3.11")
    home = _pip_for_target(runtime, tmp_path / "cache")
    assert home.name == f"host-{importlib.metadata.version('pip')}"
    assert (home / "pip" / "__main__.py").is_file()


def test_refuses_a_pip_that_cannot_run_on_the_runtime(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "3.0")  # no pip supports Python 3.0
    with pytest.raises(BundleError, match=r"does not run on Python 3\.0"):
        _pip_for_target(runtime, tmp_path / "cache")


# --- the cached pip is what its source holds, nothing more ------------------------------
# The cache may be shared (CI): a planted module beside pip would run inside every build.


@pytest.mark.parametrize("tamper", ["changed", "extra-module", "pycache", "symlink", "missing"])
def test_a_tampered_cached_pip_is_unpacked_again(tmp_path: Path, tamper: str) -> None:
    runtime = _runtime(tmp_path, "3.10", {"pip-24.0-py3-none-any.whl": b"# the real pip"})
    home = _pip_for_target(runtime, tmp_path / "cache")
    main = home / "pip" / "__main__.py"
    if tamper == "changed":
        main.write_bytes(b"import os; os.system('evil')")
    elif tamper == "extra-module":
        (home / "json.py").write_text("raise SystemExit('shadowed the stdlib')")
    elif tamper == "pycache":
        (home / "pip" / "__pycache__").mkdir()
        (home / "pip" / "__pycache__" / "__main__.pypy310.pyc").write_bytes(b"evil")
    elif tamper == "symlink":
        evil = tmp_path / "evil.py"
        evil.write_bytes(b"# the real pip")  # same bytes today, anything tomorrow
        main.unlink()
        main.symlink_to(evil)
    else:
        main.unlink()
        (home / "pip" / "__main__.py").parent.joinpath("x.py").write_text("")
    again = _pip_for_target(runtime, tmp_path / "cache")
    assert again == home
    files = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if not p.is_dir())
    assert files == ["pip/__main__.py"]
    assert not (home / "pip" / "__main__.py").is_symlink()
    assert (home / "pip" / "__main__.py").read_bytes() == b"# the real pip"


def test_a_tampered_copy_of_this_pip_is_copied_again(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, "3.11")
    home = _pip_for_target(runtime, tmp_path / "cache")
    (home / "pip" / "__init__.py").write_text("import os; os.system('evil')")
    (home / "sitecustomize.py").write_text("")
    again = _pip_for_target(runtime, tmp_path / "cache")
    assert again == home and not (home / "sitecustomize.py").exists()
    import pip

    assert (home / "pip" / "__init__.py").read_bytes() == Path(pip.__file__).read_bytes()


# --- credentials in index URLs never reach logs or messages ---------------------------


SECRETS = ("s3cr3t-pass", "t0ken-in-query", "env-pa55word", "bare-t0ken-user")
INDEX = "https://alice:s3cr3t-pass@pypi.internal.example/simple?token=t0ken-in-query"
EXTRA = "https://bare-t0ken-user@extra.example/simple/"


def _fake_pip(tmp_path: Path) -> Interpreter:
    """A 'pip' that echoes its command line and fails the way pip does, quoting URLs
    (pip hides a password in userinfo, but not one in the query, nor one it decoded)."""
    script = tmp_path / "fakepip.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, sys
            print("argv:", " ".join(sys.argv[1:]))
            print("Looking in indexes:", os.environ.get("PIP_INDEX_URL", ""))
            sys.stderr.write("ERROR: 401 Client Error: Unauthorized for url: "
                             + " ".join(a for a in sys.argv if "://" in a) + "\\n")
            sys.stderr.write("ERROR: the password env-pa55word was refused\\n")
            sys.exit(1)
            """
        )
    )
    env = {"PIP_INDEX_URL": "https://bob:env-pa55word@env.example/simple"}
    return Interpreter((sys.executable, str(script)), env, is_target=True)


def _target() -> Target:
    return Target("3.9", "73", "x86_64", (2, 17))


def test_credentials_in_index_urls_are_masked_in_debug_logs_and_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sources = Sources(index_url=INDEX, extra_index_urls=(EXTRA,), find_links=(EXTRA,))
    with caplog.at_level(logging.DEBUG), pytest.raises(RequirementsError) as caught:
        req.install_requirements(
            ["flask"],
            requirement_files=[],
            target=_target(),
            interpreter=_fake_pip(tmp_path),
            site=tmp_path / "site",
            work=tmp_path / "work",
            cache_dir=tmp_path / "cache",
            sources=sources,
            resolver="pip",
        )
    logged = caplog.text
    assert "running" in logged and "--index-url" in logged  # the command is still shown
    assert "https://alice:***@pypi.internal.example/simple?token=***" in logged
    message = caught.value.message
    assert "Unauthorized" in message  # pip's own words are still quoted
    for secret in SECRETS:
        assert secret not in logged, secret
        assert secret not in message, secret


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:token@host/simple", "https://user:***@host/simple"),
        ("https://token@host/simple/", "https://***@host/simple/"),
        ("https://host/simple?key=abc&x=1", "https://host/simple?key=***&x=***"),
        ("https://host/simple?abc123", "https://host/simple?***"),
        ("https://u:p%40ss@host:8443/s#frag", "https://u:***@host:8443/s#frag"),
        ("https://u:p@ss@host/s", "https://u:***@host/s"),
        ("https://u:pa/ss@host/simple", "https://u:***@host/simple"),
        ("https://host:8080/simple/pkg@1", "https://host:8080/simple/pkg@1"),
        ("https://[::1]:8080/simple", "https://[::1]:8080/simple"),
        ("https://index.example/simple", "https://index.example/simple"),
        ("/srv/wheels", "/srv/wheels"),
        ("file:///srv/wheels", "file:///srv/wheels"),
        (
            "git+https://ghp_abc@github.com/o/r.git@v1#egg=r",
            "git+https://***@github.com/o/r.git@v1#egg=r",
        ),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown
    assert mask_text(f"see {url}, then") == f"see {shown}, then"


def test_a_direct_url_requirement_is_masked_in_the_no_wheel_message() -> None:
    error = sdist.no_wheel(
        "pkg @ https://u:s3cr3t-pass@host/pkg-1.0.tar.gz?sig=t0ken-in-query",
        "pkg",
        _target(),
        Sources(no_index=True),
        built=None,
    )
    assert "s3cr3t-pass" not in error.message and "t0ken-in-query" not in error.message
    assert "pkg @ https://u:***@host/pkg-1.0.tar.gz?sig=***" in error.message


PP80 = (
    "PyPy 8.0 (tag pp80), which pyfn cannot target yet: PyPy 8.0 needs glibc 2.28 and a "
    "runtime pyfn does not bundle"
)


@pytest.mark.parametrize(
    ("tags", "why", "fix"),
    [
        (
            ["pp311-pypy311_pp80-manylinux_2_28_x86_64"],
            "tags that exist for nextonly: pp311-pypy311_pp80 (manylinux_x86_64); pp80 wheels are "
            f"for {PP80}",
            "Use a release of nextonly with a pp73 wheel (PyPy 7.3), a pure-Python (py3-none-any) "
            "wheel or an sdist, or replace the package with a pure-Python alternative.",
        ),
        (
            ["cp39-cp39-manylinux2014_x86_64", "cp38-abi3-manylinux2014_x86_64"],
            "tags that exist for nextonly: cp38-abi3 (manylinux2014_x86_64), cp39-cp39 "
            "(manylinux2014_x86_64).",
            "Use a release that ships PyPy (pp) or pure-Python (py3-none-any) wheels, or replace "
            "the package with a pure-Python alternative.",
        ),
    ],
)
def test_the_no_wheel_message_names_a_pypy_release_pyfn_cannot_target(
    tmp_path: Path, tags: list[str], why: str, fix: str
) -> None:
    for tag in tags:
        make_wheel(tmp_path, "nextonly", "1.0", tag)
    sources = Sources(find_links=(str(tmp_path),), no_index=True)
    error = sdist.no_wheel("nextonly", "nextonly", _target(), sources, built=None)
    assert error.requirement == "nextonly"
    assert why in error.message and error.message.endswith(fix)


def _failing_pip(tmp_path: Path, stderr: str) -> Interpreter:
    script = tmp_path / "failingpip.py"
    script.write_text(f"import sys\nsys.stderr.write({stderr!r})\nsys.exit(1)\n")
    return Interpreter((sys.executable, str(script)), {}, is_target=True)


def test_a_local_wheel_of_a_pypy_release_pyfn_cannot_target_is_named(tmp_path: Path) -> None:
    wheel = "nextonly-1.0-pp311-pypy311_pp80-manylinux_2_28_x86_64.whl"
    pip = _failing_pip(tmp_path, f"ERROR: {wheel} is not a supported wheel on this platform.\n")
    with pytest.raises(NoCompatibleWheel) as caught:
        req._resolve([f"./wheels/{wheel}"], pip, _target(), Sources(), tmp_path, tmp_path)
    assert caught.value.message == (
        f"{wheel} cannot be loaded by PyPy 3.9. it is built for {PP80}. "
        "Use a pp73 wheel (PyPy 7.3) of nextonly or its sdist."
    )
    assert caught.value.requirement == "nextonly"


def test_another_unsupported_local_wheel_keeps_pips_words(tmp_path: Path) -> None:
    wheel = "nextonly-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
    pip = _failing_pip(tmp_path, f"ERROR: {wheel} is not a supported wheel on this platform.\n")
    with pytest.raises(RequirementsError) as caught:
        req._resolve([f"./wheels/{wheel}"], pip, _target(), Sources(), tmp_path, tmp_path)
    assert not isinstance(caught.value, NoCompatibleWheel)
    assert caught.value.what == "pip could not resolve the requirements for PyPy 3.9"
    assert "is not a supported wheel on this platform" in caught.value.why


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        (
            "pp311-pypy311_pp80-manylinux_2_28_x86_64",
            f"it is built for {PP80}. Use a pp73 wheel (PyPy 7.3) of nextonly or its sdist.",
        ),
        (
            "cp39-cp39-manylinux2014_x86_64",
            "its tags are not among the target's (pypy39_pp73, manylinux ≤ glibc 2.17). "
            "Pin a release with a PyPy or pure-Python wheel.",
        ),
    ],
)
def test_a_downloaded_wheel_the_target_cannot_load(tmp_path: Path, tag: str, message: str) -> None:
    wheel = make_wheel(tmp_path, "nextonly", "1.0", tag)
    with pytest.raises(NoCompatibleWheel) as caught:
        req._check_wheels([wheel], _target(), tmp_path)
    assert caught.value.message == f"{wheel.name} cannot be loaded by PyPy 3.9. {message}"


def test_a_resolved_file_url_with_a_query_is_judged_by_its_path(tmp_path: Path) -> None:
    """Private indexes sign file links (``…whl?X-Signature=…``): still a wheel."""
    script = tmp_path / "reportpip.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            args = sys.argv[1:]
            report = args[args.index("--report") + 1]
            url = "https://files.example/p/demo-1.0-py3-none-any.whl?X-Signature=abcd1234"
            json.dump({"install": [{"metadata": {"name": "demo", "version": "1.0"},
                                    "download_info": {"url": url}}]}, open(report, "w"))
            """
        )
    )
    interpreter = Interpreter((sys.executable, str(script)), {}, is_target=True)
    pins = req._resolve(["demo"], interpreter, _target(), Sources(), tmp_path, tmp_path)
    assert [(p.name, p.chosen) for p in pins] == [("demo", "demo-1.0-py3-none-any.whl")]


def test_sdists_are_built_without_pips_wheel_cache(tmp_path: Path) -> None:
    """pip would take a wheel it finds in its cache for the sdist's URL, unchecked: in a
    shared cache, that is a wheel anyone could have put there."""
    script = tmp_path / "argvpip.py"
    log_file = tmp_path / "argv.txt"
    script.write_text(f"import sys\nopen({str(log_file)!r}, 'a').write(' '.join(sys.argv))\n")
    interpreter = Interpreter((sys.executable, str(script)), {}, is_target=True)
    with pytest.raises(NoCompatibleWheel):  # the fake builds nothing
        sdist.build_for_target(
            "demo==1.0",
            "demo",
            "1.0",
            interpreter,
            _target(),
            Sources(no_index=True),
            tmp_path / "wh",
            _target().tags(),
        )
    argv = log_file.read_text()
    assert " wheel " in argv and "--no-cache-dir" in argv and "--cache-dir" not in argv


def test_index_lookups_log_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    from pyfn_action.deps import index

    caplog.set_level("DEBUG", logger="pyfn_action.deps.index")
    assert index._filenames_from_index("http://127.0.0.1:9/simple?token=s3cr3t-token", "x") == []
    assert "cannot read http://127.0.0.1:9/simple" in caplog.text
    assert "s3cr3t-token" not in caplog.text
