"""`pyfn build` end to end: a packed PyPy from a loopback host, requirements from a
loopback index, and the bundle's own PyPy importing what was installed."""

from __future__ import annotations

import io
import json
import os
import stat
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import REPO, Outcome, Served, build_args, hermetic_env, pyfn
from support.servers import index_routes, serve
from support.wheels import make_wheel

from pyfn_action.config import resolve
from pyfn_action.errors import CredentialsFound
from pyfn_action.flows.jobs import build_function

pytestmark = pytest.mark.e2e

HELLO = REPO / "examples" / "hello"


@pytest.fixture(scope="module")
def hello_builds(
    tmp_path_factory: pytest.TempPathFactory,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
) -> tuple[Path, Path, str]:
    """examples/hello built twice, into two directories, with the same inputs."""
    env = hermetic_env(session_cache)
    outs = []
    stdout = ""
    for n in (1, 2):
        out = tmp_path_factory.mktemp(f"hello-{n}")
        result = pyfn(build_args(HELLO, out, served_pypy, index_url, "--json"), env)
        assert result.code == 0, result.stderr
        stdout = result.stdout
        outs.append(out)
    return outs[0], outs[1], stdout


def test_build_is_reproducible(hello_builds: tuple[Path, Path, str]) -> None:
    first, second, _ = hello_builds
    one = (first / "bundle.zip").read_bytes()
    two = (second / "bundle.zip").read_bytes()
    assert one == two
    report = json.loads((first / "report.json").read_text())
    import hashlib

    assert report["bundle"]["sha256"] == hashlib.sha256(one).hexdigest()


def test_bundle_layout_and_zip_rules(hello_builds: tuple[Path, Path, str]) -> None:
    first, _, _ = hello_builds
    with zipfile.ZipFile(first / "bundle.zip") as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        manifest = json.loads(zf.read("pyfn/manifest.json"))
    assert names == sorted(names)
    for required in (
        "index.js",
        "package.json",
        "app/main.py",
        "pypy/bin/pypy3.9",
        "pypy/bin/libpypy3.9-c.so",
        "pyfn/manifest.json",
    ):
        assert required in names
    assert any(n.startswith("site/flask/") for n in names)
    assert any(n.startswith("site/functions_framework/") for n in names)
    assert any(n.startswith("pypy/lib/pypy3.9/") for n in names)
    assert "pypy/bin/pypy3" not in names and "pypy/bin/pypy" not in names  # aliases dropped
    assert not any(n.endswith("/") for n in names)  # no directory entries
    for info in infos:
        mode = info.external_attr >> 16
        assert info.create_system == 3
        assert info.compress_type in (zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED)
        assert not stat.S_ISLNK(mode)
        assert stat.S_IMODE(mode) in (0o644, 0o755)
        assert info.date_time == (2023, 11, 14, 22, 13, 20)  # SOURCE_DATE_EPOCH=1700000000
    exe = next(i for i in infos if i.filename == "pypy/bin/pypy3.9")
    assert stat.S_IMODE(exe.external_attr >> 16) == 0o755
    assert manifest["function"] == {
        "entry_point": "hello",
        "gen": 2,
        "name": "hello",
        "script": None,
        "signature": "http",
        "stdin": "body",
    }
    assert manifest["runtime"]["python_version"] == "3.9"
    assert {p["name"] for p in manifest["packages"]} >= {"functions-framework", "flask"}


