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
from support.envspy import SECRETS, envspy, job_credentials, judge
from support.git_http import git_server
from support.repos import OWNER, PR, Repo, add_function, git, pull_request_event, repository

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


@pytest.mark.parametrize("link", ["build", "dist", "dist/hello"])
def test_a_linked_out_directory_is_refused(action: Action, tmp_path: Path, link: str) -> None:
    """The repository holds its out directory (set, or the default) as a link out of it."""
    root = pr(action, tmp_path, **({"out": "build"} if link == "build" else {}))
    source = "functions/hello"
    if link == "dist/hello":  # several functions are built into dist/NAME
        add_function(root, "other")
        source = "functions/*"
    (tmp_path / "elsewhere").mkdir()
    (root / link).parent.mkdir(exist_ok=True)
    (root / link).symlink_to(tmp_path / "elsewhere")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a link")
    action.env["GITHUB_EVENT_PATH"] = str(
        pull_request_event(
            Repo(root, action_base(root), git(root, "rev-parse", "HEAD")), tmp_path / "event.json"
        )
    )
    step = action(root, source=source)
    assert step.code == 2, step.stdout
    assert "leads out of the working directory" in step.annotations("error")[0]
    assert list((tmp_path / "elsewhere").iterdir()) == []


def action_base(root: Path) -> str:
    return git(root, "rev-list", "--max-parents=0", "HEAD")


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
    step = action(root, source="functions/hello", comment_mode="per-function")
    assert step.code == 0, step.stdout
    bundle = Path(step.outputs["bundle"])
    assert bundle == root / "dist" / "bundle.zip"
    report = json.loads(Path(step.outputs["report"]).read_text())
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() == step.outputs["sha256"]
    assert report["bundle"]["sha256"] == step.outputs["sha256"]
    assert sorted(p.name for p in (root / "dist").iterdir()) == [
        "bundle.zip",
        "comment.md",
        "report.json",
    ]
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
    env = {**action.env, "INPUT_SOURCE": "functions/hello", "GITHUB_OUTPUT": str(tmp_path / "out")}
    out = io.StringIO()
    code = run(["--cache-key"], env, out, cwd=root)
    assert code in (2, 5), out.getvalue()
    assert "Traceback" not in out.getvalue()
    [error] = [line for line in out.getvalue().splitlines() if line.startswith("::error")]
    assert requirements.split("/")[-1] in error, error
    assert re.search(r"not a path relative to|leads out of|outside the source tree", error), error
    assert read_outputs(tmp_path / "out") == {}


# --- events whose checkout would give a wrong answer ----------------------------------


def test_pull_request_target_checks_out_the_base_and_is_refused(
    action: Action, tmp_path: Path
) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000, "extra": 10})
    git(repo.root, "checkout", "-q", repo.base)  # what actions/checkout does there
    action.env["GITHUB_EVENT_NAME"] = "pull_request_target"
    event = pull_request_event(repo, tmp_path / "event.json")
    action.env["GITHUB_EVENT_PATH"] = str(event)
    step = action(repo.root, source="functions/*")
    assert step.code == 2, step.stdout
    [error] = step.annotations("error")
    assert f"{repo.base[:12]} is neither the head of pull request #{PR}" in error
    assert "pull_request_target actions/checkout checks out the base branch" in error
    assert "workflow_run" in error
    assert action.fake.requests == [] and not (repo.root / "dist").exists()


def test_a_checkout_of_another_commit_is_refused(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    (repo.root / "other.txt").write_text("another commit\n")
    git(repo.root, "add", "other.txt")
    git(repo.root, "commit", "-qm", "not the pull request")
    step = action(repo.root, source="functions/hello")
    assert step.code == 2, step.stdout
    assert "is neither the head of pull request" in step.annotations("error")[0]
    assert action.fake.requests == []


def test_the_merge_commit_of_a_shallow_checkout_is_the_pull_requests(
    action: Action, tmp_path: Path
) -> None:
    """actions/checkout's default: refs/pull/N/merge, one commit deep."""
    repo = repository(tmp_path, base=["hello"], head={"hello": 3000})
    git(repo.root, "config", "uploadpack.allowReachableSHA1InWant", "true")
    git(repo.root, "checkout", "-q", "-b", "merge", repo.base)
    (repo.root / "NOTES.md").write_text("on main meanwhile\n")
    git(repo.root, "add", "NOTES.md")
    git(repo.root, "commit", "-qm", "main moved")
    git(repo.root, "merge", "-q", "--no-ff", "-m", "Merge into main", repo.head)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "--depth=1", "--branch=merge", f"file://{repo.root}", str(clone))
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(clone, source="functions/hello")
    assert step.code == 0, step.stdout
    assert "against `main`" in str(our_comments(action.fake)[0]["body"])


def test_deploy_on_a_pull_request_is_refused(action: Action, tmp_path: Path) -> None:
    repo = repository(tmp_path, base=["hello"], head={"hello": 1000})
    action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
    step = action(
        repo.root,
        source="functions/hello",
        deploy="true",
        project="p",
        region="us-central1",
        bucket="b",
    )
    assert step.code == 2, step.stdout
    assert "deploy is true on a pull_request event" in step.annotations("error")[0]
    assert action.fake.requests == [] and not (repo.root / "dist").exists()


