"""The Action's entrypoint end to end: real git repositories and builds, the GitHub REST
API played by a loopback fake that checks every request against GitHub's OpenAPI
description, and, for deploys, the storage emulator and the Cloud Functions fake."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUCKET, PROJECT, REPO, Cloud
from support.action_run import TOKEN, Action, Step, our_comments, read_outputs
from support.functions_api import Injected
from support.github_api import BOT
from support.repos import NAME, OWNER, PR, Repo, git, pull_request_event, repository
from support.servers import index_routes, serve
from support.wheels import make_wheel

from pyfn_action import __version__
from pyfn_action.github.action import run
from pyfn_action.report.compare import marker
from pyfn_action.report.render import COMMENT_LIMIT

pytestmark = pytest.mark.e2e


def test_pull_request_creates_one_comment_then_updates_it(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 40_000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    first = action(repo.root, source="functions/hello", comment_mode="per-function")
    assert first.code == 0, first.stdout
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert body.startswith(marker("hello") + "\n")
    headline = body.splitlines()[3]
    assert re.match(
        r"\*\*[\d.]+ MB\*\* zipped · \+4\d\.\d KB \(\+[\d.]+%\) against `main` "
        r"\(" + repo.base[:7] + r"\) · ",
        headline,
    ), headline
    outputs = first.outputs
    bundle = Path(outputs["bundle"])
    assert bundle == repo.root / "dist" / "bundle.zip" and bundle.is_file()
    report = json.loads(Path(outputs["report"]).read_text())
    assert outputs["sha256"] == report["bundle"]["sha256"]
    assert int(outputs["compressed-bytes"]) == report["bundle"]["compressed_bytes"]
    assert int(outputs["uncompressed-bytes"]) == report["bundle"]["uncompressed_bytes"]
    assert outputs["comment-body"] == body == Path(outputs["comment-path"]).read_text()
    assert json.loads(outputs["reports"])["hello"]["sha256"] == outputs["sha256"]
    assert body in first.summary
    assert any(c == "::group::pyfn: build hello" for c in first.commands)
    assert first.commands[0] == f"::add-mask::{TOKEN}"  # the token, before anything else
    assert git(repo.root, "worktree", "list").count("\n") == 0  # the base's tree is gone

    (repo.root / "functions" / "hello" / "more.bin").write_bytes(os.urandom(10_000))
    second = action(repo.root, source="functions/hello", comment_mode="per-function")
    assert second.code == 0, second.stdout
    [updated] = our_comments(action.fake)
    assert updated["id"] == comment["id"] and updated["body"] != body
    writes = [(r.method, r.path) for r in action.fake.changes()]
    assert writes == [
        ("POST", f"/repos/{OWNER}/{NAME}/issues/{PR}/comments"),
        ("PATCH", f"/repos/{OWNER}/{NAME}/issues/comments/{comment['id']}"),
    ]


def test_marker_on_page_three_of_four_is_found(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    for n in range(250):
        action.fake.add_comment(OWNER, NAME, PR, f"review comment {n}", user="octocat")
    old = action.fake.add_comment(OWNER, NAME, PR, marker("hello") + "\nold report", user=BOT)
    for n in range(100):
        action.fake.add_comment(OWNER, NAME, PR, f"later comment {n}", user="octocat")
    step = action(repo.root, source="functions/hello", comment_mode="per-function")
    assert step.code == 0, step.stdout
    [ours] = our_comments(action.fake)
    assert ours["id"] == old["id"] and "old report" not in str(ours["body"])
    pages = [r.query.get("page", "1") for r in action.fake.requests if r.path.endswith("/comments")]
    assert pages == ["1", "2", "3"]  # stops at the page that has it
    assert action.fake.changes()[0].method == "PATCH" and len(action.fake.changes()) == 1


def test_a_forged_report_in_the_pull_request_is_left_alone(action: Action, tmp_path: Path) -> None:
    """The pull request's author writes the marker first, with figures of their own."""
    repo = repository(tmp_path, base=["hello"], head={"hello": 40_000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    forged_body = marker("hello") + "\n**1.00 KB** zipped · unchanged against `main`"
    forged = action.fake.add_comment(OWNER, NAME, PR, forged_body, user="mallory")
    step = action(repo.root, source="functions/hello", comment_mode="per-function")
    assert step.code == 0, step.stdout
    first, ours = our_comments(action.fake)
    assert (first["id"], first["body"]) == (forged["id"], forged_body)  # untouched
    assert ours["user"]["login"] == BOT and "+4" in str(ours["body"]).splitlines()[3]
    assert "written by mallory" in step.stdout
    assert [r.method for r in action.fake.changes()] == ["POST"]


def test_two_functions_make_two_comments_and_a_new_one_says_so(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["alpha"], head={"alpha": 2000, "beta": 3000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(repo.root, source="functions/*", comment_mode="per-function")
    assert step.code == 0, step.stdout
    bodies = {str(c["body"]).splitlines()[0]: str(c["body"]) for c in our_comments(action.fake)}
    assert set(bodies) == {marker("alpha"), marker("beta")}
    assert "new function" in bodies[marker("beta")].splitlines()[3]
    assert "against `main`" in bodies[marker("alpha")].splitlines()[3]
    reports = json.loads(step.outputs["reports"])
    assert set(reports) == {"alpha", "beta"}
    assert reports["beta"]["bundle"] == str(repo.root / "dist" / "beta" / "bundle.zip")
    assert step.summary.count("<!-- pyfn-size-report") == 2


def test_an_unchanged_bundle_says_so(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={})  # only README.md changed
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(repo.root, source="functions/hello", comment_mode="per-function")
    assert step.code == 0, step.stdout
    [comment] = our_comments(action.fake)
    assert " · unchanged against `main`" in str(comment["body"]).splitlines()[3]


def test_base_commit_missing_from_a_shallow_clone_is_fetched(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 5000})
    git(repo.root, "config", "uploadpack.allowReachableSHA1InWant", "true")  # as GitHub allows
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", f"file://{repo.root}", str(clone))
    with pytest.raises(subprocess.CalledProcessError):
        git(clone, "cat-file", "-e", f"{repo.base}^{{commit}}")
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(clone, source="functions/hello")
    assert step.code == 0, step.stdout
    assert "against `main`" in str(our_comments(action.fake)[0]["body"])


def test_a_forks_read_only_token_falls_back_to_the_summary(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    event = pull_request_event(repo, tmp_path / "event.json", fork=True)
    action.env["GITHUB_EVENT_PATH"] = str(event)
    action.fake.read_only = True
    step = action(repo.root, source="functions/hello")
    assert step.code == 0, step.stdout
    [warning] = step.annotations("warning")
    assert "may not write" in warning and "job summary" in warning
    body = step.outputs["comment-body"]
    assert body == Path(step.outputs["comment-path"]).read_text()
    assert body.startswith("<!-- pyfn-size-comment: ") and body in step.summary
    assert our_comments(action.fake) == []


def test_no_token_is_a_warning_only(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    del action.env["INPUT_GITHUB-TOKEN"]
    step = action(repo.root, source="functions/hello")
    assert step.code == 0, step.stdout
    assert any("No github-token" in w for w in step.annotations("warning"))
    assert action.fake.requests == []


def test_a_body_over_the_limit_is_cut_with_a_note(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    components = [
        {
            "name": f"removed-package-with-a-long-name-{i:05d}",
            "kind": "package",
            "compressed_bytes": 1000 + i,
            "uncompressed_bytes": 3000 + i,
            "files": 1,
        }
        for i in range(3000)
    ]
    base = {
        "version": 1,
        "bundle": {
            "sha256": "0" * 64,
            "compressed_bytes": 9_000_000,
            "uncompressed_bytes": 30_000_000,
            "files": 3000,
        },
        "components": components,
        "function": {"name": "hello"},
    }
    (repo.root / "base.json").write_text(json.dumps(base))
    step = action(
        repo.root, source="functions/hello", comment_mode="per-function", base_report="base.json"
    )
    assert step.code == 0, step.stdout
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert 60_000 < len(body) <= COMMENT_LIMIT
    assert "more components (see `report.json`)" in body


def test_a_base_report_of_another_version_is_refused(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    (repo.root / "base.json").write_text(json.dumps({"version": 2}))
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(repo.root, source="functions/hello", base_report="base.json")
    assert step.code == 10
    [error] = step.annotations("error")
    assert "base-report" in error and "version 2" in error
    assert action.fake.requests == [] and not (repo.root / "dist").exists()


def test_over_budget_fails_after_commenting_with_annotations(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 2_000_000})
    src = repo.root / "functions" / "hello"
    (src / "pyfn.toml").write_text('name = "hello"\nentry_point = "hello"\n\nbudget = "10MB"\n')
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(repo.root, source="functions/hello")
    assert step.code == 9, step.stdout
    [comment] = our_comments(action.fake)
    assert "❌" in str(comment["body"]).splitlines()[3]
    errors = step.annotations("error")
    assert any(e.startswith("::error file=functions/hello/pyfn.toml,line=4,") for e in errors)
    assert any(e.startswith("::error file=functions/hello/data.bin,") for e in errors)
    assert any("BudgetExceeded" in e and "10.0 MB" in e for e in errors)
    assert not (repo.root / "dist" / "bundle.zip").exists()
    assert step.outputs["bundle"] == "" and step.outputs["sha256"] == ""  # none was written
    assert int(step.outputs["compressed-bytes"]) > 10_000_000  # what was refused
    assert step.outputs["comment-body"] == comment["body"]


def test_credentials_are_annotated_on_their_line(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    key = "x = 1\n-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"
    (repo.root / "functions" / "hello" / "key.pem").write_text(key)
    action.env["GITHUB_EVENT_NAME"] = "push"
    step = action(repo.root, source="functions/hello")
    assert step.code == 11, step.stdout
    assert any(
        e.startswith("::error file=functions/hello/key.pem,line=2,title=pyfn%3A credentials")
        for e in step.annotations("error")
    )
    assert "MIIE" not in step.stdout


@pytest.mark.parametrize(
    ("inputs", "code", "message"),
    [
        ({"gen": "3"}, 2, "input 'gen'"),
        ({"budget": "lots"}, 2, "input 'budget'"),
        ({"deploy": "maybe"}, 2, "input 'deploy'"),
        ({"source": "nowhere"}, 3, "input 'source' names 'nowhere'"),
        ({"source": "functions"}, 3, "holds no function"),
        ({"deploy": "true", "project": "p-123456", "bucket": "b-stage"}, 2, "no region"),
        ({"deploy": "true", "project": "p-123456", "region": "us-central1"}, 2, "no bucket"),
        ({"deploy": "true", "region": "us-central1", "bucket": "b-stage"}, 2, "no project"),
    ],
)
def test_bad_input_names_it_and_builds_nothing(
    action: Action, tmp_path: Path, inputs: dict[str, str], code: int, message: str
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    action.env["GITHUB_EVENT_NAME"] = "push"
    inputs.setdefault("source", "functions/hello")
    step = action(repo.root, **inputs)
    assert step.code == code, step.stdout
    [error] = step.annotations("error")
    assert message in error
    assert not (repo.root / "dist").exists() and action.fake.requests == []


def test_a_malformed_event_is_refused(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    (tmp_path / "event.json").write_text("{not json")
    action.env["GITHUB_EVENT_PATH"] = str(tmp_path / "event.json")
    step = action(repo.root, source="functions/hello")
    assert step.code == 2
    assert "Cannot read the GitHub event" in step.annotations("error")[0]


def test_cache_key_names_runtime_target_and_requirements(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    src = repo.root / "functions" / "hello"
    env = {
        **action.env,
        "INPUT_SOURCE": "functions/hello",
        "INPUT_GEN": "1",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "RUNNER_ARCH": "X64",
    }

    def key() -> dict[str, str]:
        (tmp_path / "out").unlink(missing_ok=True)
        assert run(["--cache-key"], env, io.StringIO(), cwd=repo.root) == 0
        return read_outputs(tmp_path / "out")

    first = key()
    (src / "requirements.txt").write_text("idna\n")
    second = key()
    assert first["key"] != second["key"]
    runtime = f"pypy3.11-newest-x86_64-{action.env['PYFN_PYPY_SHA256'][:16]}"
    assert second["key"].startswith(f"pyfn-{__version__}-Linux-X64-{runtime}-gen1-")
    assert second["restore-keys"].splitlines() == [
        f"pyfn-{__version__}-Linux-X64-{runtime}-gen1-",
        f"pyfn-{__version__}-Linux-X64-{runtime}-",
    ]
    assert second["path"] == action.env["PYFN_CACHE_DIR"]


def test_entrypoint_script_runs_outside_the_composite(action: Action, tmp_path: Path) -> None:
    """`python entrypoint.py` as other CI systems would run it: PYFN_* below the inputs."""
    repo = repository(tmp_path, base=["hello"], head={})
    env = {
        **action.env,
        "GITHUB_EVENT_NAME": "push",
        "INPUT_SOURCE": "functions/hello",
        "GITHUB_OUTPUT": str(tmp_path / "out"),
        "PYFN_GEN": "1",
        "INPUT_GEN": "2",
    }
    result = subprocess.run(
        [sys.executable, str(REPO / "entrypoint.py")],
        cwd=repo.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(Path(read_outputs(tmp_path / "out")["report"]).read_text())
    assert report["function"]["gen"] == 2  # the input, over PYFN_GEN
    assert action.fake.requests == []  # a push: no comment


def google(cloud: Cloud) -> dict[str, str]:
    """The Google side of the deploy tests' environment: credentials, emulator, fake API."""
    prefixes = ("GOOGLE_", "CLOUDSDK_", "STORAGE_", "PYFN_FUNCTIONS", "PYFN_RUN", "NO_GCE", "GCE_")
    return {k: v for k, v in cloud.env.items() if k.startswith(prefixes)}


def kept(cloud: Cloud) -> None:
    """Neither Google fake saw a request that breaks its API's contract: what the step did
    or failed at was not a fake's 400 (401, 404...) to a malformed request."""
    assert cloud.fake.violations == [], cloud.fake.violations
    assert cloud.proxy.refused == [], cloud.proxy.refused


def test_a_push_with_deploy_true_deploys_and_sets_the_url(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    action.env.update(google(cloud))
    action.env["GITHUB_EVENT_NAME"] = "push"
    step = action(
        repo.root,
        source="functions/hello",
        deploy="true",
        project=PROJECT,
        region="asia-northeast1",
        bucket=BUCKET,
        memory="512Mi",
        env_vars="MODE=prod\nORIGINS=a.test,b.test",
    )
    assert step.code == 0, step.stdout
    url = "https://asia-northeast1-demo-proj.cloudfunctions.net/hello"
    assert step.outputs["url"] == url
    assert json.loads(step.outputs["reports"])["hello"]["url"] == url
    [create] = cloud.fake.changes()
    assert create.body["serviceConfig"]["environmentVariables"] == {
        "MODE": "prod",
        "ORIGINS": "a.test,b.test",
        "NODE_OPTIONS": "--require ./index.js",
    }
    storage = create.body["buildConfig"]["source"]["storageSource"]
    assert storage["object"].endswith(step.outputs["sha256"] + ".zip")
    assert cloud.uploads() == 1
    assert "::add-mask::a.test,b.test" in step.commands
    said = [line for line in step.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any("a.test,b.test" in line for line in said)
    assert any(c == "::group::pyfn: deploy hello" for c in step.commands)
    # docs/deploy.md: the wait prints each build stage as it changes, in the step's log
    log = step.stdout.splitlines()
    group = log.index("::group::pyfn: deploy hello")
    assert [line for line in log[group:] if re.match(r"pyfn: {3}\w+: ", line)] == [
        "pyfn:   build: in progress (Building the function)",
        "pyfn:   service: not started",
        "pyfn:   build: complete",
        "pyfn:   service: in progress (Creating Cloud Run service)",
        "pyfn:   service: complete",
    ]
    kept(cloud)


def test_deploy_settings_are_all_judged_before_anything_is_deployed(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["alpha", "beta"], head={})
    (repo.root / "functions" / "beta" / "pyfn.toml").write_text(
        'name = "beta"\nentry_point = "beta"\nmemory = "1Gi"\ncpu = "0.5"\nconcurrency = 8\n'
    )
    action.env.update(google(cloud))
    action.env["GITHUB_EVENT_NAME"] = "push"
    step = action(
        repo.root,
        source="functions/*",
        deploy="true",
        project=PROJECT,
        region="asia-northeast1",
        bucket=BUCKET,
    )
    assert step.code == 2, step.stdout
    assert "concurrency" in step.annotations("error")[0]
    assert cloud.fake.changes() == [] and cloud.uploads() == 0
    assert not (repo.root / "dist").exists()
    kept(cloud)


def _deploy_two(action: Action, cloud: Cloud, tmp_path: Path, **more: str) -> tuple[Step, Repo]:
    repo = repository(tmp_path, base=["alpha", "beta"], head={})
    action.env.update(google(cloud))
    action.env["GITHUB_EVENT_NAME"] = "push"
    step = action(
        repo.root,
        source="functions/*",
        deploy="true",
        project=PROJECT,
        region="asia-northeast1",
        bucket=BUCKET,
        **more,
    )
    return step, repo


def _created(cloud: Cloud) -> list[str]:
    return [r.query.get("functionId", "") for r in cloud.fake.changes() if r.method == "POST"]


def test_a_failed_deploy_fails_the_job_and_deploys_nothing_more(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    cloud.fake.outcome = "fail"
    step, _ = _deploy_two(action, cloud, tmp_path)
    assert step.code == 15, step.stdout
    [error] = step.annotations("error")
    assert "alpha: The deployment of alpha failed" in error
    assert _created(cloud) == ["alpha"] and cloud.uploads() == 1  # beta: not even uploaded
    assert not any(r["url"] for r in json.loads(step.outputs["reports"]).values())
    kept(cloud)  # the build failed; no request did


def test_a_deploy_that_never_finishes_fails_the_job_with_its_own_code(
    action: Action, cloud: Cloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pyfn_action.cloud import apply

    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    real_apply = apply.apply
    polling = apply.Polling(clock=lambda: now[0], sleep=sleep)
    monkeypatch.setattr(apply, "apply", lambda *a, **k: real_apply(*a, polling=polling, **k))
    cloud.fake.outcome = "never"
    step, _ = _deploy_two(action, cloud, tmp_path, config='timeout = "3s"')
    assert step.code == 16, step.stdout
    assert "did not finish within the wait timeout" in step.annotations("error")[0]
    assert _created(cloud) == ["alpha"] and now[0] == 3.0
    kept(cloud)


def test_every_functions_access_is_checked_before_any_is_deployed(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    cloud.fake.inject.append(
        Injected(
            "GET",
            "/functions/beta",
            403,
            "PERMISSION_DENIED",
            "Permission 'cloudfunctions.functions.get' denied on resource",
        )
    )
    step, repo = _deploy_two(action, cloud, tmp_path)
    assert step.code == 15, step.stdout  # DeployError
    assert "Permission denied while reading function beta" in step.annotations("error")[0]
    assert cloud.fake.changes() == [] and cloud.uploads() == 0
    assert not (repo.root / "dist").exists()  # alpha not even built
    assert cloud.fake.inject[0].times == 0  # the denial is the injected one: the fake's
    kept(cloud)  # own 403 for another project would read the same


def test_pyfn_comment_posts_only_for_the_built_head(action: Action, tmp_path: Path) -> None:
    from conftest import pyfn

    body = tmp_path / "comment.md"
    body.write_text(marker("hello") + "\n### pyfn bundle size: `hello`\n")
    action.fake.add_pull(OWNER, NAME, PR, head_sha="c" * 40, base_sha="d" * 40)
    env = {
        "GITHUB_TOKEN": TOKEN,
        "GITHUB_API_URL": action.fake.base,
        "GITHUB_REPOSITORY": f"{OWNER}/{NAME}",
    }
    moved = pyfn(["comment", str(body), "--pr", str(PR), "--head-sha", "e" * 40], env)
    assert moved.code == 17 and "not at eeeeeeeeeeee" in moved.stderr
    assert our_comments(action.fake) == []
    posted = pyfn(["comment", str(body), "--pr", str(PR), "--head-sha", "c" * 40], env)
    assert posted.code == 0, posted.stderr
    assert posted.stdout.startswith("created ")
    again = pyfn(["comment", str(body), "--pr", str(PR)], env)
    assert again.code == 0 and again.stdout.startswith("updated ")
    assert len(our_comments(action.fake)) == 1
    other = tmp_path / "other.md"
    other.write_text("<!-- not ours -->\nhello\n")
    refused = pyfn(["comment", str(other), "--pr", str(PR)], env)
    assert refused.code == 17 and "marker" in refused.stderr


def script_function(repo: Repo, requirements: str) -> Path:
    src = repo.root / "functions" / "hello"
    (src / "pyfn.toml").write_text('name = "hello"\nsignature = "script"\nscript = "main.py"\n')
    (src / "requirements.txt").write_text(requirements)
    return src


def test_a_requirement_with_no_pypy_wheel_is_annotated_on_its_line(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    script_function(repo, "# what the function needs\nnativeonly==1.0\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "nativeonly", "1.0", "cp39-cp39-manylinux2014_x86_64")
    action.env["GITHUB_EVENT_NAME"] = "push"
    with serve(index_routes(wheels)) as base:
        step = action(repo.root, source="functions/hello", config=f'index_url = "{base}/simple/"')
    assert step.code == 5, step.stdout
    [annotation, error] = step.annotations("error")
    assert annotation.startswith(
        "::error file=functions/hello/requirements.txt,line=2,title=pyfn%3A native code::"
        "Requirement nativeonly==1.0 has no wheel PyPy"
    )
    assert "NoCompatibleWheel" in error


def test_a_vendored_extension_pypy_cannot_load_is_annotated(action: Action, tmp_path: Path) -> None:
    source = next(Path("/usr/lib/pypy3.9").glob("_sqlite3_cffi.pypy39-pp73-*.so"), None)
    if source is None:
        pytest.fail("Debian's pypy3 is not installed (CI installs it)")
    repo = repository(tmp_path, base=["hello"], head={})
    src = script_function(repo, "")
    (src / "vendor").mkdir()
    shutil.copy(source, src / "vendor" / "_fast.cpython-311-x86_64-linux-gnu.so")
    action.env["GITHUB_EVENT_NAME"] = "push"
    step = action(repo.root, source="functions/hello")
    assert step.code == 0, step.stdout  # the build goes on, as `pyfn build` does
    [annotation] = step.annotations("error")
    assert annotation.startswith(
        "::error file=functions/hello/vendor/_fast.cpython-311-x86_64-linux-gnu.so,"
        "title=pyfn%3A native code::app/vendor/_fast.cpython-311-x86_64-linux-gnu.so "
        "a CPython extension"
    )


def test_a_function_name_never_leads_out_of_dist(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["alpha", "beta"], head={})
    (repo.root / "functions" / "beta" / "pyfn.toml").write_text(
        'name = "../../escaped"\nentry_point = "beta"\n'
    )
    action.env["GITHUB_EVENT_NAME"] = "push"
    step = action(repo.root, source="functions/*")
    assert step.code == 2, step.stdout
    assert "cannot name its output directory" in step.annotations("error")[0]
    assert not (tmp_path / "escaped").exists() and not (repo.root / "dist").exists()
