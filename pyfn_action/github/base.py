"""The pull request's base: the same functions, built at the base commit, for the
size comparison (or a report given with the input ``base-report``).

``actions/checkout`` leaves a shallow clone of the merge commit, so the base
commit may not be there: it is fetched by SHA (``git fetch --depth=1 origin
SHA``) first. The base is checked out in a temporary ``git worktree`` and the
function is built there with the same caches, which makes it a warm build.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from pyfn_action.config import Config, resolve
from pyfn_action.errors import (
    BaseUnavailable,
    BudgetExceeded,
    PyfnError,
    ReportError,
    WrongCheckout,
)
from pyfn_action.flows.jobs import build_function
from pyfn_action.github.event import Event
from pyfn_action.github.inputs import Inputs
from pyfn_action.github.workflow import Runner
from pyfn_action.report.model import Report
from pyfn_action.report.model import load as load_report
from pyfn_action.report.render import code_text

log = logging.getLogger(__name__)

GIT_TIMEOUT_SECONDS = 300


def _git(args: list[str], cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
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


def require_pull_request_commit(event: Event, workdir: Path, env: Mapping[str, str]) -> str:
    """The checked-out commit, if it is the pull request's head or its merge commit.

    On ``pull_request_target``, ``actions/checkout`` checks out the base branch:
    building that and comparing it with the base would report "unchanged" on any
    pull request. A merge commit is known by its parents, read from the commit
    itself (a shallow clone has the object, not its parents).
    """
    assert event.head_sha is not None
    fix = (
        "Build the pull request's code on the pull_request event (actions/checkout then "
        "checks out its merge commit), and post from a workflow_run workflow where the "
        "token must write (README: Pull requests from forks)"
    )
    try:
        root = repository_root(workdir, env)
    except BaseUnavailable as exc:
        raise WrongCheckout(
            f"Cannot tell which commit is checked out in {workdir}", why=exc.why, fix=fix
        ) from None
    head = _git(["rev-parse", "--verify", "HEAD^{commit}"], root, env).stdout.strip()
    raw = _git(["cat-file", "commit", head], root, env).stdout if head else ""
    parents = [
        line.split()[1] for line in raw.split("\n\n")[0].splitlines() if line.startswith("parent ")
    ]
    if head == event.head_sha or (len(parents) > 1 and event.head_sha in parents):
        return head
    raise WrongCheckout(
        f"The checked-out commit {head[:12] or '(none)'} is neither the head of pull request "
        f"#{event.pull_number} ({event.head_sha[:12]}) nor its merge commit",
        why=f"on {event.name} the size report would compare some other commit with the base"
        + (
            ", and on pull_request_target actions/checkout checks out the base branch"
            if event.name == "pull_request_target"
            else ""
        ),
        fix=fix,
    )


@contextlib.contextmanager
def worktree(root: Path, sha: str, env: Mapping[str, str], *, token: str = "") -> Iterator[Path]:
    """The repository at ``sha``, in a temporary worktree removed afterwards."""
    git_env = {**env, "GIT_TERMINAL_PROMPT": "0"}
    if _git(["cat-file", "-e", f"{sha}^{{commit}}"], root, git_env).returncode != 0:
        _fetch(root, sha, git_env, token)
    parent = Path(tempfile.mkdtemp(prefix="pyfn-base-"))
    tree = parent / "tree"
    added = _git(["worktree", "add", "--detach", "--force", "--", str(tree), sha], root, git_env)
    if added.returncode != 0:
        shutil.rmtree(parent, ignore_errors=True)
        raise BaseUnavailable(
            f"Cannot check out the base commit {sha[:12]}", why=added.stderr.strip()
        )
    try:
        yield tree
    finally:
        _git(["worktree", "remove", "--force", "--", str(tree)], root, git_env)
        shutil.rmtree(parent, ignore_errors=True)
        _git(["worktree", "prune"], root, git_env)


def _fetch(root: Path, sha: str, env: Mapping[str, str], token: str) -> None:
    """``git fetch`` the commit; where the checkout kept no credentials
    (``persist-credentials: false``), again with the token, as an HTTP header that
    lives in this one command's environment: never on disk, never in an argument."""
    log.info("fetching the base commit %s", sha[:12])
    command = ["fetch", "--no-tags", "--depth=1", "origin", sha]
    fetched = _git(command, root, env)
    if fetched.returncode != 0 and token:
        log.info("fetching it again with the github-token input")
        fetched = _git(command, root, {**env, **_auth_config(env, token)})
    if fetched.returncode != 0:
        said = fetched.stderr.strip().replace(token, "***") if token else fetched.stderr.strip()
        raise BaseUnavailable(
            f"Cannot fetch the base commit {sha[:12]}",
            why=f"git fetch said: {said}" if said else "",
            fix="Give the Action a github-token that may read the repository (contents: "
            "read), keep actions/checkout's credentials, or give the base report with the "
            "input base-report",
        )