@pytest.mark.parametrize("right_token", [True, False])
def test_a_private_base_is_fetched_with_the_token_and_never_stored(
    action: Action, tmp_path: Path, right_token: bool
) -> None:
    """persist-credentials: false leaves the clone without credentials."""
    repo = repository(tmp_path, base=["hello"], head={"hello": 5000})
    projects = tmp_path / "served"
    projects.mkdir()
    bare = projects / "fns.git"
    git(tmp_path, "clone", "-q", "--bare", str(repo.root), str(bare))
    git(bare, "config", "uploadpack.allowReachableSHA1InWant", "true")
    token = "ghs_private-repo-token"  # noqa: S105 - the test server's
    with git_server(projects, token) as server:
        header = f"http.{server.base}/.extraheader=AUTHORIZATION: {server.basic()}"
        clone = tmp_path / "clone"
        git(
            tmp_path, "-c", header, "clone", "-q", "--depth=1", f"{server.base}/fns.git", str(clone)
        )
        git(clone, "-c", header, "fetch", "-q", "--depth=1", "origin", repo.head)
        git(clone, "checkout", "-q", repo.head)
        assert server.served > 0
        action.env.update(GITHUB_SERVER_URL=server.base, GIT_TERMINAL_PROMPT="0")
        action.env["GITHUB_EVENT_PATH"] = str(pull_request_event(repo, tmp_path / "event.json"))
        given = token if right_token else "ghs_wrong-token"
        action.fake.token = given
        refused = server.refused
        step = action(clone, source="functions/hello", github_token=given)
    assert step.code == 0, step.stdout
    assert server.refused > refused  # first without the token, as the checkout left it
    body = str(our_comments(action.fake)[0]["body"])
    files = [p for p in clone.rglob("*") if p.is_file()]
    assert not any(given.encode() in p.read_bytes() for p in files)  # .git/config included
    said = [line for line in step.stdout.splitlines() if not line.startswith("::add-mask::")]
    assert not any(given in line for line in said)
    if right_token:
        assert "against `main`" in body and step.annotations("warning") == []
    else:
        [warning] = step.annotations("warning")
        assert "Cannot fetch the base commit" in warning
        assert "git fetch said: fatal: " in warning
        assert "against `main`" not in body


def test_the_cache_key_follows_a_local_packages_files(action: Action, tmp_path: Path) -> None:
    """A changed local package is a changed key, as it is for the installed site."""
    root = pr(action, tmp_path)
    src = root / "functions" / "hello"
    (src / "pkg").mkdir()
    (src / "pkg" / "setup.py").write_text("from setuptools import setup\nsetup(name='pkg')\n")
    (src / "requirements.txt").write_text("./pkg\n")
    env = {**action.env, "INPUT_SOURCE": "functions/hello", "GITHUB_OUTPUT": str(tmp_path / "out")}

    def key() -> str:
        (tmp_path / "out").unlink(missing_ok=True)
        assert run(["--cache-key"], env, io.StringIO(), cwd=root) == 0
        return read_outputs(tmp_path / "out")["key"]

    first = key()
    assert key() == first
    (src / "pkg" / "module.py").write_text("VALUE = 1\n")
    second = key()
    (src / "pkg" / "module.py").write_text("VALUE = 2\n")
    assert len({first, second, key()}) == 3


# --- what the pull request's code can see ---------------------------------------------


def test_a_pull_requests_build_script_sees_no_credential(action: Action, tmp_path: Path) -> None:
    """The pull request adds a local package whose setup.py writes out its environment;
    the job holds the token, the OIDC request variables and Google credentials."""
    seen = tmp_path / "seen.jsonl"
    root = pr(action, tmp_path)
    src = root / "functions" / "hello"
    envspy(src / "envspy", seen)
    (src / "requirements.txt").write_text("./envspy\n")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "a local package")
    head = git(root, "rev-parse", "HEAD")
    event = json.loads(Path(action.env["GITHUB_EVENT_PATH"]).read_text())
    event["pull_request"]["head"]["sha"] = head
    Path(action.env["GITHUB_EVENT_PATH"]).write_text(json.dumps(event))
    held = job_credentials(tmp_path)
    action.env.update({k: v for k, v in held.items() if k != "INPUT_GITHUB-TOKEN"})
    step = action(root, source="functions/hello", secrets="DB=projects/p/secrets/db:1")
    assert step.code == 0, step.stdout
    held |= {
        "INPUT_SECRETS": "projects/p/secrets/db:1",
        "INPUT_GITHUB-TOKEN": action.env["INPUT_GITHUB-TOKEN"],
    }
    assert judge(seen, held, {}) == {"pypy"}
    assert SECRETS["GITHUB_TOKEN"] not in seen.read_text()
    assert our_comments(action.fake)  # and the comment was still posted with the token
