"""What a requirement's build script sees of the environment: what it needs, and never a
credential. The build script here writes its whole environment to a file outside the
bundle, and the environment it is run from holds the job's token, the OIDC request
variables, Google credentials and other Action inputs."""

from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import WHEELHOUSE, Served, build_args, hermetic_env, pyfn
from support.envspy import envspy, job_credentials, judge
from support.servers import index_routes, serve

from pyfn_action.hooks.native_wheels import main as check_wheels
from pyfn_action.runtime.pack import PackResult
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime

pytestmark = pytest.mark.e2e


def test_a_local_requirement_is_built_without_any_credential(
    tmp_path: Path, served_pypy: Served, index_url: str
) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("import envspy\nprint(envspy.SPY)\n")
    seen = tmp_path / "seen.jsonl"
    envspy(src / "envspy", seen)
    (src / "requirements.txt").write_text(f"{src / 'envspy'}\n")
    credentials = job_credentials(tmp_path)
    kept = {"LC_ALL": "C.UTF-8", "TZ": "UTC", "SOURCE_DATE_EPOCH": "1700000000"}
    env = hermetic_env(tmp_path / "cache", **credentials, **kept)
    script = ("--signature", "script", "--script", "main.py")
    result = pyfn(build_args(src, tmp_path / "out", served_pypy, index_url, *script), env)
    assert result.code == 0, result.stderr
    kept["PIP_CONFIG_FILE"] = env["PIP_CONFIG_FILE"]
    assert judge(seen, credentials, kept) == {"pypy"}  # built by the target PyPy


def test_the_wheels_hook_builds_an_sdist_without_any_credential(
    tmp_path: Path, pypy_archive: PackResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.jsonl"
    files = envspy(tmp_path / "envspy-1.0", seen)
    index = tmp_path / "index"
    index.mkdir()
    with tarfile.open(index / "envspy-1.0.tar.gz", "w:gz") as tar:
        for name in files:
            tar.add(tmp_path / "envspy-1.0" / name, f"envspy-1.0/{name}")
    for wheel in WHEELHOUSE.glob("setuptools-*.whl"):
        shutil.copy(wheel, index)
    cache = tmp_path / "cache"
    request = RuntimeRequest(
        runtime="pypy3.9", archive=str(pypy_archive.path), sha256=pypy_archive.sha256
    )
    resolve_runtime(request, cache)  # what any pyfn build leaves in the cache
    credentials = job_credentials(tmp_path)
    for name in [n for n in os.environ if n.startswith("PIP_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    for name, value in credentials.items():
        monkeypatch.setenv(name, value)
    req = tmp_path / "requirements.txt"
    req.write_text("envspy==1.0\n")
    with serve(index_routes(index)) as base:
        args = ["--runtime", "pypy3.9", "--index-url", f"{base}/simple/", "--cache-dir", str(cache)]
        code = check_wheels([str(req), *args])
    assert code == 0
    # fetched (and its metadata read) by this Python's pip, built by the target PyPy
    assert judge(seen, credentials, {"PIP_CONFIG_FILE": "/dev/null"}) == {"cpython", "pypy"}