def test_report(hello_builds: tuple[Path, Path, str]) -> None:
    first, _, stdout = hello_builds
    report = json.loads((first / "report.json").read_text())
    assert json.loads(stdout) == report  # --json prints the report itself
    assert report["version"] == 1
    bundle = report["bundle"]
    assert bundle["compressed_bytes"] == (first / "bundle.zip").stat().st_size
    with zipfile.ZipFile(first / "bundle.zip") as zf:
        infos = zf.infolist()
    assert bundle["files"] == len(infos)
    assert bundle["uncompressed_bytes"] == sum(i.file_size for i in infos)
    components = report["components"]
    assert {c["kind"] for c in components} == {"runtime", "stdlib", "package", "app", "shim"}
    for c in components:
        assert set(c) >= {"name", "kind", "compressed_bytes", "uncompressed_bytes", "files"}
    assert sum(c["files"] for c in components) == bundle["files"]
    assert sum(c["uncompressed_bytes"] for c in components) == bundle["uncompressed_bytes"]
    # every shared object judged against the target: Debian's PyPy fits glibc 2.35
    assert report["native"]["inspected"] > 10 and report["native"]["problems"] == []
    packages = {c["name"] for c in components if c["kind"] == "package"}
    # one entry per installed distribution, MarkupSafe built from its sdist included
    assert {"flask", "werkzeug", "markupsafe", "functions-framework"} <= packages


def _unzip(bundle: Path, dest: Path) -> None:
    """Extract as Cloud Functions does: with Info-ZIP's unzip, modes from the zip."""
    subprocess.run(["unzip", "-q", str(bundle), "-d", str(dest)], check=True)


