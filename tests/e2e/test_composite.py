"""action.yml's own steps, run as the runner runs a composite action: the install from
$GITHUB_ACTION_PATH (a copy of this checkout, with no package index), the env mapping,
the cache step and the outputs. setup-python and actions/cache are stood in for."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, Served, hermetic_env
from support.composite import CompositeRun, StepCall, run_composite
from support.github_api import FakeGitHub, fake_github
from support.repos import GIT_ENV, NAME, OWNER, PR, git, pull_request_event, repository
from support.servers import index_routes, serve

from pyfn_action import __version__
from pyfn_action.report import combined

pytestmark = pytest.mark.e2e
TOKEN = "ghs_composite-test-token"  # noqa: S105 - the fake's token
LOCKHOUSE = REPO / "tests" / ".lockhouse"
WORKFLOW, JOB = "pyfn", "size"


@pytest.fixture(scope="module")
def action_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Action as `uses:` fetches it: this checkout's files, and nothing built."""
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=REPO,
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .split("\0")
    )
    root = tmp_path_factory.mktemp("pyfn-action")
    for name in filter(None, files):
        if (REPO / name).is_file() and not name.startswith("tests/"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return root


@pytest.fixture(scope="module")
def lockhouse_index() -> Iterator[str]:
    """The files of the Action's lock as a package index on loopback: the install
    step's index (``PIP_INDEX_URL``, which the step hands to uv too)."""
    if not any(LOCKHOUSE.glob("*.whl")):
        pytest.fail("tests/.lockhouse is empty: run `python tests/prepare.py` (CI does)")
    with serve(index_routes(LOCKHOUSE)) as base:
        yield f"{base}/simple/"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github(token=TOKEN) as fake:
        yield fake
    assert fake.violations == []


class Cache:
    """actions/cache, standing in: records what it was asked to keep."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []

    def __call__(self, call: StepCall) -> dict[str, str]:
        self.calls.append(call.with_)
        return {"cache-hit": "false"}


class Reports:
    """actions/cache/save and actions/cache/restore, standing in: directories kept by key
    (and by path, which the real cache's version includes), restored only on that key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.saved: dict[str, tuple[str, Path]] = {}
        self.restores: list[dict[str, str]] = []

    def save(self, call: StepCall) -> dict[str, str]:
        key, path = call.with_["key"], call.with_["path"]
        kept = self.root / f"kept-{len(self.saved)}"
        shutil.copytree(path, kept)
        self.saved[key] = (path, kept)
        return {}

    def restore(self, call: StepCall) -> dict[str, str]:
        self.restores.append(call.with_)
        key, path = call.with_["key"], call.with_["path"]
        found = self.saved.get(key)
        if found is None or found[0] != path:
            return {"cache-hit": "false"}
        shutil.copytree(found[1], path, dirs_exist_ok=True)
        return {"cache-hit": "true", "cache-matched-key": key}


def build_env(cache: Path, pypy: Served, index_url: str, pip_index: str) -> dict[str, str]:
    """What a job that builds runs with: the runtime and index served here, pyfn's own
    dependencies from the loopback index, git's identity."""
    return hermetic_env(
        cache,
        PYFN_PYPY_ARCHIVE=pypy.url,
        PYFN_PYPY_SHA256=pypy.sha256,
        PYFN_INDEX_URL=index_url,
        PIP_INDEX_URL=pip_index,
        **GIT_ENV,
    )


def _files_of(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under ``root``, with its size and change time."""
    return {
        str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns)
        for p in root.rglob("*")
    }


def pyfn_cache(cache: Cache) -> list[dict[str, str]]:
    """The calls for pyfn's cache (not for pyfn's own environment, restored first)."""
    return [c for c in cache.calls if not c["key"].startswith("pyfn-env-")]


def setup_python(call: StepCall) -> dict[str, str]:
    assert call.with_ == {"python-version": "3.12", "update-environment": "false"}
    return {
        "python-path": getattr(sys, "_base_executable", sys.executable),
        "python-version": ".".join(map(str, sys.version_info[:3])),
    }


def composite(
    action_dir: Path,
    workdir: Path,
    github: FakeGitHub,
    event: Path,
    env: dict[str, str],
    stand_in: Cache,
    runner_os: str | None = None,
    reports: Reports | None = None,
    context: dict[str, str] | None = None,
    **inputs: str,
) -> CompositeRun:
    kept = reports or Reports(workdir.parent)
    return run_composite(
        action_dir,
        inputs=inputs,
        github={
            "token": TOKEN,
            "event_name": "pull_request",
            "event_path": str(event),
            "repository": f"{OWNER}/{NAME}",
            "api_url": github.base,
            **(context or {}),
        },
        env={**env, "GITHUB_API_URL": github.base},
        uses={
            "actions/setup-python": setup_python,
            "actions/cache": stand_in,
            "actions/cache/restore": kept.restore,
            "actions/cache/save": kept.save,
        },
        workdir=workdir,
        timeout=900,
        temp_dir=workdir.parent / "runner",
        runner_os=runner_os,
    )


def test_the_composite_installs_pyfn_builds_comments_and_sets_outputs(
    action_dir: Path,
    github: FakeGitHub,
    served_pypy: Served,
    index_url: str,
    lockhouse_index: str,
    session_cache: Path,
    tmp_path: Path,
) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 20_000})
    env = build_env(session_cache, served_pypy, index_url, lockhouse_index)
    context = {"workflow": WORKFLOW, "job": JOB}
    untouched = _files_of(action_dir)
    # First the push of main that the pull request is based on: it keeps the reports.
    reports = Reports(tmp_path)
    push = tmp_path / "push.json"
    push.write_text(
        json.dumps(
            {
                "ref": "refs/heads/main",
                "after": repo.base,
                "repository": {"full_name": f"{OWNER}/{NAME}", "default_branch": "main"},
            }
        )
    )
    git(repo.root, "checkout", "-q", repo.base)
    pushed = composite(
        action_dir,
        repo.root,
        github,
        push,
        env,
        Cache(),
        reports=reports,
        context={**context, "event_name": "push", "sha": repo.base, "ref": "refs/heads/main"},
        source="functions/hello",
        budget="200MB",
    )
    assert pushed.exit_code == 0, [
        (s.name, s.stdout[-3000:], s.stderr[-3000:]) for s in pushed.steps if s.exit_code
    ]
    [key] = reports.saved
    assert key.startswith(f"pyfn-reports-v1-{repo.base}-")
    assert pushed.step("inputs").outputs["reports-save-key"] == key
    assert reports.restores == [] and github.comments(OWNER, NAME, PR) == []  # a push: neither
    git(repo.root, "checkout", "-q", repo.head)

    event = pull_request_event(repo, tmp_path / "event.json")
    cache = Cache()
    run = composite(
        action_dir,
        repo.root,
        github,
        event,
        env,
        cache,
        reports=reports,
        context=context,
        source="functions/hello",
        budget="200MB",
    )
    failed = [s for s in run.steps if s.exit_code]
    assert run.exit_code == 0, [(s.name, s.stdout[-3000:], s.stderr[-3000:]) for s in failed]

    assert _files_of(action_dir) == untouched  # nothing built, compiled or cached there
    assert "pyfn's environment restored from the cache" in run.step("install").stdout
    assert pushed.step("install").stdout == ""  # the push installed it: quietly
    install = run.step("install")
    python = install.outputs["python"]
    assert python.startswith(str(tmp_path / "runner")) and Path(python).is_file()
    [environment, kept] = cache.calls  # pyfn's own environment, then pyfn's cache
    assert environment["key"].startswith(f"pyfn-env-Linux-X64-py{sys.version_info[0]}.")
    assert environment["path"] == str(tmp_path / "runner" / "runner-temp" / "pyfn-action-venv")
    assert kept["key"].startswith(f"pyfn-{__version__}-Linux-")
    assert len(kept["restore-keys"].splitlines()) == 2
    assert kept["path"] == str(session_cache)
    main = run.step("pyfn")
    assert main.env["INPUT_GITHUB-TOKEN"] == TOKEN  # the input's default, ${{ github.token }}
    assert main.env["INPUT_BUDGET"] == "200MB" and main.env["INPUT_DEPLOY"] == "false"

    outputs = run.outputs
    assert Path(outputs["bundle"]) == repo.root / "dist" / "bundle.zip"
    assert Path(outputs["bundle"]).is_file()
    report = json.loads(Path(outputs["report"]).read_text())
    assert outputs["sha256"] == report["bundle"]["sha256"]
    assert json.loads(outputs["reports"])["hello"]["compressed-bytes"] == str(
        report["bundle"]["compressed_bytes"]
    )
    [comment] = [c for c in github.comments(OWNER, NAME, PR) if "pyfn-size-" in c["body"]]
    # one comment for the job, named by the workflow and the job (the runner's variables)
    assert comment["body"].startswith(combined.marker(f"{WORKFLOW}/{JOB}"))
    assert comment["body"] == outputs["comment-body"] in run.summary
    assert Path(outputs["comment-path"]).read_text() == comment["body"]
    assert "budget" in comment["body"]
    assert json.loads(outputs["functions"]) == ["functions/hello"]
    [asked] = reports.restores  # the base's reports, restored: the base is not built
    assert asked == {"path": reports.saved[key][0], "key": key}
    assert asked["path"].startswith(str(tmp_path / "runner" / "runner-temp"))
    assert "base reports read from the cache for 1 of 1 function(s)" in main.stdout
    assert "build at the base" not in main.stdout
    assert len(reports.saved) == 1  # a pull request keeps nothing
    assert "against `main`" in comment["body"] and "1 read from the cache" in comment["body"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"gen": "3"}, "Invalid value for the input 'gen': '3'"),
        ({"cache": "yes"}, "Invalid value for the input 'cache': 'yes'"),
        ({"comment": "no"}, "Invalid value for the input 'comment': 'no'"),
        ({"deploy": "maybe"}, "Invalid value for the input 'deploy': 'maybe'"),
        ({"env-vars": "DB_PASSWORD=hunter2,DEBUG"}, "Invalid value for the input 'env-vars'"),
    ],
)
def test_bad_input_fails_the_step_that_checks_inputs(
    action_dir: Path,
    github: FakeGitHub,
    lockhouse_index: str,
    session_cache: Path,
    tmp_path: Path,
    inputs: dict[str, str],
    message: str,
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    event = pull_request_event(repo, tmp_path / "event.json")
    cache = Cache()
    env = hermetic_env(session_cache, PIP_INDEX_URL=lockhouse_index)
    run = composite(
        action_dir, repo.root, github, event, env, cache, source="functions/hello", **inputs
    )
    assert run.exit_code == 2
    check = run.step("inputs")
    assert check.name == "Check the inputs and each function's settings"
    assert f"::error title=pyfn%3A ConfigError::{message}" in check.stdout, check.stdout
    said = [line for line in check.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any("hunter2" in line for line in said)
    assert pyfn_cache(cache) == [] and run.step("cache-key").skipped and run.step("pyfn").skipped
    assert run.outputs["bundle"] == "" and github.requests == []


def test_cache_false_skips_the_cache(
    action_dir: Path,
    github: FakeGitHub,
    served_pypy: Served,
    index_url: str,
    lockhouse_index: str,
    session_cache: Path,
    tmp_path: Path,
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    event = pull_request_event(repo, tmp_path / "event.json")
    env = build_env(session_cache, served_pypy, index_url, lockhouse_index)
    cache = Cache()
    run = composite(
        action_dir, repo.root, github, event, env, cache, source="functions/hello", cache="FALSE"
    )
    assert run.exit_code == 0, [(s.name, s.stdout[-2000:]) for s in run.steps if s.exit_code]
    assert run.step("inputs").outputs["cache"] == "false"
    assert pyfn_cache(cache) == [] and run.step("cache-key").skipped
    assert Path(run.outputs["bundle"]).is_file()


@pytest.mark.parametrize("runner_os", ["Windows", "macOS"])
def test_another_runner_is_told_linux_only_first(
    action_dir: Path, github: FakeGitHub, session_cache: Path, tmp_path: Path, runner_os: str
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    event = pull_request_event(repo, tmp_path / "event.json")
    cache = Cache()
    run = composite(
        action_dir,
        repo.root,
        github,
        event,
        hermetic_env(session_cache),
        cache,
        runner_os=runner_os,
        source="functions/hello",
    )
    first = run.steps[0]
    assert run.exit_code == 1 and first.exit_code == 1
    assert first.stdout.startswith(
        f"::error title=pyfn::pyfn-action runs on Linux runners only, not on {runner_os}."
    )
    assert all(step.skipped for step in run.steps[1:])
    assert pyfn_cache(cache) == [] and github.requests == []
