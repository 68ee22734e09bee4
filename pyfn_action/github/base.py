"""The pull request's base: the same function, checked out at the base commit.

``actions/checkout`` leaves a shallow clone of the merge commit, so the base
commit may not be there: it is fetched by SHA (``git fetch --depth=1 origin
SHA``) first. The base is checked out in a temporary ``git worktree`` and the
function is built there with the same caches, which makes it a warm build.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from pyfn_action.errors import PyfnError

log = logging.getLogger(__name__)

GIT_TIMEOUT_SECONDS = 300


class BaseUnavailable(PyfnError):
    """The base commit could not be checked out."""


def _git(args: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args], cwd=cwd, env=dict(env), capture_output=True, text=True,
            timeout=GIT_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BaseUnavailable(f"git {args[0]} failed", why=str(exc)) from None


def repository_root(path: Path, env: Mapping[str, str]) -> Path:
    result = _git(["rev-parse", "--show-toplevel"], path, env)
    if result.returncode != 0:
        raise BaseUnavailable(
            f"{path} is not in a git repository",
            why=result.stderr.strip(),
            fix="Check the repository out with actions/checkout before this step",
        )
    return Path(result.stdout.strip())


@contextlib.contextmanager
def worktree(root: Path, sha: str, env: Mapping[str, str]) -> Iterator[Path]:
    """The repository at ``sha``, in a temporary worktree removed afterwards."""
    git_env = {**env, "GIT_TERMINAL_PROMPT": "0"}
    if _git(["cat-file", "-e", f"{sha}^{{commit}}"], root, git_env).returncode != 0:
        log.info("fetching the base commit %s", sha[:12])
        fetched = _git(["fetch", "--no-tags", "--depth=1", "origin", sha], root, git_env)
        if fetched.returncode != 0:
            raise BaseUnavailable(
                f"Cannot fetch the base commit {sha[:12]}",
                why=fetched.stderr.strip().splitlines()[-1] if fetched.stderr.strip() else "",
                fix="Keep actions/checkout's credentials (persist-credentials), or give the "
                "base report with the input base-report",
            )
    parent = Path(tempfile.mkdtemp(prefix="pyfn-base-"))
    tree = parent / "tree"
    added = _git(["worktree", "add", "--detach", "--force", "--", str(tree), sha], root, git_env)
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise BaseUnavailable(f"Cannot check out the base commit {sha[:12]}",
                              why=added.stderr.strip())  # fmt: skip
    try:
        yield tree
    finally:
        _git(["worktree", "remove", "--force", "--", str(tree)], root, git_env)
        shutil.rmtree(parent, ignore_errors=True)
        _git(["worktree", "prune"], root, git_env)
