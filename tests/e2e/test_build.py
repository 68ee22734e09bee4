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
from conftest import REPO, Outcome, Served, hermetic_env, pyfn
from support.servers import index_routes, serve
from support.wheels import make_wheel

pytestmark = pytest.mark.e2e

HELLO = REPO / "examples" / "hello"


def build_args(src: Path, out: Path, served: Served, index_url: str, *more: str) -> list[str]:
    return [
        "build", str(src), "--out", str(out),
        "--pypy-archive", served.url, "--pypy-sha256", served.sha256,
        "--index-url", index_url, *more,
    ]  # fmt: skip


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
    for required in ("index.js", "package.json", "app/main.py", "pypy/bin/pypy3.9",
                     "pypy/bin/libpypy3.9-c.so", "pyfn/manifest.json"):  # fmt: skip
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
        "entry_point": "hello", "gen": 2, "name": "hello", "script": None,
        "signature": "http", "stdin": "body",
    }  # fmt: skip
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
    return build_args(src, out, served, index_url, "--signature", "script",
                      "--script", "main.py", *more)  # fmt: skip


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
    )  # fmt: skip
    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    by_rule = {r["rule"]: r for r in plan["rules"]}
    assert by_rule["/lib/pypy*/idlelib/"]["files"] > 100
    assert plan["removed_bytes"] == sum(r["bytes"] for r in plan["rules"]) > 1_000_000
    assert not out.exists()
    text = pyfn(
        _script_args(src, out, served_pypy, index_url, "--dry-run"),
        hermetic_env(session_cache),
    )  # fmt: skip
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
    )  # fmt: skip
    assert result.code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    limits = {item["name"]: item for item in report["limits"]}
    assert set(limits) == {
        "gen1 compressed sources", "gen1 uncompressed sources", "budget compressed",
    }  # fmt: skip
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
    )  # fmt: skip
    assert result.code == 9
    assert "exceeds the budget compressed limit of 1.0 MB" in result.stderr
    assert "largest components: runtime" in result.stderr and ".pyfnignore" in result.stderr
    assert not (out / "bundle.zip").exists() and not (out / "report.json").exists()


def test_build_refuses_credentials_unless_allowed(
    tmp_path: Path, served_pypy: Served, index_url: str, session_cache: Path
) -> None:
    src = _script_function(tmp_path)
    (src / "credentials.json").write_text(
        json.dumps({"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\nx",
                    "client_email": "ci@demo.iam.gserviceaccount.com"})
    )  # fmt: skip
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
