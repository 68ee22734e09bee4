"""Preview deploys: a pull request's functions, each running as its own function.

``pyfn preview deploy`` and the Action's ``preview: true`` build the function
as ever and deploy that very bundle under the preview's name
(:func:`pyfn_action.cloud.previews.preview_name`), with the function's
settings, ``min_instances = 0``, a small ``max_instances`` and the labels that
say whose preview it is. ``pyfn preview delete`` (and a closed pull request)
finds previews by those labels and deletes them; ``pyfn preview list`` shows
them. Only the command line and the workflow decide the preview's size and
whether anyone may call it, never the repository's ``pyfn.toml``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from pyfn_action.config import Config, DeploySettings
from pyfn_action.errors import ConfigError, DeployError
from pyfn_action.flows.jobs import DeployInputs, deploy_function, prepare_deploy
from pyfn_action.progress import ProgressFactory, silent

if TYPE_CHECKING:
    from pyfn_action.cloud.previews import Deleted, Listed
    from pyfn_action.flows.jobs import DeployOutcome

log = logging.getLogger(__name__)

EVENT_SIGNATURES = ("cloudevent", "event")
DELETE_TIMEOUT = 600.0


@dataclass(frozen=True)
class PreviewTarget:
    """Whose preview, and the settings only the workflow (or the command line) decides."""

    repository: str  # OWNER/NAME
    pull: int
    max_instances: int = 1
    public: bool = False  # allUsers may call it (allow-unauthenticated)

    def __post_init__(self) -> None:
        if self.pull <= 0:
            raise ConfigError(f"{self.pull} is not a pull request number", fix="Pass --pr N")
        if not 1 <= self.max_instances <= 1000:
            raise ConfigError(
                f"max_instances {self.max_instances} is not a preview's size",
                why="a preview has between 1 and 1000 instances at most",
                fix="Pass a small number, such as 1 (the default)",
            )


@dataclass(frozen=True)
class Preview:
    """A deployed preview: the function it previews, its own name, its URL and bundle."""

    function: str
    name: str
    url: str
    sha256: str
    public: bool
    outcome: DeployOutcome

    def to_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "name": self.name,
            "url": self.url,
            "sha256": self.sha256,
            "public": self.public,
            "action": self.outcome.deployed.action if self.outcome.deployed else None,
        }


def skip_reason(config: Config, settings: DeploySettings) -> str:
    """Why a function gets no preview (``""``: it gets one)."""
    if config.signature in EVENT_SIGNATURES or settings.trigger_topic or settings.trigger_bucket:
        return "event"
    return ""


def preview_settings(
    settings: DeploySettings, function: str, target: PreviewTarget
) -> DeploySettings:
    """The function's settings as its preview has them: no instance kept warm, at most
    ``target.max_instances``, and the preview's labels beside the function's own."""
    from pyfn_action.cloud.previews import LABELS, preview_labels

    labels = {k: v for k, v in (settings.labels or ()) if k not in LABELS}
    labels.update(preview_labels(target.repository, target.pull, function))
    return dataclasses.replace(
        settings,
        min_instances=0,
        max_instances=target.max_instances,
        labels=tuple(sorted(labels.items())),
    )


def prepare_preview(
    config: Config, settings: DeploySettings, env: Mapping[str, str], target: PreviewTarget
) -> DeployInputs:
    """Every setting judged and the preview's function read, before anything is built:
    a function of that name that is not this pull request's preview stops here."""
    from pyfn_action.cloud.previews import check_owner, preview_name

    reason = skip_reason(config, settings)
    if reason:
        raise ConfigError(
            f"{config.name} is an event function: it gets no preview",
            why="its preview would take its trigger's events too (the production topic's "
            "or bucket's), side by side with the function itself",
            fix="Preview HTTP functions only",
        )
    name = preview_name(config.name, target.pull)
    inputs = prepare_deploy(
        config, preview_settings(settings, config.name, target), env, dry_run=False, name=name
    )
    check_owner(inputs.deployed, name, target.repository, target.pull)
    return inputs