def _auth_config(env: Mapping[str, str], token: str) -> dict[str, str]:
    """The header actions/checkout would persist, scoped to the GitHub server, as
    ``GIT_CONFIG_*`` variables (git 2.31+)."""
    server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/") + "/"
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    count = int(env.get("GIT_CONFIG_COUNT", "0") or 0)
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": f"http.{server}.extraheader",
        f"GIT_CONFIG_VALUE_{count}": f"AUTHORIZATION: basic {basic}",
    }


def base_label(event: Event) -> str:
    """The base as a reviewer reads it: ```main` (1a2b3c4)``."""
    return f"`{code_text(event.base_ref or 'base')}` ({(event.base_sha or '')[:7]})"


def base_reports(
    inputs: Inputs,
    event: Event,
    functions: Sequence[tuple[str, Path]],
    env: Mapping[str, str],
    runner: Runner,
    after_build: Callable[[str, Config, Path], None] | None = None,
) -> tuple[str, dict[str, Report | None]]:
    """Each function's report at the base (``None``: not there), and how to name the base;
    ``functions`` are (name, source directory) pairs. ``after_build`` is called with each
    function built at the base (its name, its settings there and its bundle) while the
    base is still checked out.

    A function missing from the mapping has no comparison (not a pull request,
    or its base could not be built).
    """
    if not event.is_pull_request or event.base_sha is None or not functions:
        return "", {}
    label = base_label(event)
    bases: dict[str, Report | None] = {}
    with runner.group(f"pyfn: build at the base, {event.base_ref or ''} {event.base_sha[:12]}"):
        try:
            root = repository_root(inputs.workdir, env)
            with ExitStack() as stack:
                tree = stack.enter_context(worktree(root, event.base_sha, env, token=inputs.token))
                out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pyfn-base-")))
                for index, (name, source) in enumerate(functions):
                    # A directory the Action names: never one a pull request's name steers.
                    built = out / f"function-{index}"
                    known, base = _base_report(
                        name, source, root, tree, built, inputs, env, after_build
                    )
                    if known:
                        bases[name] = base
        except BaseUnavailable as exc:
            runner.warning(f"No size comparison with the base: {exc.message}", title="pyfn")
    return label, bases


def _base_report(
    name: str,
    source: Path,
    root: Path,
    tree: Path,
    out: Path,
    inputs: Inputs,
    env: Mapping[str, str],
    after_build: Callable[[str, Config, Path], None] | None = None,
) -> tuple[bool, Report | None]:
    """Whether the base is known and, if so, the function's report there (``None``: new)."""
    try:
        relative = source.relative_to(root.resolve())
    except ValueError:
        return False, None
    at_base = tree / relative
    if not (at_base / "main.py").is_file() and not (at_base / "pyfn.toml").is_file():
        return True, None
    try:
        config = resolve(at_base, env=env, flags=inputs.flags)
        config = dataclasses.replace(config, out=out, dry_run=False)
        result = build_function(config, env)
        report = result.report
        if after_build is not None and result.bundle is not None:
            after_build(name, config, Path(result.bundle))
    except BudgetExceeded as exc:
        report = exc.report
    except PyfnError as exc:
        log.warning("%s could not be built at the base: %s", name, exc.message)
        return False, None
    return (True, report) if report is not None else (False, None)


def load_base_report(path: Path) -> Report:
    """The report given with the input ``base-report``."""
    try:
        return load_report(path)
    except ReportError as exc:
        raise ReportError(
            f"The input 'base-report': {exc.what}", why=exc.why, fix=exc.fix
        ) from None
