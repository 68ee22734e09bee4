"""What a requirement's build script sees of the environment: what it needs, and never a
credential. The build script here writes its whole environment to a file outside the
bundle, and the environment it is run from holds the job's token, the OIDC request
variables, Google credentials and other Action inputs."""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from conftest import WHEELHOUSE, Served, build_args, hermetic_env, pyfn
from support.servers import index_routes, serve

from pyfn_action.hooks.check_wheels import main as check_wheels
from pyfn_action.runtime.pack import PackResult
from pyfn_action.runtime.pypy import RuntimeRequest, resolve_runtime

pytestmark = pytest.mark.e2e

SECRETS = {
    "INPUT_GITHUB-TOKEN": "ghs_sentinel-input-token",
    "GITHUB_TOKEN": "ghs_sentinel-github-token",
    "INPUT_SECRETS": "sentinel-input-secrets",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "sentinel-oidc-request-token",
    "ACTIONS_ID_TOKEN_REQUEST_URL": "https://sentinel-oidc.invalid/token",
    "ACTIONS_RUNTIME_TOKEN": "sentinel-runtime-token",
    "ACTIONS_CACHE_URL": "https://sentinel-cache.invalid/",
    "GOOGLE_GHA_CREDS_PATH": "/sentinel/gha-creds-1.json",
    "CLOUDSDK_AUTH_ACCESS_TOKEN": "sentinel-gcloud-access-token",
    "AWS_SECRET_ACCESS_KEY": "sentinel-aws-secret",
}


def _envspy(directory: Path, seen: Path) -> dict[str, str]:
    """A project whose build script appends the environment it runs in to ``seen``."""
    files = {
        "pyproject.toml": '[build-system]\nrequires = ["setuptools"]\n'
        'build-backend = "setuptools.build_meta"\n',
        "setup.py": "import json, os, sys\nfrom setuptools import setup\n"
        f"with open({str(seen)!r}, 'a') as f:\n"
        "    seen = {'python': sys.implementation.name, 'environ': dict(os.environ)}\n"
        "    f.write(json.dumps(seen) + '\\n')\n"
        "setup(name='envspy', version='1.0', py_modules=['envspy'])\n",
        "envspy.py": "SPY = True\n",
        "PKG-INFO": "Metadata-Version: 2.1\nName: envspy\nVersion: 1.0\n",
    }
    directory.mkdir(parents=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return files


def _credentials(tmp_path: Path) -> dict[str, str]:
    """The variables a job that deploys would hold; the key file lies outside the source."""
    key = tmp_path / "gha-creds-0123.json"
    key.write_text('{"type": "external_account", "audience": "sentinel-audience"}')
    return {**SECRETS, "GOOGLE_APPLICATION_CREDENTIALS": str(key)}


def _judge(seen: Path, credentials: dict[str, str], kept: dict[str, str]) -> set[str]:
    """Every run of the build script saw what it needs and not one credential; the
    Pythons it ran in."""
    runs = [json.loads(line) for line in seen.read_text().splitlines()]
    assert runs, "the build script never ran"
    for run in runs:
        environment = run["environ"]
        leaked = sorted(set(environment) & set(credentials))
        assert not leaked, f"the build script saw {leaked}"
        text = json.dumps(environment)
        assert not [v for v in credentials.values() if v in text]
        assert environment.get("PATH") and environment.get("HOME")
        for name, value in kept.items():
            assert environment.get(name) == value, name
    return {run["python"] for run in runs}


def test_a_local_requirement_is_built_without_any_credential(
    tmp_path: Path, served_pypy: Served, index_url: str
) -> None:
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("import envspy\nprint(envspy.SPY)\n")
    seen = tmp_path / "seen.jsonl"
    _envspy(src / "envspy", seen)
    (src / "requirements.txt").write_text(f"{src / 'envspy'}\n")
    credentials = _credentials(tmp_path)
    kept = {"LC_ALL": "C.UTF-8", "TZ": "UTC", "SOURCE_DATE_EPOCH": "1700000000"}
    env = hermetic_env(tmp_path / "cache", **credentials, **kept)
    script = ("--signature", "script", "--script", "main.py")
    result = pyfn(build_args(src, tmp_path / "out", served_pypy, index_url, *script), env)
    assert result.code == 0, result.stderr
    kept["PIP_CONFIG_FILE"] = env["PIP_CONFIG_FILE"]
    assert _judge(seen, credentials, kept) == {"pypy"}  # built by the target PyPy


def test_the_wheels_hook_builds_an_sdist_without_any_credential(
    tmp_path: Path, pypy_archive: PackResult, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = tmp_path / "seen.jsonl"
    files = _envspy(tmp_path / "envspy-1.0", seen)
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
    credentials = _credentials(tmp_path)
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
    assert _judge(seen, credentials, {"PIP_CONFIG_FILE": "/dev/null"}) == {"cpython", "pypy"}