def deploy_preview(
    inputs: DeployInputs,
    env: Mapping[str, str],
    target: PreviewTarget,
    *,
    progress: ProgressFactory = silent,
    say: Callable[[str], None] = log.info,
) -> Preview:
    """Build, upload and deploy the preview; then let anyone call it, or no one but those
    the project allows (taking ``allUsers`` away if an earlier run granted it)."""
    from pyfn_action.cloud import apply
    from pyfn_action.cloud.invokers import set_public

    outcome = deploy_function(inputs, env, dry_run=False, progress=progress, say=say)
    assert outcome.deployed is not None
    gen = inputs.plan.generation
    if target.public or inputs.exists:
        function = apply.read_function(inputs.api, inputs.address, gen)
        if set_public(
            target.public,
            function,
            inputs.address,
            gen,
            api=inputs.api,
            credentials=inputs.credentials,
            env=env,
        ):
            say(
                f"{inputs.address.name}: "
                + ("anyone may call it now" if target.public else "no longer public")
            )
    return Preview(
        function=inputs.config.name,
        name=inputs.address.name,
        url=outcome.deployed.url or "",
        sha256=outcome.report.bundle.sha256,
        public=target.public,
        outcome=outcome,
    )


# --- finding and deleting -------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """The previews of a project, listed with both API versions, and the clients."""

    project: str
    previews: list[Listed]
    apis: dict[int, Any]  # generation → client


def find_previews(settings: DeploySettings, env: Mapping[str, str]) -> Found:
    """Every preview function of the project, in every region and generation."""
    from pyfn_action.cloud import apply, auth
    from pyfn_action.cloud import names as cloud
    from pyfn_action.cloud.previews import find
    from pyfn_action.runtime.targets import generations

    auth.require_client_libraries("find previews")
    credentials, adc_project = auth.credentials(env, None)
    project = cloud.check_project(settings.project or adc_project)
    apis, previews = {}, []
    for gen in sorted(generations(), key=lambda g: -g.gen):  # 2nd gen first
        apis[gen.gen] = apply.client(gen, credentials, env)
        previews += find(apis[gen.gen], project, gen)
    return Found(project, sorted(previews, key=lambda p: p.path), apis)


def select(
    previews: list[Listed],
    *,
    repository: str | None,
    pull: int | None,
    older_than: timedelta | None,
    now: datetime,
) -> list[Listed]:
    """The previews of ``repository`` (any, if ``None``), of pull request ``pull`` (any,
    if ``None``), last changed more than ``older_than`` ago (any age, if ``None``)."""
    from pyfn_action.cloud.previews import PR_LABEL, is_preview_of

    chosen = []
    for preview in previews:
        if repository is not None and not is_preview_of(preview.labels, repository, None):
            continue
        if pull is not None and preview.labels.get(PR_LABEL) != str(pull):
            continue
        if older_than is not None:
            age = preview.age(now)
            if age is None or age < older_than:
                continue
        chosen.append(preview)
    return chosen


@dataclass(frozen=True)
class Deletion:
    """What a delete did: each preview chosen, and what became of it."""

    chosen: list[Listed]
    results: list[Deleted]

    @property
    def deleted(self) -> list[Listed]:
        return [r.listed for r in self.results if r.ok]

    @property
    def failed(self) -> list[Deleted]:
        return [r for r in self.results if not r.ok]


def delete_previews(
    settings: DeploySettings,
    env: Mapping[str, str],
    *,
    repository: str | None,
    pull: int | None = None,
    older_than: timedelta | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    say: Callable[[str], None] = log.info,
) -> Deletion:
    """Delete the previews :func:`select` chooses; none found is no error. A failed
    delete does not stop the others: it is in the result, and the caller fails."""
    from pyfn_action.cloud.previews import delete
    from pyfn_action.runtime.targets import generation

    if pull is not None and repository is None:
        raise ConfigError(
            "A pull request number needs its repository",
            fix="Pass --repo OWNER/NAME or set GITHUB_REPOSITORY",
        )
    found = find_previews(settings, env)
    chosen = select(
        found.previews,
        repository=repository,
        pull=pull,
        older_than=older_than,
        now=now or datetime.now(timezone.utc),
    )
    if dry_run or not chosen:
        return Deletion(chosen, [])
    results: list[Deleted] = []
    for gen_number in sorted({p.gen for p in chosen}):
        mine = [p for p in chosen if p.gen == gen_number]
        results += delete(
            found.apis[gen_number],
            mine,
            generation(gen_number),
            timeout=settings.timeout or DELETE_TIMEOUT,
            say=say,
        )
    return Deletion(chosen, results)


def raise_failures(deletion: Deletion) -> None:
    """A delete that failed fails the command, naming each preview and why."""
    failed = deletion.failed
    if not failed:
        return
    first = failed[0].error
    assert first is not None
    raise DeployError(
        f"{len(failed)} of {len(deletion.chosen)} preview(s) could not be deleted: "
        + ", ".join(d.listed.name for d in failed),
        why=first.what + (f": {first.why}" if first.why else ""),
        fix=first.fix
        or "Run again (deleting is idempotent), or delete them with gcloud functions delete",
    )
