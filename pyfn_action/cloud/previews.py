"""Preview functions: one per function and pull request, named, labelled, found and deleted.

A preview is an ordinary Cloud Functions function with a name of its own
(``hello-pr-42``) and labels that say whose preview it is::

    pyfn-preview = "true"
    pyfn-preview-repo = "octo-app-1a2b3c4d"   (the repository, made a label value)
    pyfn-preview-pr = "42"
    pyfn-preview-function = "hello"

The labels are the only proof that a function is a preview: a function that
exists under a preview's name without them (a real function, or another pull
request's preview) is never updated or deleted. Previews are found by listing
the project's functions in every region (``locations/-``) and reading their
labels, so a preview is deleted wherever it was deployed. Nothing here builds or
uploads: :mod:`pyfn_action.flows.previews` runs the deploy.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from pyfn_action.cloud.api_errors import api_error
from pyfn_action.cloud.apply import VERSIONS, wait_for
from pyfn_action.cloud.rules import FunctionAddress
from pyfn_action.errors import ConfigError, DeployError, PyfnError
from pyfn_action.runtime.targets import Generation, generations

log = logging.getLogger(__name__)

LABEL = "pyfn-preview"
REPO_LABEL = "pyfn-preview-repo"
PR_LABEL = "pyfn-preview-pr"
FUNCTION_LABEL = "pyfn-preview-function"
LABELS = (LABEL, REPO_LABEL, PR_LABEL, FUNCTION_LABEL)
DEFAULT_MAX_INSTANCES = 1
_AGE = re.compile(r"^\s*(\d+)\s*(m|h|d|w)\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# --- names and labels ---------------------------------------------------------------


def preview_name(function: str, pull: int) -> str:
    """The preview's function name: ``hello-pr-42``.

    It follows every generation's name rule. A name that has to change to follow
    them (``My_Func``), or that would be too long, gets a short hash of the
    function's name, so two functions never share a preview name.
    """
    suffix = f"-pr-{pull}"
    most = min(g.name_max_length for g in generations())
    slug = re.sub(r"[^a-z0-9]+", "-", function.lower()).strip("-")
    if not slug[:1].isalpha():
        slug = ("fn-" + slug).rstrip("-")
    room = most - len(suffix)
    if slug == function and len(slug) <= room:
        return slug + suffix
    digest = hashlib.sha256(function.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return f"{slug[: room - len(digest) - 1].rstrip('-')}-{digest}{suffix}"


def repository_label(repository: str) -> str:
    """A repository (``Octo/App.js``) as a label value: its name in the characters labels
    allow, and a hash of the exact name (two repositories never share a value)."""
    digest = hashlib.sha256(repository.lower().encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9_-]+", "-", repository.lower()).strip("-")
    return f"{slug[:54]}-{digest}"


def preview_labels(repository: str, pull: int, function: str) -> dict[str, str]:
    """The labels a preview carries."""
    return {
        LABEL: "true",
        REPO_LABEL: repository_label(repository),
        PR_LABEL: str(pull),
        FUNCTION_LABEL: re.sub(r"[^a-z0-9_-]+", "-", function.lower())[:63],
    }


def is_preview(labels: Mapping[str, str]) -> bool:
    return labels.get(LABEL) == "true" and bool(labels.get(PR_LABEL))


def is_preview_of(labels: Mapping[str, str], repository: str, pull: int | None) -> bool:
    """Whether ``labels`` say: a preview of ``repository`` (of its pull request ``pull``,
    unless ``None``: any of its pull requests)."""
    if not is_preview(labels) or labels.get(REPO_LABEL) != repository_label(repository):
        return False
    return pull is None or labels.get(PR_LABEL) == str(pull)


def parse_age(text: str) -> timedelta:
    """``--older-than``: ``30m``, ``12h``, ``7d`` or ``2w``."""
    m = _AGE.match(text)
    if not m or int(m[1]) == 0:
        raise ConfigError(
            f"{text!r} is not an age",
            fix="Write a whole number and a unit: 30m, 12h, 7d or 2w",
        )
    return timedelta(**{_UNITS[m[2]]: int(m[1])})


# --- finding previews -----------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    """A preview function as listed: where it is, whose it is, and when it last changed."""

    path: str  # projects/P/locations/R/functions/NAME
    gen: int
    state: str
    url: str | None
    labels: Mapping[str, str]
    updated: datetime | None

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[1]

    @property
    def region(self) -> str:
        return self.path.split("/")[3]

    @property
    def pull(self) -> int | None:
        value = self.labels.get(PR_LABEL, "")
        return int(value) if value.isdigit() else None

    def age(self, now: datetime) -> timedelta | None:
        return None if self.updated is None else now - self.updated

    def to_dict(self, now: datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "name": self.name,
            "function": self.path,
            "region": self.region,
            "gen": self.gen,
            "state": self.state,
            "url": self.url,
            "repository": self.labels.get(REPO_LABEL, ""),
            "pull_request": self.pull,
            "source_function": self.labels.get(FUNCTION_LABEL, ""),
            "updated": self.updated.isoformat() if self.updated else None,
            "age_seconds": int(age.total_seconds()) if age is not None else None,
        }


def find(api: Any, project: str, gen: Generation) -> list[Listed]:
    """Every preview function of ``project`` that the API of ``gen`` lists, in every
    region; a v2 listing leaves out the 1st gen functions it also shows."""
    version = VERSIONS[gen.api_version]
    parent = f"projects/{project}/locations/-"
    found = []
    try:
        for function in api.list_functions(request={"parent": parent}):
            labels = dict(function.labels or {})
            other = version.other_generation(function)
            if not is_preview(labels) or (other is not None and other != gen.gen):
                continue
            found.append(
                Listed(
                    path=function.name,
                    gen=gen.gen,
                    state=version.state(function),
                    url=version.url(function),
                    labels=labels,
                    updated=_time(function.update_time),
                )
            )
    except Exception as exc:
        raise api_error(
            exc,
            doing=f"listing the functions of {project}",
            kind=DeployError,
            project=project,
            gen=gen.gen,
        ) from None
    return sorted(found, key=lambda f: f.path)


def _time(value: Any) -> datetime | None:
    """A listed timestamp (proto-plus gives a datetime) in UTC, or ``None``."""
    if not isinstance(value, datetime) or value.timestamp() <= 0:
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def check_owner(existing: Any, name: str, repository: str, pull: int) -> None:
    """A function already under the preview's name must be this pull request's preview."""
    if existing is None:
        return
    labels = dict(getattr(existing, "labels", None) or {})
    if is_preview_of(labels, repository, pull):
        return
    whose = (
        f"the preview of pull request #{labels.get(PR_LABEL)} of another repository"
        if is_preview(labels) and labels.get(PR_LABEL) == str(pull)
        else f"a preview of pull request #{labels.get(PR_LABEL)}"
        if is_preview(labels)
        else "a function that is not a preview (it has no pyfn-preview labels)"
    )
    raise DeployError(
        f"A function named {name} exists and is not this pull request's preview",
        why=f"it is {whose}; pyfn never changes a function it did not make as this preview",
        fix="Rename the function in pyfn.toml (name = ...) or delete that function yourself "
        "if it is stale",
    )


# --- deleting -------------------------------------------------------------------------


@dataclass(frozen=True)
class Deleted:
    """What became of one preview: deleted, or why not."""

    listed: Listed
    error: PyfnError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def delete(
    api: Any,
    previews: list[Listed],
    gen: Generation,
    *,
    timeout: float,
    say: Callable[[str], None] = log.info,
) -> Iterator[Deleted]:
    """Delete each preview and wait for it; a failure is reported and the rest go on."""
    version = VERSIONS[gen.api_version]
    for preview in previews:
        project = preview.path.split("/")[1]
        address = FunctionAddress(project, preview.region, preview.name)
        if preview.state in version.busy:
            say(f"{preview.name} is {preview.state}: another operation is running on it")
        try:
            operation = api.delete_function(request={"name": preview.path})
        except Exception as exc:
            from google.api_core import exceptions as gexc

            if isinstance(exc, gexc.NotFound):
                say(f"{preview.name} was already gone")
                yield Deleted(preview)
                continue
            yield Deleted(
                preview,
                api_error(
                    exc,
                    doing=f"deleting function {preview.name}",
                    kind=DeployError,
                    project=project,
                    region=preview.region,
                    gen=gen.gen,
                ),
            )
            continue
        say(f"Deleting {preview.path}")
        try:
            wait_for(operation, address, gen, timeout=timeout, say=say, verb="deletion")
        except PyfnError as exc:
            yield Deleted(preview, exc)
            continue
        yield Deleted(preview)
