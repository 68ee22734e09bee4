"""The pull request's view, end to end: one comment for all of a job's functions, quiet
when nothing changed, keyed, and the base's reports read from the Actions cache (kept by
a push to the default branch) instead of built again."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.action_run import Action, Step, our_comments
from support.github_api import BOT
from support.repos import NAME, OWNER, PR, Repo, add_function, git, pull_request_event, repository

from pyfn_action.report import combined
from pyfn_action.report.compare import marker

pytestmark = pytest.mark.e2e

BASE_BUILD = "::group::pyfn: build at the base"


def _pr(action: Action, repo: Repo, tmp_path: Path) -> None:
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))


def _rows(body: str) -> list[str]:
    """The function table's rows (the folded tables below have rows too)."""
    lines = body.splitlines()
    start = lines.index("| function | zipped | change | limit |") + 2
    return lines[start : lines.index("", start)]


def _push(action: Action, repo: Repo, tmp_path: Path, sha: str, **inputs: str) -> Step:
    """The Action on a push of ``sha`` to main (checked out for it), as the workflow
    that keeps the reports for pull requests runs it."""
    event = tmp_path / "push.json"
    event.write_text(
        json.dumps(
            {
                "ref": "refs/heads/main",
                "after": sha,
                "repository": {"full_name": f"{OWNER}/{NAME}", "default_branch": "main"},
            }
        )
    )
    git(repo.root, "checkout", "-q", sha)
    env = dict(action.env)
    action.env.update(
        GITHUB_EVENT_NAME="push",
        GITHUB_EVENT_PATH=str(event),
        GITHUB_SHA=sha,
        GITHUB_REF="refs/heads/main",
    )
    try:
        return action(repo.root, **inputs)
    finally:
        action.env.clear()
        action.env.update(env)
        git(repo.root, "checkout", "-q", repo.head)


def test_one_comment_for_every_function_made_then_updated_across_pages(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["alpha", "beta", "gamma"], head={"alpha": 20_000})
    _pr(action, repo, tmp_path)
    for n in range(250):
        action.fake.add_comment(OWNER, NAME, PR, f"review comment {n}", user="octocat")
    first = action(repo.root, source="functions/*")
    assert first.code == 0, first.stdout
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert body.startswith(combined.marker("pyfn") + "\n")  # no workflow or job named here
    assert [row.split("`")[1] for row in _rows(body)] == ["alpha"]
    assert "2 unchanged: `beta`, `gamma`" in body
    assert " · 1 of 3 changed" in body.splitlines()[3]
    assert "<details><summary><code>alpha</code>" in body
    assert first.outputs["comment-body"] == body
    assert Path(first.outputs["comment-path"]) == repo.root / "dist" / "comment.md"
    assert body in first.summary and "- `beta`: built at the base commit" in first.summary
    for n in range(100):
        action.fake.add_comment(OWNER, NAME, PR, f"later comment {n}", user="octocat")

    (repo.root / "functions" / "gamma" / "more.bin").write_bytes(os.urandom(10_000))
    second = action(repo.root, source="functions/*")
    assert second.code == 0, second.stdout
    [updated] = our_comments(action.fake)
    assert updated["id"] == comment["id"]
    assert [row.split("`")[1] for row in _rows(str(updated["body"]))] == ["alpha", "gamma"]
    writes = [r.method for r in action.fake.changes()]
    assert writes == ["POST", "PATCH"]


def test_nothing_changed_creates_no_comment_and_clears_one_that_exists(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={})
    _pr(action, repo, tmp_path)
    quiet = action(repo.root, source="functions/hello")
    assert quiet.code == 0, quiet.stdout
    assert our_comments(action.fake) == [] and action.fake.changes() == []
    assert "no function changed: no size comment created" in quiet.stdout
    assert "no function changed" in quiet.outputs["comment-body"].splitlines()[3]

    report = json.loads((repo.root / "dist" / "report.json").read_text())
    report["bundle"]["compressed_bytes"] -= 5_000  # a base 5 KB smaller: a change to show
    (repo.root / "base.json").write_text(json.dumps(report))
    changed = action(repo.root, source="functions/hello", base_report="base.json")
    assert changed.code == 0, changed.stdout
    [comment] = our_comments(action.fake)
    assert "+5.0 KB" in str(comment["body"]).splitlines()[3]
    again = action(repo.root, source="functions/hello")  # the base as it is: no change
    assert again.code == 0, again.stdout
    [cleared] = our_comments(action.fake)
    assert cleared["id"] == comment["id"]
    assert "no function changed against `main`" in str(cleared["body"]).splitlines()[3]


