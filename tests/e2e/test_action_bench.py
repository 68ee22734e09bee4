"""`bench: true` through the Action: each function that declares requests measured
against the native Python runtime at the pull request and at the built base, in the
comment and the job summary; `min-speedup` failing the job with its own exit code."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TEST_CACHE
from support.action_run import Action, our_comments
from support.repos import Repo, add_function, git, pull_request_event, repository

pytestmark = pytest.mark.e2e
BENCH = '\n[[bench]]\nname = "greet"\npath = "/"\n'


@pytest.fixture(autouse=True)
def framework(session_cache: Path) -> None:
    """The tests' installed Node.js Functions Framework, in the run's cache."""
    installed = session_cache / "node-functions-framework"
    if not installed.exists():
        installed.symlink_to(TEST_CACHE / "node-functions-framework")


def _repo(tmp_path: Path) -> Repo:
    """A base and a head that both declare a request of the function."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    src = add_function(root, "hello")
    (src / "requirements.txt").write_text("functions-framework==3.10.2\n")
    (src / "pyfn.toml").write_text((src / "pyfn.toml").read_text() + BENCH)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    base = git(root, "rev-parse", "HEAD")
    (src / "main.py").write_text((src / "main.py").read_text().replace("Hello from", "Hi from"))
    git(root, "commit", "-q", "-am", "head")
    return Repo(root, base, git(root, "rev-parse", "HEAD"))


def test_the_pull_request_and_its_base_measured_in_the_comment(
    action: Action, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(repo.root, source="functions/hello", bench="true", bench_duration="0.3")
    assert step.code == 0, step.stdout
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert "#### Speed against the native Python runtime" in body
    [line] = [x for x in body.splitlines() if x.startswith("- `hello` GET /  p50 ")]
    assert " native: " in line and "(base: " in line
    assert "2 CPUs" in body or "CPUs, 8 clients" in body
    assert "Speed against the native Python runtime" in step.summary
    assert any(
        c == "::group::pyfn: bench hello against the native Python runtime" for c in step.commands
    )

    slow = action(
        repo.root, source="functions/hello", bench="true", bench_duration="0.3", min_speedup="1000"
    )
    assert slow.code == 19, slow.stdout
    [error] = [e for e in slow.annotations("error") if "min_speedup" in e]
    assert "below min_speedup 1000: greet" in error
    [comment] = our_comments(action.fake)
    speed = str(comment["body"]).split("#### Speed against the native Python runtime")[1]
    assert "greet: ❌ below min_speedup 1000" in speed, speed


def test_a_function_without_requests_is_not_measured(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(repo.root, source="functions/hello", bench="true")
    assert step.code == 0, step.stdout
    assert "Speed against" not in step.summary
    assert not any("pyfn: bench" in c for c in step.commands)


def test_a_bad_bench_input_is_refused_naming_it(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    for inputs, said in (
        ({"min_speedup": "fast"}, "min-speedup"),
        ({"bench_duration": "0"}, "bench-duration"),
        ({"bench": "maybe"}, "bench"),
    ):
        step = action(repo.root, source="functions/hello", **inputs)
        assert step.code == 2 and any(said in e for e in step.annotations("error"))
