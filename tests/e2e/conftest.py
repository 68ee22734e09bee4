"""End-to-end fixtures: a loopback download host for the packed PyPy, a loopback
package index, and a hermetic environment for pip."""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.action_run import TOKEN, Action
from support.functions_api import FakeFunctions, fake_functions
from support.gcs import Proxy, emulator, object_meta, proxy
from support.github_api import FakeGitHub, fake_github
from support.oauth import service_account_file as make_key
from support.repos import GIT_ENV, NAME, OWNER
from support.servers import (
    Routes,
    free_port,
    index_routes,
    pyfn_serve,
    serve,
    stop_process,
    wait_listening,
)

from pyfn_action.cli import run
from pyfn_action.cloud.auth import PROJECT_VARIABLES
from pyfn_action.github import comments
from pyfn_action.runtime.pack import PackResult

WHEELHOUSE = Path(__file__).parents[1] / ".wheelhouse"
REPO = Path(__file__).parents[2]


@dataclass(frozen=True)
class Served:
    url: str
    sha256: str
    routes: Routes


@pytest.fixture(scope="session")
def served_pypy(pypy_archive: PackResult) -> Iterator[Served]:
    """The packed PyPy on a loopback download host, as the official one would serve it."""
    routes = Routes()
    routes.files[f"/pypy/{pypy_archive.path.name}"] = pypy_archive.path.read_bytes()
    with serve(routes) as base:
        yield Served(f"{base}/pypy/{pypy_archive.path.name}", pypy_archive.sha256, routes)


@pytest.fixture(scope="session")
def index_url() -> Iterator[str]:
    """tests/.wheelhouse as a package index on loopback (no Requires-Python published)."""
    if not WHEELHOUSE.is_dir() or not any(WHEELHOUSE.glob("*.whl")):
        pytest.fail("tests/.wheelhouse is empty: run `python tests/prepare.py` (CI does)")
    with serve(index_routes(WHEELHOUSE)) as base:
        yield f"{base}/simple/"


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pyfn-cache")