def test_a_change_under_minimum_change_is_unchanged(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 2_000})
    _pr(action, repo, tmp_path)
    step = action(repo.root, source="functions/hello", minimum_change="5KB")
    assert step.code == 0, step.stdout
    assert our_comments(action.fake) == []
    assert "a change under 5.0 KB counts as unchanged" in step.outputs["comment-body"]
    bad = action(repo.root, source="functions/hello", minimum_change="a little")
    assert bad.code == 2
    assert "Invalid value for the input 'minimum-change': 'a little'" in bad.stdout


def test_per_function_keeps_a_comment_each_and_off_posts_nothing(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["alpha"], head={"alpha": 2000, "beta": 3000})
    _pr(action, repo, tmp_path)
    off = action(repo.root, source="functions/*", comment_mode="off")
    assert off.code == 0, off.stdout
    assert action.fake.requests == []
    assert off.outputs["comment-body"].startswith(combined.marker("pyfn"))
    assert off.outputs["comment-body"] in off.summary
    each = action(repo.root, source="functions/*", comment_mode="per-function")
    assert each.code == 0, each.stdout
    firsts = sorted(str(c["body"]).splitlines()[0] for c in our_comments(action.fake))
    assert firsts == [marker("alpha"), marker("beta")]
    assert each.outputs["comment-body"].startswith(marker("alpha"))  # the first function's
    assert action(repo.root, source="functions/*", comment_mode="both").code == 2


def test_keys_give_jobs_their_own_comment_or_one_to_share(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["alpha", "beta"], head={"alpha": 2000, "beta": 3000})
    _pr(action, repo, tmp_path)
    for fn in ("alpha", "beta"):  # a matrix, each job its own key
        assert action(repo.root, source=f"functions/{fn}", comment_key=f"size-{fn}").code == 0
    own = {str(c["body"]).splitlines()[0] for c in our_comments(action.fake)}
    assert own == {combined.marker("size-alpha"), combined.marker("size-beta")}
    for fn in ("alpha", "beta"):  # a matrix sharing one comment (the default key, here)
        assert action(repo.root, source=f"functions/{fn}").code == 0
    shared = [
        c for c in our_comments(action.fake) if str(c["body"]).startswith(combined.marker("pyfn"))
    ]
    assert len(shared) == 1
    assert [row.split("`")[1] for row in _rows(str(shared[0]["body"]))] == ["beta", "alpha"]


def test_the_default_key_is_the_workflows_and_the_jobs(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 2000})
    _pr(action, repo, tmp_path)
    action.env.update(GITHUB_WORKFLOW="size", GITHUB_JOB="build")
    assert action(repo.root, source="functions/hello").code == 0
    [comment] = our_comments(action.fake)
    assert str(comment["body"]).startswith(combined.marker("size/build"))


def test_a_forged_job_comment_is_left_alone(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 2000})
    _pr(action, repo, tmp_path)
    forged = action.fake.add_comment(
        OWNER, NAME, PR, combined.marker("pyfn") + "\nall fine", user="mallory"
    )
    step = action(repo.root, source="functions/hello")
    assert step.code == 0, step.stdout
    mine, theirs = our_comments(action.fake)[1], our_comments(action.fake)[0]
    assert theirs["id"] == forged["id"] and theirs["body"] == forged["body"]
    assert mine["user"]["login"] == BOT  # type: ignore[index]
    assert "written by mallory" in step.stdout


def test_the_base_is_read_from_the_cache_a_push_kept(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["alpha", "beta"], head={"alpha": 2000, "gamma": 1000})
    pushed = _push(action, repo, tmp_path, repo.base, source="functions/*")
    assert pushed.code == 0, pushed.stdout
    assert our_comments(action.fake) == []  # a push has no comment
    _pr(action, repo, tmp_path)
    step = action(repo.root, source="functions/*")
    assert step.code == 0, step.stdout
    # alpha and beta from the cache; gamma is new, so the base was checked out for it
    assert "base reports read from the cache for 2 of 3 function(s)" in step.stdout
    assert "- `alpha`: read from the Actions cache" in step.summary
    assert "- `gamma`: none" in step.summary
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert [row.split("`")[1] for row in _rows(body)] == ["gamma", "alpha"]
    assert "1 unchanged: `beta`" in body and "bases: 2 read from the cache" in body


