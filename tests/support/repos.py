"""Git repositories for the Action's tests: a base commit, a head commit, and the
pull request event that joins them, shaped as GitHub writes it."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

OWNER, NAME = "acme", "fns"
PR = 7
MAIN_PY = """import functions_framework


@functions_framework.http
def {name}(request):
    return "Hello from {name}!\\n"
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.test",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.test",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(root: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return result.stdout.strip()


def add_function(root: Path, name: str, *, data: int = 0) -> Path:
    src = root / "functions" / name
    src.mkdir(parents=True, exist_ok=True)
    (src / "main.py").write_text(MAIN_PY.format(name=name))
    (src / "pyfn.toml").write_text(f'name = "{name}"\nentry_point = "{name}"\n')
    if data:
        (src / "data.bin").write_bytes(os.urandom(data))  # incompressible: the size moves
    return src


@dataclass
class Repo:
    root: Path
    base: str
    head: str


def repository(tmp_path: Path, base: list[str], head: dict[str, int]) -> Repo:
    """A repository whose base commit has the functions in ``base`` and whose head
    (checked out) adds ``head`` (function name → bytes of data added)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "README.md").write_text("functions\n")
    for name in base:
        add_function(root, name)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    base_sha = git(root, "rev-parse", "HEAD")
    for name, size in head.items():
        add_function(root, name, data=size)
    (root / "README.md").write_text("functions, changed\n")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "head")
    return Repo(root, base_sha, git(root, "rev-parse", "HEAD"))


def pull_request_event(
    repo: Repo, path: Path, *, fork: bool = False, action: str = "synchronize"
) -> Path:
    head_repo = f"someone/{NAME}" if fork else f"{OWNER}/{NAME}"
    payload = {
        "action": action,
        "number": PR,
        "pull_request": {
            "number": PR,
            "base": {"sha": repo.base, "ref": "main", "repo": {"full_name": f"{OWNER}/{NAME}"}},
            "head": {"sha": repo.head, "ref": "feature", "repo": {"full_name": head_repo}},
        },
        "repository": {"full_name": f"{OWNER}/{NAME}"},
    }
    path.write_text(json.dumps(payload))
    return path
