"""The jobs every adapter runs: build a function, upload a bundle, deploy a function.

The ``pyfn`` command and the GitHub Action's entrypoint both call these, with
settings already resolved (:func:`config.resolve`, :func:`config.resolve_deploy`),
and turn the typed results into their own output. Nothing here prints or exits;
progress and stage messages go through the callables passed in.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import platformdirs

from pyfn_action.config import Config, DeploySettings
from pyfn_action.errors import ConfigError, PyfnError
from pyfn_action.progress import ProgressFactory, silent

if TYPE_CHECKING:
    from pyfn_action.cloud.apply import Deployed
    from pyfn_action.cloud.plan import Plan
    from pyfn_action.cloud.rules import FunctionAddress
    from pyfn_action.cloud.upload import Uploaded
    from pyfn_action.flows.build import BuildResult
    from pyfn_action.report.model import Report

log = logging.getLogger(__name__)


def cache_dir(configured: Path | None) -> Path:
    """pyfn's cache: the configured one, else the user's cache directory."""
    return configured or Path(platformdirs.user_cache_dir("pyfn", appauthor=False))


def source_date_epoch(env: Mapping[str, str]) -> int:
    """The zip timestamp: ``SOURCE_DATE_EPOCH``, never before 1980."""
    from pyfn_action.bundle.zipper import ZIP_EPOCH_MIN

    raw = env.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_EPOCH_MIN
    if not raw.isdigit():
        raise ConfigError(
            f"SOURCE_DATE_EPOCH={raw!r} is not a number of seconds",
            fix="Set it to an integer such as $(git log -1 --format=%ct), or unset it",
        )
    return max(int(raw), ZIP_EPOCH_MIN)


def build_function(
    config: Config,
    env: Mapping[str, str],
    *,
    progress: ProgressFactory = silent,
    request_timeout: int | None = None,
    request_concurrency: int | None = None,
) -> BuildResult:
    """Build ``config.source`` into ``config.out`` with the configured cache."""
    from pyfn_action.flows.build import build

    return build(
        config,
        cache_dir=cache_dir(config.cache_dir),
        env=env,
        source_date_epoch=source_date_epoch(env),
        progress=progress,
        request_timeout=request_timeout,
        request_concurrency=request_concurrency,
    )


def upload_bundle(
    bundle: Path,
    settings: DeploySettings,
    env: Mapping[str, str],
    *,
    name: str | None = None,
    progress: ProgressFactory = silent,
) -> Uploaded:
    """Upload a built bundle to the staging bucket (``pyfn upload``)."""
    from pyfn_action.cloud import auth
    from pyfn_action.cloud import names as cloud
    from pyfn_action.cloud.upload import bundle_name, storage_client, upload

    auth.require_client_libraries("upload")
    bucket = cloud.check_bucket(settings.bucket)
    # The name is a part of the object's path: any generation's rule keeps it one part.
    name = cloud.check_function_name(name or bundle_name(bundle), gen=1)
    credentials = None
    if not env.get("STORAGE_EMULATOR_HOST"):
        credentials = auth.credentials(env, None, needed_for="upload")[0]
    return upload(
        bundle,
        bucket=bucket,
        name=name,
        prefix=settings.prefix,
        client=storage_client(credentials, settings.project, env),
        progress=progress,
        region=settings.region,
    )


# --- deploy -----------------------------------------------------------------------


@dataclass(frozen=True)
class DeployInputs:
    """What a deploy starts from: every name and setting checked, the plan made (once),
    and the function read."""

    config: Config
    settings: DeploySettings
    plan: Plan  # names no bundle yet: the upload pins it
    bucket: str
    credentials: Any  # None in a dry run without credentials
    api: Any  # the Cloud Functions client, None without credentials
    deployed: Any  # the function as it is now, None if absent or unread
    exists: bool | None  # None: not known (a dry run that could not read it)

    @property
    def address(self) -> FunctionAddress:
        return self.plan.address


@dataclass(frozen=True)
class DeployOutcome:
    """A deploy (or its dry run): the build, the plan, and what was done."""

    build: BuildResult
    report: Report
    plan: Plan  # for a dry run, names the object the bundle would go to
    object_uri: str  # gs://BUCKET/PREFIX/NAME/SHA256.zip
    existing: bool | None
    uploaded: Uploaded | None = None  # None in a dry run
    deployed: Deployed | None = None  # None in a dry run

    @property
    def dry_run(self) -> bool:
        return self.deployed is None

    @property
    def action(self) -> str | None:
        """What a dry run would do: ``create``, ``update``, or ``None`` (not known)."""
        return None if self.existing is None else ("update" if self.existing else "create")

    def to_dict(self) -> dict[str, Any]:
        """The outcome as ``--json`` shows it."""
        if self.deployed is not None:
            assert self.uploaded is not None
            return {
                "upload": self.uploaded.to_dict(),
                "deploy": self.deployed.to_dict(),
                "sha256": self.report.bundle.sha256,
                "runtime": self.runtime,
            }
        requests = self.plan.requests()
        action = self.action
        return {
            "dry_run": True,
            "function": self.plan.address.path,
            "gen": self.plan.generation.gen,
            "action": action,
            "runtime": self.runtime,
            "upload": {
                "sha256": self.report.bundle.sha256,
                "size": self.report.bundle.compressed_bytes,
                "object": self.object_uri,
            },
            "update_mask": self.plan.update_mask,
            "requests": requests if action is None else {action: requests[action]},
            "notes": self.plan.notes,
        }

    @property
    def runtime(self) -> dict[str, str | None]:
        """What runs the function: the Node.js runtime and the framework the bundle declares."""
        return {
            "node_runtime": self.plan.node_runtime,
            "node_framework": self.report.node_framework,
        }

    def _runtime_text(self) -> str:
        framework = self.report.node_framework or "not declared (an older bundle)"
        return f"{self.plan.node_runtime}, Node.js Functions Framework {framework}"

    def to_text(self) -> str:
        """The outcome as the command shows it on a terminal."""
        if self.deployed is not None:
            done = self.deployed
            lines = [f"{done.action}d {done.name}: {done.state}"]
            if done.url:
                lines.append(f"url: {done.url}")
            lines.append(f"source: {self.uploaded}")
            lines.append(f"runtime: {self._runtime_text()}")
            return "".join(line + "\n" for line in lines)
        plan, out = self.plan, self.to_dict()
        size = self.report.bundle.compressed_bytes / 1e6
        what = {None: "create if absent, update if present", "create": "create", "update": "update"}
        text = "Dry run: nothing is uploaded or deployed.\n\n"
        text += f"upload  the bundle ({size:.1f} MB) → {self.object_uri} (if absent)\n"
        text += f"deploy  {plan.address.path} ({plan.generation.gen} gen): {what[self.action]}\n"
        text += f"runtime {self._runtime_text()}\n"
        text += f"update mask: {','.join(plan.update_mask)}\n"
        text += "".join(f"note: {note}\n" for note in plan.notes)
        for name, request in out["requests"].items():
            query = "&".join(f"{k}={v}" for k, v in request["query"].items())
            text += (
                f"\n{name}: {request['method']} {request['path']}"
                + (f"?{query}" if query else "")
                + "\n"
            )
            text += json.dumps(request["body"], indent=2) + "\n"
        return text


def deploy(
    config: Config,
    settings: DeploySettings,
    env: Mapping[str, str],
    *,
    dry_run: bool,
    progress: ProgressFactory = silent,
    say: Callable[[str], None] = log.info,
) -> DeployOutcome:
    """``pyfn deploy``: :func:`prepare_deploy`, then :func:`deploy_function`.

    Raises a :class:`~pyfn_action.errors.PyfnError` of the failure's kind (its exit
    code is in docs/configuration.md), before anything is built when it can be:
    ``ConfigError`` for a name, region, setting or Node.js runtime the deploy cannot
    use, or without Google's client libraries; ``CloudCredentialsError`` without
    usable credentials, or credentials Google refuses (a dry run goes on without
    them); ``DeployError`` when the function cannot be read; then whatever
    :func:`~pyfn_action.flows.build.build` raises; ``UploadError`` when the bundle
    cannot be uploaded or verified; ``DeployError`` when Cloud Functions refuses the
    function or its deployment fails, ``DeployTimeout`` when it does not finish within
    ``settings.timeout`` (it goes on in Google Cloud).
    """
    inputs = prepare_deploy(config, settings, env, dry_run=dry_run)
    return deploy_function(inputs, env, dry_run=dry_run, progress=progress, say=say)


def prepare_deploy(
    config: Config,
    settings: DeploySettings,
    env: Mapping[str, str],
    *,
    dry_run: bool,
    name: str | None = None,
) -> DeployInputs:
    """Judge every name and setting before the first call, make the plan, read the function.

    ``name`` deploys the bundle as a function of another name (a preview); the
    bundle is the function's own all the same. A dry run goes on without
    credentials, and without the function if it cannot be read; a real deploy
    stops at either.
    """
    from pyfn_action.cloud import apply, auth
    from pyfn_action.cloud import names as cloud
    from pyfn_action.cloud.plan import make_plan
    from pyfn_action.cloud.rules import FunctionAddress, check
    from pyfn_action.errors import CloudCredentialsError
    from pyfn_action.runtime import noderuntimes
    from pyfn_action.runtime.targets import generation

    auth.require_client_libraries("deploy")
    config = dataclasses.replace(config, dry_run=False)
    gen = generation(config.gen)
    # Never a decommissioned runtime: refused before anything is built or uploaded.
    on = noderuntimes.today(env)
    node_runtime = noderuntimes.choose(config.gen, config.node_runtime, on)
    noderuntimes.require_deployable(node_runtime, config.gen, on)
    settings = dataclasses.replace(settings, node_runtime=node_runtime.name)
    name = name or config.name
    cloud.check_function_name(name, config.gen)
    region = cloud.check_region(settings.region)
    bucket = cloud.check_bucket(settings.bucket)
    if settings.project:
        cloud.check_project(settings.project)
    checked = check(settings, gen, name=name, signature=config.signature)

    credentials: Any = None
    try:
        credentials, adc_project = auth.credentials(env, config.source)
    except CloudCredentialsError:
        if not dry_run:
            raise
        log.info("no Google Cloud credentials: the plan is made without reading the function")
        adc_project = auth.project_from_env(env)
    project = cloud.check_project(settings.project or adc_project)
    address = FunctionAddress(project=project, region=region, name=name)
    the_plan = make_plan(checked, address, entry_point=config.entry_point)
    api, deployed, exists = None, None, None
    if credentials is not None:
        api = apply.client(gen, credentials, env)
        try:
            deployed = apply.read_function(api, address, gen)
            exists = deployed is not None
        except PyfnError as exc:
            if not dry_run:
                raise
            log.warning("could not read %s: %s", address.path, exc.message)
    the_plan = the_plan.with_environment(apply.environment(deployed, gen), exists)
    return DeployInputs(
        config=config,
        settings=settings,
        plan=the_plan,
        bucket=bucket,
        credentials=credentials,
        api=api,
        deployed=deployed,
        exists=exists,
    )


def deploy_function(
    inputs: DeployInputs,
    env: Mapping[str, str],
    *,
    dry_run: bool,
    progress: ProgressFactory = silent,
    say: Callable[[str], None] = log.info,
) -> DeployOutcome:
    """Build, upload to the staging bucket, and create or update the function.

    The plan is the one :func:`prepare_deploy` made; the upload only pins the
    bundle in it. The bundle records the request timeout the function will have
    (set now, or the deployed one's), so the shim stops a handler when the
    platform gives up. A dry run builds into a temporary directory and stops at
    the plan.
    """
    from pyfn_action.cloud import apply
    from pyfn_action.cloud.upload import object_name, storage_client, upload

    config, settings, address = inputs.config, inputs.settings, inputs.address
    request_timeout = settings.function_timeout or apply.request_timeout(
        inputs.deployed, inputs.plan.generation
    )
    request_concurrency = apply.request_concurrency(
        settings.concurrency, inputs.deployed, inputs.plan.generation
    )
    with tempfile.TemporaryDirectory(prefix="pyfn-deploy-") as tmp:
        if dry_run:
            config = dataclasses.replace(config, out=Path(tmp) / "dist")
        result = build_function(
            config,
            env,
            progress=progress,
            request_timeout=request_timeout,
            request_concurrency=request_concurrency,
        )
        assert result.bundle is not None and result.report is not None
        key = object_name(settings.prefix, config.name, result.report.bundle.sha256)
        uri = f"gs://{inputs.bucket}/{key}"
        if dry_run:
            return DeployOutcome(
                build=result,
                report=result.report,
                plan=inputs.plan.staged(inputs.bucket, key),
                object_uri=uri,
                existing=inputs.exists,
            )
        uploaded = upload(
            result.bundle,
            bucket=inputs.bucket,
            name=config.name,
            prefix=settings.prefix,
            client=storage_client(inputs.credentials, address.project, env),
            progress=progress,
            region=address.region,
        )
    if not uploaded.skipped:  # upload() itself says when it was already there
        say(f"uploaded {uploaded}")
    the_plan = inputs.plan.with_source(uploaded)
    for note in the_plan.notes:
        say(note)
    done = apply.apply(the_plan, inputs.api, timeout=settings.timeout, say=say)
    return DeployOutcome(
        build=result,
        report=result.report,
        plan=the_plan,
        object_uri=uri,
        existing=inputs.exists,
        uploaded=uploaded,
        deployed=done,
    )