def test_with_every_base_in_the_cache_nothing_is_built_at_the_base(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["alpha"], head={"alpha": 2000})
    assert _push(action, repo, tmp_path, repo.base, source="functions/alpha").code == 0
    _pr(action, repo, tmp_path)
    step = action(repo.root, source="functions/alpha")
    assert step.code == 0, step.stdout
    assert not any(c.startswith(BASE_BUILD) for c in step.commands)
    assert "against `main` (" + repo.base[:7] + ")" in str(our_comments(action.fake)[0]["body"])
    other = action(repo.root, source="functions/alpha", budget="1GB")  # another job's reports
    assert any(c.startswith(BASE_BUILD) for c in other.commands)


def test_a_cached_report_of_another_format_or_function_is_built_instead(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["alpha", "beta"], head={"alpha": 2000})
    assert _push(action, repo, tmp_path, repo.base, source="functions/*").code == 0
    [kept] = (tmp_path / "runner-temp").glob("pyfn-reports-*")
    alpha = json.loads((kept / "alpha.json").read_text())
    (kept / "alpha.json").write_text(json.dumps({**alpha, "version": 2}))
    beta = json.loads((kept / "beta.json").read_text())
    (kept / "beta.json").write_text(json.dumps({**beta, "function": {"name": "alpha"}}))
    _pr(action, repo, tmp_path)
    step = action(repo.root, source="functions/*")
    assert step.code == 0, step.stdout
    assert "cached base report of alpha is not usable" in step.stdout
    assert "beta.json is for 'alpha', not 'beta'" in step.stdout
    assert "- `alpha`: built at the base commit" in step.summary
    assert "- `beta`: built at the base commit" in step.summary


def test_the_outputs_follow_source_order(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["alpha"], head={"alpha": 1000, "beta": 1000})
    _pr(action, repo, tmp_path)
    source = "functions/beta\nfunctions/alpha"
    checked = action(repo.root, "--check-inputs", source=source)
    assert checked.code == 0, checked.stdout
    assert json.loads(checked.outputs["functions"]) == ["functions/beta", "functions/alpha"]
    assert checked.outputs["reports-restore-key"].startswith(f"pyfn-reports-v1-{repo.base}-")
    assert checked.outputs["reports-save-key"] == ""
    step = action(repo.root, source=source)
    assert step.code == 0, step.stdout
    assert step.outputs["bundle"] == str(repo.root / "dist" / "beta" / "bundle.zip")
    assert step.outputs["report"] == str(repo.root / "dist" / "beta" / "report.json")
    add_function(repo.root, "gamma", data=20_000_000)  # incompressible: over its budget
    (repo.root / "functions" / "gamma" / "pyfn.toml").write_text(
        'name = "gamma"\nentry_point = "gamma"\nbudget = "30MB"\n'
    )
    over = action(repo.root, source="functions/gamma\nfunctions/alpha")
    assert over.code == 9
    assert over.outputs["bundle"] == over.outputs["report"] == ""  # the first: refused
    assert int(over.outputs["compressed-bytes"]) > 30_000_000


def test_twenty_functions_one_changed_is_one_row_and_none_changed_no_comment(
    action: Action, tmp_path: Path
) -> None:
    names = [f"fn_{n:02d}" for n in range(20)]
    repo = repository(tmp_path, base=names, head={})  # the head changes no function
    assert _push(action, repo, tmp_path, repo.base, source="functions/*").code == 0
    _pr(action, repo, tmp_path)
    none = action(repo.root, source="functions/*")
    assert none.code == 0, none.stdout
    assert our_comments(action.fake) == [] and action.fake.changes() == []
    (repo.root / "functions" / "fn_07" / "more.bin").write_bytes(os.urandom(5_000))
    one = action(repo.root, source="functions/*")
    assert one.code == 0, one.stdout
    assert not any(c.startswith(BASE_BUILD) for c in one.commands)  # every base cached
    [comment] = our_comments(action.fake)
    body = str(comment["body"])
    assert len(body) < 6_000, len(body)
    assert [row.split("`")[1] for row in _rows(body)] == ["fn_07"]
    assert "19 unchanged: `fn_00`, `fn_01`" in body
