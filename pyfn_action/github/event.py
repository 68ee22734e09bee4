"""The event that started the job (``GITHUB_EVENT_PATH``), read and checked.

Only what the Action needs is kept, each value checked for its shape: the
payload of a pull request is written by whoever opened it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfn_action.errors import ConfigError

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
REPOSITORY = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
PULL_REQUEST_EVENTS = ("pull_request", "pull_request_target")


@dataclass(frozen=True)
class Event:
    name: str  # GITHUB_EVENT_NAME: push, pull_request, workflow_dispatch, …
    repository: str  # owner/name
    pull_number: int | None = None
    base_sha: str | None = None
    base_ref: str | None = None
    head_sha: str | None = None
    head_repository: str | None = None  # owner/name of the head: a fork if not ``repository``
    sha: str | None = None  # GITHUB_SHA: the commit a push built
    ref: str | None = None  # GITHUB_REF: refs/heads/main, …
    default_branch: str | None = None  # the repository's, as the push payload says
    action: str | None = None  # a pull request event's activity: opened, synchronize, closed…

    @property
    def pushed_to_default_branch(self) -> bool:
        """A push to the repository's default branch: what a pull request's base is."""
        return (
            self.name == "push"
            and self.default_branch is not None
            and self.sha is not None
            and self.ref == f"refs/heads/{self.default_branch}"
        )

    @property
    def is_pull_request(self) -> bool:
        return self.pull_number is not None

    @property
    def from_fork(self) -> bool:
        return self.head_repository is not None and self.head_repository != self.repository

    @property
    def from_this_repository(self) -> bool:
        """The head branch is this repository's (a deleted fork's head is not known: no)."""
        return self.head_repository is not None and (
            self.head_repository.lower() == self.repository.lower()
        )

    @property
    def closed(self) -> bool:
        return self.is_pull_request and self.action == "closed"


def read_event(env: Mapping[str, str]) -> Event:
    """The event, from the runner's variables; a malformed file is a clear error."""
    name = env.get("GITHUB_EVENT_NAME", "")
    repository = env.get("GITHUB_REPOSITORY", "")
    if repository and not REPOSITORY.match(repository):
        raise _bad("GITHUB_REPOSITORY", f"{repository!r} is not OWNER/NAME")
    path = env.get("GITHUB_EVENT_PATH", "")
    if name == "push":
        return _push(name, repository, env, path)
    if name not in PULL_REQUEST_EVENTS or not path:
        return Event(name=name, repository=repository)
    payload = _load(Path(path))
    pull = payload.get("pull_request")
    if not isinstance(pull, dict):
        raise _bad(path, f"a {name} event without a pull_request object")
    number = pull.get("number", payload.get("number"))
    if isinstance(number, bool) or not isinstance(number, int) or number <= 0:
        raise _bad(path, f"pull_request.number is {number!r}, not a positive number")
    base, head = _side(pull, "base", path), _side(pull, "head", path)
    return Event(
        name=name,
        repository=repository or _full_name(base, path) or "",
        pull_number=number,
        base_sha=_sha(base, "base", path),
        base_ref=_ref(base),
        head_sha=_sha(head, "head", path),
        head_repository=_full_name(head, path),
        action=_action(payload),
    )


def _action(payload: Mapping[str, Any]) -> str | None:
    action = payload.get("action")
    return action if isinstance(action, str) and re.fullmatch(r"[a-z_]{1,40}", action) else None


def _push(name: str, repository: str, env: Mapping[str, str], path: str) -> Event:
    sha = env.get("GITHUB_SHA", "")
    ref = env.get("GITHUB_REF", "")
    try:  # only the default branch is read; a push builds without it
        repo = _load(Path(path)).get("repository") if path else None
    except ConfigError:
        repo = None
    branch = repo.get("default_branch") if isinstance(repo, dict) else None
    return Event(
        name=name,
        repository=repository,
        sha=sha if _SHA.match(sha) else None,
        ref=ref if ref.startswith("refs/") and len(ref) <= 255 else None,
        default_branch=branch if isinstance(branch, str) and 0 < len(branch) <= 255 else None,
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise _bad(str(path), exc.strerror or str(exc)) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise _bad(str(path), f"not JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise _bad(str(path), "not a JSON object")
    return payload


def _side(pull: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
    side = pull.get(key)
    if not isinstance(side, dict):
        raise _bad(path, f"pull_request.{key} is missing")
    return side


def _sha(side: Mapping[str, Any], key: str, path: str) -> str:
    sha = side.get("sha")
    if not isinstance(sha, str) or not _SHA.match(sha):
        raise _bad(path, f"pull_request.{key}.sha is {sha!r}, not a commit SHA")
    return sha


def _ref(side: Mapping[str, Any]) -> str | None:
    ref = side.get("ref")
    return ref if isinstance(ref, str) and ref and len(ref) <= 255 else None


def _full_name(side: Mapping[str, Any], path: str) -> str | None:
    repo = side.get("repo")
    name = repo.get("full_name") if isinstance(repo, dict) else None
    if name is None:
        return None  # a deleted fork has no repo
    if not isinstance(name, str) or not REPOSITORY.match(name):
        raise _bad(path, f"a repository name {name!r} that is not OWNER/NAME")
    return name


def _bad(where: str, why: str) -> ConfigError:
    return ConfigError(
        f"Cannot read the GitHub event from {where}",
        why=why,
        fix="Run the Action from a workflow (the runner writes GITHUB_EVENT_PATH), or point "
        "GITHUB_EVENT_PATH at a real event payload",
    )
