"""A pull request's previews through the Action, end to end: opened (created, labelled,
URL in the comment and the output), pushed to (updated in place), closed (deleted, and
the comment says so), closed again (nothing to delete), a function of the preview's name
that is no preview (refused, untouched), a fork and pull_request_target (refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BUCKET, PROJECT, Cloud
from support.action_run import Action, Step, our_comments
from support.repos import NAME, OWNER, PR, Repo, git, pull_request_event, repository
from test_action import google, kept

from pyfn_action.cloud.previews import preview_labels

pytestmark = pytest.mark.e2e
REGION = "asia-northeast1"
PREVIEW = f"projects/{PROJECT}/locations/{REGION}/functions/hello-pr-{PR}"
URL = f"https://{REGION}-{PROJECT}.cloudfunctions.net/hello-pr-{PR}"


def _step(
    action: Action, cloud: Cloud, repo: Repo, tmp_path: Path, event: str, **more: str
) -> Step:
    action.env.update(google(cloud))
    path = tmp_path / f"event-{event}-{action.runs}.json"
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, path, action=event))
    inputs = {
        "source": "functions/hello",
        "preview": "true",
        "project": PROJECT,
        "region": REGION,
        "bucket": BUCKET,
        **more,
    }
    return action(repo.root, **inputs)


def _push(repo: Repo) -> Repo:
    """A new commit on the pull request's branch: the function's answer changes."""
    main = repo.root / "functions" / "hello" / "main.py"
    main.write_text(main.read_text().replace("Hello from", "Hi from"))
    git(repo.root, "commit", "-q", "-am", "push")
    return Repo(repo.root, repo.base, git(repo.root, "rev-parse", "HEAD"))


def _preview_lines(body: str) -> list[str]:
    lines = body.splitlines()
    start = lines.index("#### Previews") + 2
    return lines[start : lines.index("", start)]


def test_a_preview_lives_from_opened_to_closed(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    opened = _step(action, cloud, repo, tmp_path, "opened")
    assert opened.code == 0, opened.stdout
    [create] = cloud.fake.changes()
    assert (create.method, create.query["functionId"]) == ("POST", f"hello-pr-{PR}")
    assert create.body["labels"] == preview_labels(f"{OWNER}/{NAME}", PR, "hello")
    service = create.body["serviceConfig"]
    # proto3 JSON leaves a zero out: absent is none kept warm
    assert (service.get("minInstanceCount", 0), service["maxInstanceCount"]) == (0, 1)
    assert json.loads(opened.outputs["preview-urls"]) == {"hello": URL}
    sha = opened.outputs["sha256"]
    assert create.body["buildConfig"]["source"]["storageSource"]["object"].endswith(sha + ".zip")
    [comment] = our_comments(action.fake)  # no size changed, yet the preview is news
    body = str(comment["body"])
    assert _preview_lines(body) == [
        f"- `hello`: {URL} · `hello-pr-{PR}` runs bundle `{sha}` · private"
    ]
    assert "gcloud auth print-identity-token" in body
    assert any(c == "::group::pyfn: build and preview hello" for c in opened.commands)
    kept(cloud)

    pushed = _step(action, cloud, _push(repo), tmp_path, "synchronize")
    assert pushed.code == 0, pushed.stdout
    patch = cloud.fake.changes()[-1]
    assert (patch.method, patch.path) == ("PATCH", f"/v2/{PREVIEW}")
    assert len(cloud.fake.functions["v2"]) == 1
    new_sha = pushed.outputs["sha256"]
    assert new_sha != sha
    [comment] = our_comments(action.fake)
    assert new_sha in _preview_lines(str(comment["body"]))[0]
    kept(cloud)

    closed = _step(action, cloud, repo, tmp_path, "closed")
    assert closed.code == 0, closed.stdout
    assert cloud.fake.functions["v2"] == {}
    assert not any(c.startswith("::group::pyfn: build") for c in closed.commands)
    assert json.loads(closed.outputs["preview-urls"]) == {}
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert _preview_lines(body) == [f"- Deleted as the pull request closed: `hello-pr-{PR}`"]
    assert URL not in body
    assert f"deleted hello-pr-{PR}" in closed.summary
    kept(cloud)

    again = _step(action, cloud, repo, tmp_path, "closed")
    assert again.code == 0, again.stdout
    assert "no preview to delete" in again.stdout
    [same] = our_comments(action.fake)
    assert same["body"] == comment["body"]
    kept(cloud)


def test_a_function_of_the_previews_name_that_is_no_preview_is_untouched(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    real = {"name": PREVIEW, "labels": {"owner": "ops"}, "state": "ACTIVE"}
    cloud.fake.functions["v2"] = {PREVIEW: dict(real)}
    step = _step(action, cloud, repo, tmp_path, "opened")
    assert step.code == 15, step.stdout
    [error] = step.annotations("error")
    assert "is not this pull request's preview" in error
    assert cloud.fake.changes() == []
    assert cloud.fake.functions["v2"][PREVIEW] == real
    closed = _step(action, cloud, repo, tmp_path, "closed")
    assert closed.code == 0 and cloud.fake.functions["v2"][PREVIEW] == real
    kept(cloud)


def test_a_fork_gets_no_preview_in_one_line(action: Action, cloud: Cloud, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env.update(google(cloud))
    event = pull_request_event(repo, tmp_path / "fork.json", fork=True, action="opened")
    action.env["GITHUB_EVENT_PATH"] = str(event)
    step = action(
        repo.root,
        source="functions/hello",
        preview="true",
        project=PROJECT,
        region=REGION,
        bucket=BUCKET,
    )
    assert step.code == 0, step.stdout
    [warning] = [w for w in step.annotations("warning") if "preview" in w.lower()]
    assert "comes from a fork" in warning and "\n" not in warning
    assert cloud.fake.requests == []  # nothing read, nothing deployed
    assert json.loads(step.outputs["preview-urls"]) == {}
    assert "pull requests from forks get no preview" in step.outputs["comment-body"]


@pytest.mark.parametrize(
    ("event", "inputs", "said"),
    [
        ("pull_request_target", {"preview": "true"}, "preview is true on a pull_request_target"),
        ("pull_request", {"preview": "true", "deploy": "true"}, "deploy and preview are both"),
        (
            "pull_request",
            {"preview": "true", "preview_max_instances": "0"},
            "preview-max-instances",
        ),
        (
            "pull_request",
            {"preview": "true", "allow_unauthenticated": "yes"},
            "allow-unauthenticated",
        ),
    ],
)
def test_previews_refused_where_they_cannot_be_safe(
    action: Action, cloud: Cloud, tmp_path: Path, event: str, inputs: dict[str, str], said: str
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    action.env.update(google(cloud))
    action.env["GITHUB_EVENT_NAME"] = event
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "e.json"))
    step = action(
        repo.root, source="functions/hello", project=PROJECT, region=REGION, bucket=BUCKET, **inputs
    )
    assert step.code == 2, step.stdout
    assert any(said in e for e in step.annotations("error")), step.annotations("error")
    assert cloud.fake.requests == []


def test_a_public_preview_says_so_and_anyone_may_call_it(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    step = _step(
        action,
        cloud,
        repo,
        tmp_path,
        "opened",
        allow_unauthenticated="true",
        preview_max_instances="3",
    )
    assert step.code == 0, step.stdout
    assert {"role": "roles/run.invoker", "members": ["allUsers"]} in cloud.fake.policy(PREVIEW).get(
        "bindings", []
    )
    [create] = cloud.fake.changes()
    assert create.body["serviceConfig"]["maxInstanceCount"] == 3
    body = step.outputs["comment-body"]
    assert "anyone may call it" in _preview_lines(body)[0]
    assert "print-identity-token" not in body
    kept(cloud)


def test_a_failed_delete_on_close_fails_the_job_and_a_later_close_deletes(
    action: Action, cloud: Cloud, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    assert _step(action, cloud, repo, tmp_path, "opened").code == 0
    cloud.fake.delete_outcome = "fail"
    failed = _step(action, cloud, repo, tmp_path, "closed")
    assert failed.code == 15, failed.stdout
    [error] = failed.annotations("error")
    assert f"could not be deleted: hello-pr-{PR}" in error
    assert PREVIEW in cloud.fake.functions["v2"]
    [comment] = our_comments(action.fake)
    assert URL in str(comment["body"])  # still running, so the comment still says so
    cloud.fake.delete_outcome = "succeed"
    again = _step(action, cloud, repo, tmp_path, "closed")
    assert again.code == 0, again.stdout
    assert cloud.fake.functions["v2"] == {}
    kept(cloud)
