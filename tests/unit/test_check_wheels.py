from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from support.wheels import make_wheel

from pyfn_action.hooks.native_wheels import main


@pytest.fixture(autouse=True)
def hermetic_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip in the hook sees no index or wheel directory but the ones a test gives."""
    for name in ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_NO_INDEX"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")


@pytest.fixture
def links(tmp_path: Path) -> Path:
    """A wheel directory: what an offline check resolves against."""
    d = tmp_path / "links"
    d.mkdir()
    make_wheel(d, "purepkg", "1.0", "py3-none-any")
    make_wheel(d, "pypkg", "2.0", "pp311-pypy311_pp73-manylinux_2_17_x86_64")
    make_wheel(d, "orjson", "3.10.0", "cp312-cp312-manylinux_2_17_x86_64")
    make_wheel(d, "orjson", "3.10.0", "cp38-abi3-manylinux_2_17_x86_64")
    make_wheel(d, "toonew", "1.0", "pp311-pypy311_pp73-manylinux_2_39_x86_64")
    (d / "sdistonly-1.0.tar.gz").write_bytes(b"")
    return d


def _run(tmp_path: Path, links: Path, files: list[str], *extra: str) -> int:
    args = [
        *files,
        "--no-index",
        "--find-links",
        str(links),
        "--cache-dir",
        str(tmp_path / "cache"),
        *extra,
    ]
    return main(args)


def test_requirements_verdicts(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    req = tmp_path / "requirements.txt"
    req.write_text(
        "purepkg\npypkg>=2\n# a comment\nsdistonly\n"
        "cpython-only-thing; platform_python_implementation == 'CPython'\n"
    )
    assert _run(tmp_path, links, [str(req)]) == 0
    out = capsys.readouterr().out
    assert f"{req}:1 purepkg: pure Python (purepkg-1.0-py3-none-any.whl)" in out
    assert "pypkg>=2: PyPy wheel (pypkg-2.0-pp311-pypy311_pp73-manylinux_2_17_x86_64.whl)" in out
    assert "sdistonly: no wheel for the target; only an sdist, not verified: no PyPy 3.11" in out
    assert "cpython-only-thing" not in out  # its marker excludes PyPy
    assert _run(tmp_path, links, [str(req)], "--strict") == 1  # "not verified" under --strict


def test_no_loadable_wheel_fails_and_names_the_tags(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    req = tmp_path / "requirements-prod.txt"
    req.write_text("orjson\ntoonew\n")
    assert _run(tmp_path, links, [str(req)]) == 1
    out = capsys.readouterr().out
    assert "orjson: no wheel PyPy 3.11 can load; found cp312-cp312" in out and "cp38-abi3" in out
    # a wheel for glibc 2.39 does not load on the 2.35 image; it does with --glibc 2.39
    assert "toonew: no wheel PyPy 3.11 can load" in out
    assert _run(tmp_path, links, [str(tmp_path / "requirements-prod.txt")], "--glibc", "2.39") == 1
    assert "toonew: PyPy wheel" in capsys.readouterr().out


PP80 = (
    "PyPy 8.0 (tag pp80), which pyfn cannot target yet: PyPy 8.0 needs glibc 2.28 and a "
    "runtime pyfn does not bundle; use a pp73 wheel (PyPy 7.3) or the sdist"
)
PP81 = (
    "a PyPy release pyfn does not know (tag pp81): pyfn targets PyPy 7.3 (pp73); "
    "use a pp73 wheel (PyPy 7.3) or the sdist"
)


@pytest.mark.parametrize(
    ("tags", "detail"),
    [
        (
            ["pp311-pypy311_pp80-manylinux_2_28_x86_64"],
            "no wheel PyPy 3.11 can load; found pp311-pypy311_pp80 (manylinux_x86_64); pp80 "
            "wheels are for " + PP80,
        ),
        (
            ["cp312-cp312-manylinux_2_17_x86_64", "pp311-pypy311_pp80-manylinux_2_28_x86_64"],
            "no wheel PyPy 3.11 can load; found cp312-cp312 (manylinux_x86_64), "
            "pp311-pypy311_pp80 (manylinux_x86_64); pp80 wheels are for " + PP80,
        ),
        (
            ["pp311-pypy311_pp81-manylinux_2_28_x86_64"],
            "no wheel PyPy 3.11 can load; found pp311-pypy311_pp81 (manylinux_x86_64); pp81 "
            "wheels are for " + PP81,
        ),
        # what is not a PyPy release's keeps its message
        (
            ["cp312-cp312-manylinux_2_17_x86_64", "cp38-abi3-manylinux_2_17_x86_64"],
            "no wheel PyPy 3.11 can load; found cp312-cp312 (manylinux_x86_64), "
            "cp38-abi3 (manylinux_x86_64)",
        ),
        (
            ["pp310-pypy310_pp73-manylinux_2_17_x86_64"],
            "no wheel PyPy 3.11 can load; found pp310-pypy310_pp73 (manylinux_x86_64)",
        ),
    ],
)
def test_wheels_only_for_a_pypy_release_pyfn_cannot_target(
    tmp_path: Path, tags: list[str], detail: str, capsys: pytest.CaptureFixture[str]
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    for tag in tags:
        make_wheel(links, "nextonly", "1.0", tag)
    req = tmp_path / "requirements.txt"
    req.write_text("nextonly\n")
    assert _run(tmp_path, links, [str(req)]) == 1
    assert capsys.readouterr().out == f"{req}:1 nextonly: {detail}\n"


def test_a_wheel_named_by_url_for_a_pypy_release_pyfn_cannot_target(
    tmp_path: Path, links: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = make_wheel(tmp_path, "nextonly", "1.0", "pp311-pypy311_pp80-manylinux_2_28_x86_64")
    req = tmp_path / "requirements.txt"
    req.write_text(f"nextonly @ {wheel.as_uri()}\n")
    assert _run(tmp_path, links, [str(req)]) == 1
    out = capsys.readouterr().out
    assert out == f"{req}:1 nextonly @ {wheel.as_uri()}: {wheel.name} is built for {PP80}\n"


@pytest.mark.parametrize(
    ("tag", "code", "detail"),
    [
        ("pp311-pypy311_pp80-manylinux_2_28_x86_64", 1, "built for " + PP80),
        ("pp311-pypy311_pp81-manylinux_2_28_x86_64", 1, "built for " + PP81),
        ("pp311-pypy311_pp73-manylinux_2_28_x86_64", 0, "loads on the target"),
        (
            "pp310-pypy310_pp73-manylinux_2_17_x86_64",
            1,
            "tags pp310-pypy310_pp73 (manylinux_x86_64): PyPy cannot load it",
        ),
        (
            "cp311-cp311-manylinux_2_17_x86_64",
            1,
            "tags cp311-cp311 (manylinux_x86_64): PyPy cannot load it",
        ),
        (
            "cp38-abi3-manylinux_2_17_x86_64",
            1,
            "tags cp38-abi3 (manylinux_x86_64): PyPy cannot load it",
        ),
    ],
)
def test_vendored_wheels_by_their_tags(
    tmp_path: Path,
    links: Path,
    tag: str,
    code: int,
    detail: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wheel = make_wheel(tmp_path, "vendored", "1.0", tag)
    assert _run(tmp_path, links, [str(wheel)]) == code
    assert capsys.readouterr().out == f"{wheel}: {detail}\n"


def test_a_vendored_extension_of_a_pypy_release_pyfn_cannot_target(
    tmp_path: Path, links: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = next(Path("/usr/lib/pypy3.9").glob("_sqlite3_cffi.pypy39-pp73-*.so"), None)
    if source is None:
        pytest.fail("Debian's pypy3 is not installed (CI installs it)")
    so = tmp_path / "_sqlite3_cffi.pypy311-pp80-x86_64-linux-gnu.so"
    shutil.copyfile(source, so)
    assert _run(tmp_path, links, [str(so)]) == 1
    assert capsys.readouterr().out == f"{so}: built for {PP80}\n"


def test_pyproject_dependencies(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "f"\ndependencies = ["purepkg"]\n'
        '[project.optional-dependencies]\nfast = ["orjson"]\n'
    )
    assert _run(tmp_path, links, [str(pyproject)]) == 1
    out = capsys.readouterr().out
    assert "purepkg: pure Python" in out and "orjson: no wheel" in out


def test_malformed_requirement_names_its_line(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    req = tmp_path / "requirements.txt"
    req.write_text("purepkg\nflask >= = 2\n")
    assert _run(tmp_path, links, [str(req)]) == 1
    assert f"{req}:2: not a valid requirement" in capsys.readouterr().out


def test_unreachable_index_is_could_not_check(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens
    req = tmp_path / "requirements.txt"
    req.write_text("purepkg\n")
    args = [
        str(req),
        "--index-url",
        f"http://127.0.0.1:{port}/simple/",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    assert "could not check (offline?)" in capsys.readouterr().out
    assert main([*args, "--strict"]) == 1


def test_vendored_binaries(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    source = next(Path("/usr/lib/pypy3.9").glob("_sqlite3_cffi.pypy39-pp73-*.so"), None)
    if source is None:
        pytest.fail("Debian's pypy3 is not installed (CI installs it)")
    good = tmp_path / source.name
    shutil.copyfile(source, good)
    bad = tmp_path / "_fast.cpython-311-x86_64-linux-gnu.so"
    shutil.copyfile(source, bad)
    fake = tmp_path / "fake.so"
    fake.write_text("text")
    wheel = make_wheel(tmp_path, "cponly", "1.0", "cp311-cp311-manylinux_2_17_x86_64")
    files = [str(good), str(bad), str(fake), str(wheel)]
    assert _run(tmp_path, links, files, "--runtime", "pypy3.9") == 1
    out = capsys.readouterr().out
    assert f"{good}: loads on the target" in out
    assert f"{bad}: a CPython extension (cpython-311): PyPy cannot load it" in out
    assert f"{fake}: named like a shared object but" in out
    assert f"{wheel}: tags cp311-cp311" in out


def test_answers_are_cached(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    req = tmp_path / "requirements.txt"
    req.write_text("purepkg\n")
    assert _run(tmp_path, links, [str(req)]) == 0
    shutil.rmtree(links)  # gone: only the cache can answer now
    assert (
        main(
            [
                str(req),
                "--no-index",
                "--find-links",
                str(links),
                "--cache-dir",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.count("purepkg: pure Python") == 2


def _age_answers(cache: Path, seconds: float, detail: str | None = None) -> None:
    """Make every kept answer ``seconds`` old (from now), its detail changed if asked."""
    import json
    import time

    path = cache / "native-wheels.json"
    answers = json.loads(path.read_text())
    assert answers, "the first run kept an answer"
    for answer in answers.values():
        answer[2] = time.time() - seconds
        if detail is not None:
            answer[1] = detail
    path.write_text(json.dumps(answers))


def test_answers_expire_after_a_day(
    tmp_path: Path, links: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pyfn_action.hooks.native_wheels import CACHE_SECONDS

    assert CACHE_SECONDS == 24 * 3600  # "answers are kept for a day" (docs/hooks.md)
    req = tmp_path / "requirements.txt"
    req.write_text("purepkg\n")
    assert _run(tmp_path, links, [str(req)]) == 0
    capsys.readouterr()
    # an hour short of a day: the kept answer is given (a marked one, to tell it apart)
    _age_answers(tmp_path / "cache", CACHE_SECONDS - 3600, detail="KEPT ANSWER")
    assert _run(tmp_path, links, [str(req)]) == 0
    assert "purepkg: KEPT ANSWER" in capsys.readouterr().out
    # an hour past a day: asked again, and the fresh answer is kept in its place
    _age_answers(tmp_path / "cache", CACHE_SECONDS + 3600, detail="EXPIRED ANSWER")
    assert _run(tmp_path, links, [str(req)]) == 0
    out = capsys.readouterr().out
    assert "EXPIRED" not in out and "purepkg: pure Python (purepkg-1.0-py3-none-any.whl)" in out
    shutil.rmtree(links)  # only the renewed answer can tell now
    assert _run(tmp_path, links, [str(req)]) == 0
    assert "purepkg: pure Python (purepkg-1.0-py3-none-any.whl)" in capsys.readouterr().out


def test_shared_object_from_a_real_wheel(tmp_path: Path, links: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    wheelhouse = Path(__file__).parents[1] / ".wheelhouse"
    numpy = next(wheelhouse.glob("numpy-*-pp39-*.whl"), None)
    if numpy is None:
        pytest.fail("tests/.wheelhouse has no numpy wheel: run `python tests/prepare.py`")
    with zipfile.ZipFile(numpy) as zf:
        member = next(n for n in zf.namelist() if "_multiarray_umath.pypy39" in n)
        so = tmp_path / Path(member).name
        so.write_bytes(zf.read(member))
        libs = [n for n in zf.namelist() if n.startswith("numpy.libs/")]
        for lib in libs:
            (tmp_path / Path(lib).name).write_bytes(zf.read(lib))
    vendored = [str(so), *(str(tmp_path / Path(lib).name) for lib in libs)]
    assert _run(tmp_path, links, vendored, "--runtime", "pypy3.9") == 0
    assert f"{so}: loads on the target" in capsys.readouterr().out
    # without the libraries auditwheel put beside it, its DT_NEEDED are unmet
    assert _run(tmp_path, links, [str(so)], "--runtime", "pypy3.9") == 1
    assert "which neither the bundle nor the image provides" in capsys.readouterr().out


def test_shared_object_built_here_with_an_unusual_dependency(
    tmp_path: Path,
    links: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    import subprocess

    (tmp_path / "dep.c").write_text("int dep(void) { return 1; }\n")
    (tmp_path / "mod.c").write_text("int dep(void);\nint use(void) { return dep(); }\n")
    cc = ["cc", "-shared", "-fPIC"]
    dep = tmp_path / "libpyfnodd.so.7"
    module = tmp_path / "_mod.pypy311-pp73-x86_64-linux-gnu.so"
    subprocess.run(
        [*cc, "-o", str(dep), "-Wl,-soname,libpyfnodd.so.7", str(tmp_path / "dep.c")], check=True
    )
    subprocess.run([*cc, "-o", str(module), str(tmp_path / "mod.c"), str(dep)], check=True)
    assert _run(tmp_path, links, [str(module)]) == 1
    assert "needs libpyfnodd.so.7, which neither the bundle nor the image provides" in (
        capsys.readouterr().out
    )
    assert _run(tmp_path, links, [str(module), str(dep)]) == 0
