"""The Node.js runtime calendar in real builds and deploys: the wheels a bundle may take
follow the runtime's stack, a runtime near or past its dates is said in the build, the
report and the comment, and a decommissioned runtime is never deployed."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from conftest import Cloud, Outcome, Served, build_args, hermetic_env, pyfn
from support.action_run import Action, our_comments
from support.repos import pull_request_event, repository
from support.servers import index_routes, serve
from support.wheels import make_wheel

from pyfn_action.cli import run

pytestmark = pytest.mark.e2e

# A wheel that needs glibc 2.36: Ubuntu 24.04 (nodejs24, glibc 2.39) loads it, 22.04
# (2.35) does not. (Not 2.39 itself: pip resolves inside the target PyPy, by this host's
# own glibc, Debian 12's 2.36.)
PROBE_TAG = "py3-none-manylinux_2_36_x86_64"


def _build(
    tmp_path: Path, served: Served, cache: Path, *more: str, today: str = "2026-12-07"
) -> Outcome:
    """Build a script function that requires the glibc 2.36 probe, on day ``today``."""
    wheels = tmp_path / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    make_wheel(wheels, "probe236", "1.0", PROBE_TAG)
    src = tmp_path / "fn"
    src.mkdir(exist_ok=True)
    (src / "main.py").write_text("print('hi')\n")
    (src / "requirements.txt").write_text("probe236\n")
    with serve(index_routes(wheels)) as base:
        args = build_args(
            src,
            tmp_path / "out",
            served,
            f"{base}/simple/",
            "--signature",
            "script",
            "--script",
            "main.py",
            *more,
        )
        return pyfn(args, hermetic_env(cache, PYFN_TODAY=today))


def test_wheels_follow_the_stack_of_the_runtime(
    tmp_path: Path, served_pypy: Served, session_cache: Path
) -> None:
    picked = _build(tmp_path / "a", served_pypy, session_cache)  # 2nd gen: nodejs24
    assert picked.code == 0, picked.stderr
    report = json.loads((tmp_path / "a" / "out" / "report.json").read_text())
    assert report["runtime"]["node_runtime"] == "nodejs24"
    assert report["runtime"]["glibc"] == "2.39" and report["runtime"]["notice"] == ""
    assert any(c["name"] == "probe236" for c in report["components"])

    older = _build(tmp_path / "b", served_pypy, session_cache, "--node-runtime", "nodejs22")
    assert older.code == 5, older.stderr
    assert "probe236" in older.stderr and "glibc 2.35" in older.stderr

    first_gen = _build(tmp_path / "c", served_pypy, session_cache, "--gen", "1")
    assert first_gen.code == 5, first_gen.stderr  # 1st gen picks nodejs22, on 22.04


def test_a_runtime_near_its_deprecation_is_said_everywhere(
    tmp_path: Path, served_pypy: Served, session_cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    said = (
        "nodejs22 is deprecated on 2027-04-30 (in 74 days) and decommissioned on 2027-10-31; "
        "1st gen offers no newer Node.js runtime: move the function to 2nd gen (gen = 2) for "
        "nodejs24"
    )
    src = tmp_path / "fn"
    src.mkdir()
    (src / "main.py").write_text("print('hi')\n")
    with serve(index_routes(tmp_path)) as base:
        args = build_args(
            src,
            tmp_path / "out",
            served_pypy,
            f"{base}/simple/",
            "--signature",
            "script",
            "--script",
            "main.py",
            "--gen",
            "1",
        )
        ok = pyfn(args, hermetic_env(session_cache, PYFN_TODAY="2027-02-15"))
    assert ok.code == 0, ok.stderr
    assert said in caplog.messages  # the build's output
    report_path = tmp_path / "out" / "report.json"
    assert json.loads(report_path.read_text())["runtime"]["notice"] == said
    markdown = io.StringIO()
    assert (
        run(["report", str(report_path), "--format", "markdown"], {}, markdown, io.StringIO()) == 0
    )
    assert f"> ⚠️ {said}" in markdown.getvalue().splitlines()
    text = io.StringIO()
    assert run(["report", str(report_path)], {}, text, io.StringIO()) == 0
    assert f"warning: {said}" in text.getvalue()


@pytest.mark.parametrize(
    ("args", "today", "message"),
    [
        (["--node-runtime", "nodejs20"], "2026-12-07", "nodejs20 was decommissioned on 2026-10-30"),
        (["--gen", "1"], "2027-10-31", "knows no Node.js runtime of 1st gen still deployable"),
        (["--node-runtime", "nodejs22"], "2027-10-31", "nodejs22 was decommissioned on 2027-10-31"),
        (["--node-runtime", "nodejs24", "--gen", "1"], "2026-12-07", "not offered on 1st gen"),
    ],
)
def test_a_runtime_that_cannot_be_deployed_is_refused_before_anything(
    cloud: Cloud, tmp_path: Path, args: list[str], today: str, message: str
) -> None:
    src = tmp_path / "hello"
    src.mkdir()
    (src / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    out = cloud.deploy(src, *args, env={**cloud.env, "PYFN_TODAY": today})
    assert out.code == 2, out.stderr
    assert message in out.stderr
    assert cloud.fake.requests == [] and cloud.proxy.log == []
    assert not (tmp_path / "dist-hello").exists()  # not even built
    assert 'nodejs20"' not in out.stderr and 'nodejs18"' not in out.stderr


def test_the_deploy_takes_the_runtime_pyfn_picks(cloud: Cloud, tmp_path: Path) -> None:
    src = tmp_path / "hello"
    src.mkdir()
    (src / "main.py").write_text("def hello(request):\n    return 'hi'\n")
    out = cloud.deploy(src, "--dry-run", env={**cloud.env, "PYFN_TODAY": "2026-12-07"})
    assert out.code == 0, out.stderr
    assert "runtime nodejs24, Node.js Functions Framework" in out.stdout
    assert '"runtime": "nodejs24"' in out.stdout


def test_the_action_says_it_in_the_comment_the_summary_and_an_annotation(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    action.env["PYFN_TODAY"] = "2027-05-01"
    step = action(repo.root, source="functions/hello", config='node_runtime = "nodejs22"')
    assert step.code == 0, step.stdout
    said = (
        "nodejs22 has been deprecated since 2027-04-30 and is decommissioned on 2027-10-31 "
        '(in 183 days); set node_runtime = "nodejs24", or drop it (pyfn picks nodejs24)'
    )
    [comment] = our_comments(action.fake)
    assert f"> ⚠️ {said}" in str(comment["body"]).splitlines()
    assert f"> ⚠️ {said}" in step.summary.splitlines()
    [warning] = [w for w in step.annotations("warning") if "Node.js runtime" in w]
    assert warning.endswith(f"::hello: {said}")
