"""The Action on pull requests written by someone hostile: nothing their files say may
forge the report, steer where files are written or reach a credential."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from support.action_run import Action, our_comments, read_outputs
from support.repos import OWNER, PR, git, pull_request_event, repository

from pyfn_action.github.action import run

pytestmark = pytest.mark.e2e


def pr(action: Action, tmp_path: Path, **change: str) -> Path:
    """A pull request whose head rewrites functions/hello's pyfn.toml with ``change``."""
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    config = repo.root / "functions" / "hello" / "pyfn.toml"
    lines = [f"{key} = {json.dumps(value)}" for key, value in change.items()]
    config.write_text('entry_point = "hello"\n' + "".join(line + "\n" for line in lines))
    if "name" not in change:
        config.write_text(config.read_text() + 'name = "hello"\n')
    git(repo.root, "commit", "-qam", "hostile")
    repo.head = git(repo.root, "rev-parse", "HEAD")
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    return repo.root


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("name", "/anywhere"),
        ("name", "../../escaped"),
        ("name", ".."),
        ("out", "../escaped"),
        ("out", "/anywhere"),
        ("cache_dir", "/anywhere"),
        ("cache_dir", "../escaped-cache"),
    ],
)
def test_a_pull_requests_paths_never_lead_out(
    action: Action, tmp_path: Path, key: str, value: str
) -> None:
    value = value.replace("/anywhere", str(tmp_path / "anywhere"))
    root = pr(action, tmp_path, **{key: value})
    action.env.pop("PYFN_CACHE_DIR")  # else the workflow's own setting stands over the file's
    step = action(root, source="functions/hello")
    assert step.code == 2, step.stdout
    [error] = step.annotations("error")
    assert ("cannot name its output directory" in error) or ("leads out of" in error), error
    assert not (tmp_path / "anywhere").exists() and not (tmp_path / "escaped").exists()
    assert not (tmp_path / "escaped-cache").exists() and not (root / "dist").exists()
    assert action.fake.changes() == []


def test_a_linked_out_directory_is_refused(action: Action, tmp_path: Path) -> None:
    root = pr(action, tmp_path, out="build")
    (tmp_path / "elsewhere").mkdir()
    (root / "build").symlink_to(tmp_path / "elsewhere")
    step = action(root, source="functions/hello")
    assert step.code == 2, step.stdout
    assert "leads out of the working directory" in step.annotations("error")[0]
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_the_workflows_own_out_is_trusted(action: Action, tmp_path: Path) -> None:
    root = pr(action, tmp_path)
    out = tmp_path / "workflow-out"
    step = action(root, source="functions/hello", config=f"out = {json.dumps(str(out))}")
    assert step.code == 0, step.stdout
    assert Path(step.outputs["bundle"]) == out / "bundle.zip"
    assert "against `main`" in str(our_comments(action.fake)[0]["body"])


def test_the_base_is_built_where_the_action_chooses(action: Action, tmp_path: Path) -> None:
    """A base build never lands in a directory a name from the head could point at."""
    root = pr(action, tmp_path, name="dist")
    step = action(root, source="functions/hello")
    assert step.code == 0, step.stdout
    bundle = Path(step.outputs["bundle"])
    assert bundle == root / "dist" / "bundle.zip"
    report = json.loads(Path(step.outputs["report"]).read_text())
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == step.outputs["sha256"]
    assert report["bundle"]["sha256"] == step.outputs["sha256"]
    assert sorted(p.name for p in (root / "dist").iterdir()) == [
        "bundle.zip", "comment.md", "report.json",
    ]  # fmt: skip
    [comment] = our_comments(action.fake)
    assert str(comment["body"]).startswith("<!-- pyfn-size-report: dist -->")
    assert f"/{OWNER}/" in action.fake.changes()[0].path and PR


@pytest.mark.parametrize("requirements", ["/etc/hostname", "../../outside.txt", "linked.txt"])
def test_the_cache_key_reads_nothing_outside_the_source(
    action: Action, tmp_path: Path, requirements: str
) -> None:
    root = pr(action, tmp_path)
    src = root / "functions" / "hello"
    config = src / "pyfn.toml"
    (tmp_path / "outside.txt").write_text("idna\n")
    (src / "linked.txt").symlink_to(tmp_path / "outside.txt")
    config.write_text(config.read_text() + f"requirements = {json.dumps(requirements)}\n")
    env = {**action.env, "INPUT_SOURCE": "functions/hello",
           "GITHUB_OUTPUT": str(tmp_path / "out")}  # fmt: skip
    out = io.StringIO()
    code = run(["--cache-key"], env, out, cwd=root)
    assert code in (2, 5), out.getvalue()
    assert "Traceback" not in out.getvalue()
    [error] = [line for line in out.getvalue().splitlines() if line.startswith("::error")]
    assert requirements.split("/")[-1] in error, error
    assert re.search(r"not a path relative to|leads out of|outside the source tree", error), error
    assert read_outputs(tmp_path / "out") == {}