def test_bundle_pypy_imports_requirements(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("def handler(request):\n    return 'ok'\n")
    (src / "requirements.txt").write_text("requests\nnumpy\n")
    out = tmp_path / "out"
    env = hermetic_env(session_cache)
    result = pyfn(
        build_args(
            src,
            out,
            served_pypy,
            index_url,
            "--entry-point",
            "handler",
            "--signature",
            "script",
            "--script",
            "main.py",
        ),
        env,
    )
    assert result.code == 0, result.stderr
    root = tmp_path / "unzipped"
    _unzip(out / "bundle.zip", root)
    exe = root / "pypy" / "bin" / "pypy3.9"
    assert os.access(exe, os.X_OK)
    probe = (
        "import sys, json; sys.path.insert(0, 'site');"
        "import requests, numpy;"
        "print(json.dumps({'path': sys.path, 'requests': requests.__file__,"
        " 'numpy': numpy.__file__, 'sum': int(numpy.arange(10).sum())}))"
    )
    run = subprocess.run(
        [str(exe), "-s", "-c", probe],
        cwd=root,
        env={"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": str(root / "pypy" / "lib")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    seen = json.loads(run.stdout)
    assert seen["sum"] == 45
    assert Path(seen["requests"]).resolve().is_relative_to(root.resolve())
    assert Path(seen["numpy"]).resolve().is_relative_to(root.resolve())
    for entry in seen["path"]:
        if entry:
            assert not entry.startswith("/usr"), seen["path"]


def _script_function(tmp_path: Path) -> Path:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    return src


def _script_args(src: Path, out: Path, served: Served, index_url: str, *more: str) -> list[str]:
    """Build arguments for the script-mode function: no requirements, the runtime alone."""
    return build_args(
        src, out, served, index_url, "--signature", "script", "--script", "main.py", *more
    )


def _build_against(
    tmp_path: Path, served: Served, cache: Path, requirement: str, *extra: str
) -> Outcome:
    """Build a script function requiring ``requirement`` from an index of tmp_path/wheels."""
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("def fn(request):\n    return 'ok'\n")
    (src / "requirements.txt").write_text(requirement + "\n")
    with serve(index_routes(tmp_path / "wheels")) as base:
        out = tmp_path / "out"
        args = _script_args(src, out, served, f"{base}/simple/", *extra)
        return pyfn(args, hermetic_env(cache))


def test_no_wheel_for_pypy_names_package_and_tags(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "nativeonly", "1.0", "cp39-cp39-manylinux2014_x86_64")
    make_wheel(wheels, "nativeonly", "1.0", "cp38-abi3-manylinux2014_x86_64")
    result = _build_against(tmp_path, served_pypy, session_cache, "nativeonly")
    assert result.code == 5
    assert "nativeonly" in result.stderr
    assert "cp39-cp39" in result.stderr and "cp38-abi3" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out" / "bundle.zip").exists()


PP80 = (
    "PyPy 8.0 (tag pp80), which pyfn cannot target yet: PyPy 8.0 needs glibc 2.28 and a "
    "runtime pyfn does not bundle"
)
NEXT_WHEEL = "nextonly-1.0-pp311-pypy311_pp80-manylinux_2_28_x86_64.whl"


def test_wheels_only_for_a_pypy_release_pyfn_cannot_target_say_so(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "nextonly", "1.0", "pp311-pypy311_pp80-manylinux_2_28_x86_64")
    result = _build_against(tmp_path, served_pypy, session_cache, "nextonly")
    assert result.code == 5, result.stderr
    assert "Requirement nextonly==1.0 has no wheel PyPy 3.9 can load" in result.stderr
    assert f"pp80 wheels are for {PP80}" in result.stderr
    assert "Use a release of nextonly with a pp73 wheel (PyPy 7.3)" in result.stderr
    assert not (tmp_path / "out" / "bundle.zip").exists()


def test_a_local_wheel_for_a_pypy_release_pyfn_cannot_target_says_so(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    (tmp_path / "wheels").mkdir()
    src = tmp_path / "fn"
    (src / "vendor").mkdir(parents=True)
    make_wheel(src / "vendor", "nextonly", "1.0", "pp311-pypy311_pp80-manylinux_2_28_x86_64")
    (src / "main.py").write_text("def fn(request):\n    return 'ok'\n")
    (src / "requirements.txt").write_text(f"./vendor/{NEXT_WHEEL}\n")
    with serve(index_routes(tmp_path / "wheels")) as base:
        args = _script_args(src, tmp_path / "out", served_pypy, f"{base}/simple/")
        result = pyfn(args, hermetic_env(session_cache))
    assert result.code == 5, result.stderr
    assert f"{NEXT_WHEEL} cannot be loaded by PyPy 3.9. it is built for {PP80}" in result.stderr
    assert "Use a pp73 wheel (PyPy 7.3) of nextonly or its sdist" in result.stderr


def test_a_vendored_extension_for_a_pypy_release_pyfn_cannot_target_is_named(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    source = next(Path("/usr/lib/pypy3.9").glob("_sqlite3_cffi.pypy39-pp73-*.so"), None)
    if source is None:
        pytest.fail("Debian's pypy3 is not installed (CI installs it)")
    src = _script_function(tmp_path)
    (src / "_fast.pypy311-pp80-x86_64-linux-gnu.so").write_bytes(source.read_bytes())
    out = tmp_path / "out"
    result = pyfn(
        _script_args(src, out, served_pypy, index_url, "--json"), hermetic_env(session_cache)
    )
    assert result.code == 0, result.stderr
    problems = json.loads(result.stdout)["native"]["problems"]
    assert problems == [
        {
            "path": "app/_fast.pypy311-pp80-x86_64-linux-gnu.so",
            "problem": f"built for {PP80}; use a pp73 wheel (PyPy 7.3) or the sdist",
        },
    ]


def test_requires_python_is_honoured_when_the_index_omits_it(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "modern", "1.0", "py3-none-any", requires_python=">=3.8")
    make_wheel(wheels, "modern", "2.0", "py3-none-any", requires_python=">=3.12")
    result = _build_against(tmp_path, served_pypy, session_cache, "modern", "--json")
    assert result.code == 0, result.stderr
    report = json.loads(result.stdout)
    modern = next(c for c in report["components"] if c["name"] == "modern")
    assert modern["version"] == "1.0"


def test_download_is_cached_and_verified(
    tmp_path: Path, served_pypy: Served, index_url: str
) -> None:
    """A fresh cache downloads once; a second build uses the cache, not the host."""
    cache = tmp_path / "cache"
    src = _script_function(tmp_path)
    env = hermetic_env(cache)
    args = _script_args(src, tmp_path / "out", served_pypy, index_url)
    path = served_pypy.url.split("127.0.0.1", 1)[1].split("/", 1)[1]
    before = served_pypy.routes.hits.count("/" + path)
    assert pyfn(args, env).code == 0
    assert pyfn(args, env).code == 0
    assert served_pypy.routes.hits.count("/" + path) == before + 1
    entries = list((cache / "archives").iterdir())
    assert [e.name for e in entries] == [served_pypy.sha256]
    with zipfile.ZipFile(io.BytesIO((tmp_path / "out" / "bundle.zip").read_bytes())) as zf:
        assert "app/main.py" in zf.namelist()


def test_dry_run_prints_the_plan_and_writes_nothing(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    out = tmp_path / "out"
    result = pyfn(
        _script_args(src, out, served_pypy, index_url, "--dry-run", "--json"),
        hermetic_env(session_cache),
    )
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    by_rule = {r["rule"]: r for r in plan["rules"]}
    assert by_rule["/lib/pypy*/idlelib/"]["files"] > 100
    assert plan["removed_bytes"] == sum(r["bytes"] for r in plan["rules"]) > 1_000_000
    assert not out.exists()
    text = pyfn(
        _script_args(src, out, served_pypy, index_url, "--dry-run"),
        hermetic_env(session_cache),
    )
    assert "built-in runtime rules:" in text.stdout and "nothing was written" in text.stdout
    assert not out.exists()


def test_trim_rules_limits_and_reincluded_runtime_files(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    (src / "notes.log").write_text("not shipped")
    (src / ".pyfnignore").write_text("*.log\n!pypy/lib/pypy3.9/lib2to3/\n")
    (src / "pyfn.toml").write_text('[budget]\ncompressed = "95MB"\n')
    out = tmp_path / "out"
    result = pyfn(
        _script_args(src, out, served_pypy, index_url, "--gen", "1"),
        hermetic_env(session_cache),
    )
    assert result.code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    limits = {item["name"]: item for item in report["limits"]}
    assert set(limits) == {
        "gen1 compressed sources",
        "gen1 uncompressed sources",
        "budget compressed",
    }
    assert limits["gen1 compressed sources"]["limit_bytes"] == 100_000_000
    assert limits["budget compressed"]["used_bytes"] == report["bundle"]["compressed_bytes"]
    assert all(item["ok"] for item in report["limits"])
    assert {t["source"] for t in report["trim"]} >= {"built-in runtime rules", ".pyfnignore"}
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = set(zf.namelist())
    assert "app/notes.log" not in names and "app/.pyfnignore" not in names
    assert any(n.startswith("pypy/lib/pypy3.9/lib2to3/") for n in names)
    assert not any(n.startswith("pypy/lib/pypy3.9/idlelib/") for n in names)


def test_over_budget_fails_names_the_limit_and_writes_nothing(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    out = tmp_path / "out"
    result = pyfn(
        _script_args(src, out, served_pypy, index_url, "--budget", "1MB"),
        hermetic_env(session_cache),
    )
    assert result.code == 9
    assert "exceeds the budget compressed limit of 1.0 MB" in result.stderr
    assert "largest components: runtime" in result.stderr and ".pyfnignore" in result.stderr
    assert not (out / "bundle.zip").exists() and not (out / "report.json").exists()


def test_build_refuses_credentials_unless_allowed(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    (src / "credentials.json").write_text(
        json.dumps(
            {
                "type": "service_account",
                "private_key": "-----BEGIN PRIVATE KEY-----\nx",
                "client_email": "ci@demo.iam.gserviceaccount.com",
            }
        )
    )
    out = tmp_path / "out"
    args = _script_args(src, out, served_pypy, index_url)
    refused = pyfn(args, hermetic_env(session_cache))
    assert refused.code == 11
    assert "app/credentials.json (Google service-account key" in refused.stderr
    assert "-----BEGIN" not in refused.stderr  # the key itself is never printed
    assert not (out / "bundle.zip").exists()
    allowed = pyfn([*args, "--allow-credentials"], hermetic_env(session_cache))
    assert allowed.code == 0, allowed.stderr
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        assert "app/credentials.json" in zf.namelist()


# --- hardening: hostile runtime archives, secrets in runtime URLs, one cache shared ---

SIGNATURE = "5ec7e7" * 100  # a signed URL's query is longer than a file name may be
SIGNED = f"?X-Goog-Algorithm=GOOG4-RSA-SHA256&X-Goog-Credential=robot%40p.iam&X-Goog-Signature={SIGNATURE}"  # noqa: E501


def test_two_cold_builds_sharing_a_cache_both_succeed(
    tmp_path: Path, served_pypy: Served, index_url: str
) -> None:
    """`pyfn build a & pyfn build b` on a cold cache, as a monorepo loop runs them."""
    import sys

    cache = tmp_path / "cache"
    env = hermetic_env(cache)
    procs = []
    for name in ("a", "b"):
        src = tmp_path / name
        src.mkdir()
        (src / "main.py").write_text(f"print('{name}')\n")
        args = _script_args(src, tmp_path / f"out-{name}", served_pypy, index_url)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "pyfn_action", *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
    for name in ("a", "b"):
        with zipfile.ZipFile(tmp_path / f"out-{name}" / "bundle.zip") as zf:
            assert zf.read("app/main.py") == f"print('{name}')\n".encode()
            assert "pypy/bin/pypy3.9" in zf.namelist()
    runtimes = sorted(p.name for p in (cache / "runtimes").iterdir())
    assert runtimes == [served_pypy.sha256, f"{served_pypy.sha256}.json"]  # no leftovers
    assert not list(cache.rglob("*.lock"))


def test_signed_runtime_url_is_fetched_and_never_recorded(
    tmp_path: Path, served_pypy: Served, index_url: str
) -> None:
    import dataclasses

    cache = tmp_path / "cache"  # cold: the runtime is fetched from the signed URL
    signed = dataclasses.replace(served_pypy, url=served_pypy.url + SIGNED)
    out = tmp_path / "out"
    result = pyfn(
        _script_args(_script_function(tmp_path), out, signed, index_url), hermetic_env(cache)
    )
    assert result.code == 0, result.stderr
    assert SIGNATURE not in result.stdout + result.stderr
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        manifest = zf.read("pyfn/manifest.json").decode()
    report = (out / "report.json").read_text()
    for text in (manifest, report):
        assert SIGNATURE not in text and "X-Goog" not in text
    assert json.loads(manifest)["runtime"]["source"] == served_pypy.url
    assert json.loads(report)["runtime"]["source"] == served_pypy.url
    assert [p.name for p in (cache / "archives" / served_pypy.sha256).iterdir()] == [
        served_pypy.url.rsplit("/", 1)[1]
    ]


def test_hostile_runtime_archive_is_refused_and_leaves_nothing(
    tmp_path: Path, index_url: str
) -> None:
    """a -> ., a/a/a/b -> ../../.., a/a/a/b/ESCAPED: would land at the cache's root."""
    import hashlib
    import tarfile

    from support.tarballs import TOP, add_file, add_link

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        add_file(tar, f"{TOP}/bin/pypy3.9", b"#!/bin/sh\n", 0o755)
        add_link(tar, f"{TOP}/a", ".")
        add_link(tar, f"{TOP}/a/a/a/b", "../../..")
        add_file(tar, f"{TOP}/a/a/a/b/ESCAPED", b"pwned")
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    src = _script_function(tmp_path)
    cache = tmp_path / "cache"
    args = [
        "build",
        str(src),
        "--out",
        str(tmp_path / "out"),
        "--pypy-archive",
        str(archive),
        "--pypy-sha256",
        sha,
        "--index-url",
        index_url,
        "--signature",
        "script",
        "--script",
        "main.py",
    ]
    result = pyfn(args, hermetic_env(cache))
    assert result.code == 4, result.stderr
    assert "Refusing" in result.stderr and "a/a/a/b" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("ESCAPED"))
    assert not [p for p in cache.rglob("*") if not p.is_dir()]  # no archive, tree or lock
    assert not (tmp_path / "out" / "bundle.zip").exists()


def test_runtime_url_credentials_never_reach_the_output(tmp_path: Path, index_url: str) -> None:
    from support.servers import Routes

    with serve(Routes()) as base:
        pass  # closed again: nothing listens there
    url = base.replace("://", "://robot:s3cr3t-p4ss@") + "/pypy3.9-v7.3.11-linux64.tar.gz" + SIGNED
    src = _script_function(tmp_path)
    args = [
        "build",
        str(src),
        "--out",
        str(tmp_path / "out"),
        "--pypy-archive",
        url,
        "--pypy-sha256",
        "1" * 64,
        "--index-url",
        index_url,
        "--signature",
        "script",
        "--script",
        "main.py",
    ]
    result = pyfn(args, hermetic_env(tmp_path / "cache"))
    assert result.code == 4, result.stderr
    assert f"{base}/pypy3.9-v7.3.11-linux64.tar.gz" in result.stderr
    for secret in ("s3cr3t-p4ss", SIGNATURE, "X-Goog"):
        assert secret not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def _function_with_requirement(tmp_path: Path) -> Path:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("import idna\nprint(idna.encode('example.com'))\n")
    (src / "requirements.txt").write_text("idna\n")
    return src


def test_gcloudignore_site_and_pypy_rules_mean_the_functions_own_folders(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _function_with_requirement(tmp_path)
    for name in ("site/helper.py", "pypy/notes.txt", "lib/site/deep.py", "site.py"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text("# the function's own\n")
    # As gcloud reads it: any folder named site, the top folder named pypy.
    (src / ".gcloudignore").write_text("site/\n/pypy/\n")
    out = tmp_path / "out"
    result = pyfn(_script_args(src, out, served_pypy, index_url), hermetic_env(session_cache))
    assert result.code == 0, result.stderr
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = set(zf.namelist())
    assert not any(n.startswith(("app/site/", "app/pypy/", "app/lib/site/")) for n in names)
    assert "app/site.py" in names  # a file named site is not a folder
    assert "site/idna/__init__.py" in names and "pypy/bin/pypy3.9" in names


def test_index_url_credentials_never_reach_debug_output(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    src = _function_with_requirement(tmp_path)
    secret_index = index_url.replace("://", "://robot:s3cr3t-1ndex@")
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG):
        result = pyfn(
            _script_args(src, out, served_pypy, secret_index, "--debug", "--refresh"),
            hermetic_env(session_cache),
        )
    assert result.code == 0, result.stderr
    logged = caplog.text
    assert "s3cr3t-1ndex" not in logged + result.stderr + result.stdout
    assert "running" in logged and "robot:***@" in logged  # the pip command lines are there
    assert "s3cr3t-1ndex" not in (out / "report.json").read_text()


# --- hardening: one credentials scanner (archives too), sources that are not files ----

_SA_KEY = json.dumps(
    {
        "type": "service_account",
        "client_email": "ci@demo.iam.gserviceaccount.com",
        "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n",
    }
).encode()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _nothing_written(out: Path) -> None:
    assert not (out / "bundle.zip").exists() and not (out / "report.json").exists()
    assert not list(out.glob(".pyfn-build-*")) if out.exists() else True


@pytest.mark.timeout(300)
def test_fifo_and_socket_in_the_source_are_skipped_not_waited_on(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import socket

    src = _script_function(tmp_path)
    os.mkfifo(src / "events.fifo")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(src / "dev.sock"))
    out = tmp_path / "out"
    try:
        result = pyfn(_script_args(src, out, served_pypy, index_url), hermetic_env(session_cache))
    finally:
        sock.close()
    assert result.code == 0, result.stderr
    assert "events.fifo is a FIFO (named pipe), not a regular file: not bundled" in caplog.text
    assert "dev.sock is a socket, not a regular file: not bundled" in caplog.text
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = zf.namelist()
    assert "app/events.fifo" not in names and "app/dev.sock" not in names
    assert "app/main.py" in names


def test_undecodable_file_name_is_refused_before_anything_is_written(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    Path(os.fsdecode(bytes(src) + b"/r\xe9sum\xe9.txt")).write_text("x")
    out = tmp_path / "out"
    result = pyfn(_script_args(src, out, served_pypy, index_url), hermetic_env(session_cache))
    assert result.code == 6, result.stderr
    assert "r\\xe9sum\\xe9.txt" in result.stderr and "not valid UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
    _nothing_written(out)


def test_the_credentials_file_of_the_environment_is_never_bundled(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = _script_function(tmp_path)
    creds = src / "conf" / "ci.json"  # nothing the scanner would call a key
    creds.parent.mkdir()
    creds.write_text('{"kind": "something only the deployer uses"}')
    os.symlink("conf/ci.json", src / "settings.json")
    out = tmp_path / "out"
    env = hermetic_env(session_cache, GOOGLE_APPLICATION_CREDENTIALS=str(creds))
    result = pyfn(_script_args(src, out, served_pypy, index_url), env)
    assert result.code == 0, result.stderr
    assert "conf/ci.json is the credentials file named in the environment: never bundled" in (
        caplog.text
    )
    assert "settings.json is the credentials file" in caplog.text
    with zipfile.ZipFile(out / "bundle.zip") as zf:
        names = zf.namelist()
        assert not any(b"only the deployer" in zf.read(n) for n in names)
    assert "app/conf/ci.json" not in names and "app/settings.json" not in names


def test_build_refuses_a_key_two_archives_deep(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    (src / "vendor").mkdir()
    (src / "vendor" / "libs.zip").write_bytes(
        _zip_bytes({"inner.zip": _zip_bytes({"sa.json": _SA_KEY})})
    )
    out = tmp_path / "out"
    args = _script_args(src, out, served_pypy, index_url)
    refused = pyfn(args, hermetic_env(session_cache))
    assert refused.code == 11, refused.stderr
    assert "app/vendor/libs.zip!inner.zip!sa.json (Google service-account key" in refused.stderr
    assert "MIIEvQ" not in refused.stderr
    _nothing_written(out)
    # The build flow both adapters run: its refusal points at the file in the source, and
    # at no line (a line of a member is not a line of the zip), for the Action's annotation.
    env = hermetic_env(session_cache)
    flags = {
        "out": out,
        "pypy_archive": served_pypy.url,
        "pypy_sha256": served_pypy.sha256,
        "index_url": index_url,
        "signature": "script",
        "script": "main.py",
    }
    with pytest.raises(CredentialsFound) as refusal:
        build_function(resolve(src, env=env, flags=flags), env)
    assert "app/vendor/libs.zip!inner.zip!sa.json" in refusal.value.message
    assert "MIIEvQ" not in refusal.value.message
    findings = refusal.value.findings
    assert any("sa.json: Google service-account key" in f.message for f in findings)
    assert {(f.kind, f.file, f.line) for f in findings} == {
        ("credentials", src / "vendor" / "libs.zip", None)
    }
    _nothing_written(out)
    allowed = pyfn([*args, "--allow-credentials"], hermetic_env(session_cache))
    assert allowed.code == 0, allowed.stderr


def test_build_says_what_it_could_not_scan(
    tmp_path: Path,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = _script_function(tmp_path)
    (src / "b.txt").write_text("hidden")
    subprocess.run(
        ["7z", "a", "-tzip", "-pS3cret", str(src / "data.zip"), str(src / "b.txt")],
        check=True,
        capture_output=True,
    )
    (src / "b.txt").unlink()
    out = tmp_path / "out"
    result = pyfn(_script_args(src, out, served_pypy, index_url), hermetic_env(session_cache))
    assert result.code == 0, result.stderr
    assert "app/data.zip!b.txt: not scanned for keys: encrypted, so it cannot be read" in (
        caplog.text
    )
    assert "Traceback" not in result.stderr