def hermetic_env(cache: Path, **extra: str) -> dict[str, str]:
    """This process's environment without pip settings that would reach beyond loopback,
    on a fixed day of the platform's calendar."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYFN_"))}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INPUT="1",
        PYFN_CACHE_DIR=str(cache),
        SOURCE_DATE_EPOCH="1700000000",
        # The platform's calendar is read on a fixed day, so that no test changes its
        # answer when a runtime reaches a date (tests of the calendar set their own).
        PYFN_TODAY="2026-12-07",
    )
    env.update(extra)
    return env


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


def build_args(
    src: Path, out: Path, served: Served, index_url: str, *more: str, command: str = "build"
) -> list[str]:
    """``pyfn build`` (or deploy) of src into out, with the served PyPy and index."""
    return [
        command,
        str(src),
        "--out",
        str(out),
        "--pypy-archive",
        served.url,
        "--pypy-sha256",
        served.sha256,
        "--index-url",
        index_url,
        *more,
    ]


def pyfn(args: Sequence[str], env: dict[str, str]) -> Outcome:
    """Run the pyfn command in this process, as a user would from a shell."""
    out, err = io.StringIO(), io.StringIO()
    code = run(list(args), env, out, err)
    return Outcome(code, out.getvalue(), err.getvalue())


# --- Google Cloud on loopback: the storage emulator and the Cloud Functions fake ------

BUCKET = "pyfn-stage"
PROJECT = "demo-proj"


@dataclass
class Cloud:
    proxy: Proxy
    fake: FakeFunctions
    env: dict[str, str]
    served: Served
    index_url: str
    key: Path

    def deploy(self, src: Path, *more: str, env: dict[str, str] | None = None) -> Outcome:
        args = build_args(
            src,
            src.parent / f"dist-{src.name}",
            self.served,
            self.index_url,
            "--region",
            "asia-northeast1",
            "--bucket",
            BUCKET,
            *more,
            command="deploy",
        )
        return pyfn(args, env or self.env)

    def uploads(self) -> int:
        return sum(1 for m, p, s in self.proxy.log if m == "POST" and "/upload/" in p and s == 200)


@pytest.fixture(scope="module")
def gcs() -> Iterator[str]:
    """gcp-storage-emulator on loopback, with the staging bucket."""
    with emulator(buckets=(BUCKET,)) as base:
        yield base


@pytest.fixture
def gcs_proxy(gcs: str) -> Iterator[Proxy]:
    """The emulator behind the proxy that judges preconditions and injects faults."""
    with proxy(gcs) as p:
        yield p


@pytest.fixture
def cloud(
    gcs: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
) -> Iterator[Cloud]:
    def source_exists(bucket: str, name: str, generation: str | None) -> bool:
        meta = object_meta(gcs, bucket, name)
        return meta is not None and (generation is None or str(meta["generation"]) == generation)

    with proxy(gcs) as p, fake_functions(project=PROJECT, source_exists=source_exists) as fake:
        key = make_key(tmp_path / "deployer.json", PROJECT, f"{fake.base}/token")
        google = {
            "GOOGLE_APPLICATION_CREDENTIALS": str(key),
            "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"),  # no gcloud credentials of the machine
            "NO_GCE_CHECK": "True",  # never ask a metadata server
            "GCE_METADATA_HOST": "127.0.0.1:9",
        }
        for name, value in google.items():
            monkeypatch.setenv(name, value)
        env = hermetic_env(
            session_cache,
            STORAGE_EMULATOR_HOST=p.base,
            PYFN_FUNCTIONS_ENDPOINT=fake.base,
            PYFN_RUN_ENDPOINT=fake.run_base,
            **google,
        )
        yield Cloud(p, fake, env, served_pypy, index_url, key)


# --- the examples, built and served as a user does ------------------------------------

EXAMPLES = REPO / "examples"
TEST_CACHE = REPO / "tests" / ".cache"


@dataclass(frozen=True)
class Built:
    """An example built with ``pyfn build``: its output directory, bundle and report."""

    out: Path
    report: dict[str, Any]

    @property
    def bundle(self) -> Path:
        return self.out / "bundle.zip"


@pytest.fixture(scope="session")
def build_example(
    tmp_path_factory: pytest.TempPathFactory,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
) -> Callable[[str], Built]:
    """``build("beacon")``: examples/beacon built once per test run with ``pyfn build``,
    shared by the run's pytest-xdist workers (the first to ask builds it, under a lock)."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

    def build(name: str) -> Built:
        out = shared / f"example-{name.replace('/', '-')}"
        with open(shared / f"{out.name}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
            if not (out / "report.json").is_file():
                part = out.with_name(f"{out.name}.part")
                shutil.rmtree(part, ignore_errors=True)
                args = build_args(EXAMPLES / name, part, served_pypy, index_url)
                result = pyfn(args, hermetic_env(session_cache))
                assert result.code == 0, f"examples/{name} does not build:\n{result.stderr}"
                part.rename(out)
        return Built(out, json.loads((out / "report.json").read_text()))

    return build


@pytest.fixture(scope="session")
def serve_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache for ``pyfn serve`` sharing the tests' installed Node Functions Framework."""
    cache = tmp_path_factory.mktemp("serve-cache")
    (cache / "node-functions-framework").symlink_to(TEST_CACHE / "node-functions-framework")
    return cache


@dataclass
class Running:
    """A bundle served by ``pyfn serve`` on loopback."""

    base: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serving(
    bundle: Path, cache: Path, log: Path, env: Mapping[str, str] | None = None
) -> Iterator[Running]:
    """``pyfn serve --bundle`` on a free loopback port, until the block ends; waits for
    the first answer (any status) before it yields."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYFN_")}
    child_env.update(PYFN_CACHE_DIR=str(cache), **(env or {}))
    port = free_port()
    with log.open("wb") as out:
        process = pyfn_serve(bundle, port, child_env, stdout=out, stderr=subprocess.STDOUT)
        running = Running(f"http://127.0.0.1:{port}", log)
        try:
            wait_listening(port, process, 180, running.output)
            yield running
        finally:
            stop_process(process, grace=30)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def call(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Answer:
    """One HTTP request over loopback; any status is an answer, never an exception."""
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, dict(error.headers), error.read())


# --- the Action, run in this process against the GitHub fake ------------------------


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github(token=TOKEN) as fake:
        yield fake
    assert fake.violations == []


@pytest.fixture
def action(
    tmp_path: Path,
    github: FakeGitHub,
    served_pypy: Served,
    index_url: str,
    session_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Action:
    # A job's comment is read again a moment after it is written (other jobs may share
    # it): a twentieth of a second here, where no other job writes.
    monkeypatch.setattr(comments, "SETTLE_SECONDS", 0.05)
    env = hermetic_env(
        session_cache,
        PYFN_PYPY_ARCHIVE=served_pypy.url,
        PYFN_PYPY_SHA256=served_pypy.sha256,
        PYFN_INDEX_URL=index_url,
        GITHUB_API_URL=github.base,
        GITHUB_REPOSITORY=f"{OWNER}/{NAME}",
        GITHUB_EVENT_NAME="pull_request",
        RUNNER_OS="Linux",
        RUNNER_TEMP=str(tmp_path / "runner-temp"),
        **{"INPUT_GITHUB-TOKEN": TOKEN},
        **GIT_ENV,
    )
    for name in PROJECT_VARIABLES:  # no project but the one a test gives
        env.pop(name, None)
    return Action(env, github, tmp_path)
