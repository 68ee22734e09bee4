"""The build pipeline, one stage after another.

:func:`build` is the one public function. It takes typed values, returns one,
and never prints, exits or reads the process environment: the environment
child processes see is passed in. Its stages, in order, each return a small
frozen value:

1. judge: the source and its requirements read, the Node.js runtime and the
   framework the bundle declares chosen, before anything is downloaded;
2. runtime: the PyPy fetched, the source checked for its Python, pip's interpreter
   and the trim rules;
3. install: the requirements installed for the target (a cached site);
4. stage: every entry of the bundle, the manifest among them;
5. trim: the rules applied (a dry run stops here, with the plan);
6. inspect: private keys refused, native code judged (:mod:`.bundle.checks`);
7. zip: bytecode compiled, the zip written beside the output;
8. report: what the bundle weighs, and the limits it is held to;
9. budget: a bundle over a limit refused, with its report;
10. land: ``report.json``, then ``bundle.zip``, renamed into the output directory.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyfn_action import __version__
from pyfn_action.bundle import nodepackage, prewarm
from pyfn_action.bundle.bytecode import cache_tag, compile_entries
from pyfn_action.bundle.checks import Inspection, Locator, inspect
from pyfn_action.bundle.nodepackage import NodePackage
from pyfn_action.bundle.source import FunctionSource, check_source
from pyfn_action.bundle.stage import Staged, out_ignores, stage
from pyfn_action.bundle.trim import (
    Rule,
    TrimPlan,
    builtin_rules,
    effect_dict,
    gcloud_default,
    plan_trim,
    portable_deps_rules,
    protected_files,
    user_rules,
)
from pyfn_action.bundle.zipper import ZIP_EPOCH_MIN, ZipResult, write_zip
from pyfn_action.config import Config
from pyfn_action.deps import localreqs, sitecache
from pyfn_action.deps.pip_runner import Interpreter, interpreter_for
from pyfn_action.deps.reqfile import Requirements, read_requirements
from pyfn_action.deps.requirements import Installed, install_requirements
from pyfn_action.deps.sources import Sources
from pyfn_action.errors import BundleError, Finding, NoCompatibleWheel
from pyfn_action.progress import ProgressFactory, silent
from pyfn_action.report import budget
from pyfn_action.report.manifest import FunctionInfo, Manifest, runtime_record
from pyfn_action.report.model import BundleSummary, Report, components_from
from pyfn_action.runtime import noderuntimes
from pyfn_action.runtime.pypy import Runtime, RuntimeRequest, resolve_runtime
from pyfn_action.runtime.targets import Target, generation
from pyfn_action.secrets.envfiles import credential_files

log = logging.getLogger(__name__)

FRAMEWORK_REQUIREMENT = "functions-framework>=3.8,<4"
FRAMEWORK_NAME = "functions-framework"


@dataclass(frozen=True)
class BuildResult:
    runtime: Runtime
    plan: TrimPlan
    bundle: Path | None = None  # None for a dry run, which writes nothing
    report_path: Path | None = None
    report: Report | None = None
    findings: tuple[Finding, ...] = ()  # problems that did not stop the build


def build(
    config: Config,
    *,
    cache_dir: Path,
    env: Mapping[str, str],
    source_date_epoch: int = ZIP_EPOCH_MIN,
    progress: ProgressFactory = silent,
    request_timeout: int | None = None,
    request_concurrency: int | None = None,
) -> BuildResult:
    """Build ``config.source`` into ``config.out/bundle.zip`` and ``config.out/report.json``.

    ``request_timeout`` (seconds) is the deployed function's timeout, recorded in
    the manifest so that the shim stops a handler when the platform gives up on
    the request; a local build leaves it to ``PYFN_TIMEOUT`` or the shim's 60 s.
    ``request_concurrency`` is how many requests the platform sends one instance at
    once, recorded so that the shim starts no more threads than that needs.

    Raises a :class:`~pyfn_action.errors.PyfnError` of the failure's kind (its exit
    code is in docs/configuration.md): ``ConfigError`` for a Node.js runtime, PyPy or
    trim rule pyfn cannot use; ``SourceError`` for a missing entry module, syntax the
    target refuses or an undefined entry point; ``RuntimeFetchError`` when the PyPy
    cannot be fetched, verified or unpacked; ``RequirementsError`` for a requirements
    line refused or requirements not resolved or installed (``NoCompatibleWheel``,
    pointed at the line naming it, for one the target cannot load); ``BundleError``
    for an unwritable output, a source file or a framework declaration that cannot be
    bundled; ``CredentialsFound`` for private keys, unless allowed; ``BudgetExceeded``,
    with the refused bundle's report, for a bundle over a limit or its budget.
    """
    out = config.out if config.dry_run else _writable_out(config.out)
    judged = _judge(config, cache_dir, env)
    platform = _runtime(config, judged, cache_dir, env, progress)
    with _work(cache_dir) as work:
        installed = _install(config, judged, platform, work, cache_dir)
        function = _function(config, request_timeout, request_concurrency)
        staged = _stage(judged, platform, installed, function, out_ignores(config.source, out), env)
        plan = _trim(staged, platform)
        if config.dry_run:
            return BuildResult(runtime=platform.runtime, plan=plan)
        where = Locator(platform.source.root, judged.requirements, plan.kept)
        allowed = config.allow_credentials
        checked = inspect(plan.kept, where, platform.target, cache_dir, allow_credentials=allowed)
        with tempfile.TemporaryDirectory(prefix=".pyfn-build-", dir=out) as pending:
            zipped = _zip(plan, platform, Path(pending), cache_dir, source_date_epoch, progress)
            report = _report(config, judged, platform, installed, staged, plan, checked, zipped)
            _check_budget(report, zipped, where, config.source)
            _land(report, zipped, out)
    return BuildResult(
        runtime=platform.runtime,
        plan=plan,
        bundle=out / "bundle.zip",
        report_path=out / "report.json",
        report=report,
        findings=checked.findings,
    )


# --- the stages, in order -----------------------------------------------------------


@dataclass(frozen=True)
class _Judged:
    """What is decided before anything is downloaded."""

    requirements: Requirements | None  # None: the function has no requirements file
    node_runtime: noderuntimes.Choice
    notice: str | None  # what the build says of the Node.js runtime on this day
    node: NodePackage  # the framework the bundle declares


def _judge(config: Config, cache_dir: Path, env: Mapping[str, str]) -> _Judged:
    """Judge the source and its requirements, and choose the Node.js runtime and
    framework, before anything is downloaded."""
    if not config.pypy_archive:
        check_source(config, _python_of(config.runtime))
    file = config.source / config.requirements
    requirements = read_requirements(file, config.source) if file.is_file() else None
    # The Node.js runtime it is deployed on decides the stack, and so the newest glibc
    # its wheels may need; judged by the platform's calendar on the given day.
    on = noderuntimes.today(env)
    node_runtime = noderuntimes.choose(config.gen, config.node_runtime, on)
    notice = noderuntimes.notice(node_runtime, config.gen, on)
    if notice:
        log.warning("%s", notice)
    # The framework the bundle declares, locked now: a version npm cannot find fails
    # before the runtime is fetched.
    node = nodepackage.declare(config.node_framework, cache_dir, env)
    return _Judged(requirements=requirements, node_runtime=node_runtime, notice=notice, node=node)


@dataclass(frozen=True)
class _Platform:
    """The PyPy the bundle carries, and what it decides."""

    runtime: Runtime
    target: Target
    source: FunctionSource  # checked for the runtime's Python
    interpreter: Interpreter  # what runs pip, and compiles the bytecode
    rules: tuple[Rule, ...]  # the trim rules, in order


def _runtime(
    config: Config,
    judged: _Judged,
    cache_dir: Path,
    env: Mapping[str, str],
    progress: ProgressFactory,
) -> _Platform:
    """Fetch the PyPy (cached), and check the source for its Python."""
    runtime = resolve_runtime(
        RuntimeRequest(
            runtime=config.runtime,
            arch=config.arch,
            pypy_version=config.pypy_version,
            archive=config.pypy_archive,
            sha256=config.pypy_sha256,
            mirror=config.pypy_mirror,
        ),
        cache_dir,
        progress=progress,
    )
    target = runtime.target(judged.node_runtime.glibc)
    source = check_source(config, target.python_tuple)
    return _Platform(
        runtime=runtime,
        target=target,
        source=source,
        interpreter=interpreter_for(runtime, target, cache_dir, env),
        rules=(
            *builtin_rules(cache_tag(runtime)),
            *portable_deps_rules(runtime.root),
            *user_rules(source.root),
        ),
    )


@contextmanager
def _work(cache_dir: Path) -> Iterator[Path]:
    """A private directory for the build's scratch files, removed however it ends."""
    work_root = cache_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=work_root) as work:
        yield Path(work)


def _install(
    config: Config, judged: _Judged, platform: _Platform, work: Path, cache_dir: Path
) -> Installed:
    """The requirements (and the framework, unless listed) installed for the target,
    from the site cache when everything that decides them is unchanged."""
    requirements, runtime, target = judged.requirements, platform.runtime, platform.target
    names = requirements.names if requirements is not None else frozenset()
    extra = []
    if config.signature != "script" and FRAMEWORK_NAME not in names:
        extra.append(FRAMEWORK_REQUIREMENT)
    sources = Sources(
        index_url=config.index_url,
        extra_index_urls=config.extra_index_urls,
        find_links=config.find_links,
    )
    included = list(requirements.files) if requirements is not None else []
    local = localreqs.digest(requirements)
    key = sitecache.cache_key(
        included, extra, target, sources, runtime.sha256, local=local, resolver=config.resolver
    )
    try:
        return sitecache.installed_site(
            cache_dir,
            key,
            lambda site: install_requirements(
                extra,
                # Local requirements are installed from copies, never in place.
                requirement_files=localreqs.pip_files(requirements, work / "local", expected=local),
                target=target,
                interpreter=platform.interpreter,
                site=site,
                work=work / "pip",
                cache_dir=cache_dir,
                sources=sources,
                resolver=config.resolver,
                # While sdists build, the other wheels' bytecode and compressed
                # data are made ahead, into the caches the bundle stage reads.
                meanwhile=functools.partial(
                    prewarm.warm,
                    runtime=runtime,
                    interpreter=platform.interpreter,
                    rules=list(platform.rules),
                    cache_dir=cache_dir,
                ),
            ),
            refresh=config.refresh,
        )
    except NoCompatibleWheel as exc:
        if requirements is None or not exc.requirement:
            raise
        file, line = requirements.where(exc.requirement)
        raise NoCompatibleWheel(
            exc.what,
            requirement=exc.requirement,
            why=exc.why,
            fix=exc.fix,
            findings=[Finding(kind="native", message=exc.what, file=file, line=line)],
        ) from exc


def _function(
    config: Config, request_timeout: int | None, request_concurrency: int | None
) -> FunctionInfo:
    """The function as the manifest describes it to the shim."""
    return FunctionInfo(
        name=config.name,
        entry_point=config.entry_point,
        signature=config.signature,
        script=config.script,
        stdin=config.stdin,
        gen=config.gen,
        timeout=request_timeout,
        concurrency=request_concurrency,
    )


def _stage(
    judged: _Judged,
    platform: _Platform,
    installed: Installed,
    function: FunctionInfo,
    app_ignores: list[str],
    env: Mapping[str, str],
) -> Staged:
    """Every entry of the bundle, its manifest among them; nothing is copied yet."""
    manifest = Manifest(
        pyfn_version=__version__,
        function=function,
        runtime=runtime_record(platform.runtime, platform.target, judged.node_runtime),
        packages=tuple(
            {"name": d.name, "version": d.version, "wheel": d.wheel}
            for d in installed.distributions
        ),
        node_framework=judged.node.spec,
    )
    staged = stage(
        platform.runtime,
        installed,
        platform.source.root,
        manifest.to_bytes(),
        judged.node,
        app_ignores=app_ignores,
        never_bundle=credential_files(env),
    )
    for warning in staged.warnings:
        log.warning("%s", warning)
    return staged


def _trim(staged: Staged, platform: _Platform) -> TrimPlan:
    """What the trim rules leave in the bundle; the entry module is never left out."""
    source = platform.source
    default = gcloud_default(source.root)
    if default is not None:
        log.info("%s", default)
    module = source.module.relative_to(source.root).as_posix()
    protected = protected_files(platform.runtime.python_version, module)
    return plan_trim(staged.entries, platform.rules, protected)


def _zip(
    plan: TrimPlan,
    platform: _Platform,
    pending: Path,
    cache_dir: Path,
    source_date_epoch: int,
    progress: ProgressFactory,
) -> ZipResult:
    """The bundle zipped into ``pending``, with bytecode where the target's PyPy runs here."""
    entries = list(plan.kept)
    if platform.interpreter.is_target:
        entries = compile_entries(entries, platform.runtime, platform.interpreter, cache_dir)
    else:
        log.warning("no precompiled bytecode: this machine cannot run the target's PyPy")
    return write_zip(
        entries,
        pending / "bundle.zip",
        source_date_epoch=source_date_epoch,
        progress=progress,
        cache_dir=cache_dir,
    )


def _report(
    config: Config,
    judged: _Judged,
    platform: _Platform,
    installed: Installed,
    staged: Staged,
    plan: TrimPlan,
    checked: Inspection,
    zipped: ZipResult,
) -> Report:
    """``report.json``: what the bundle weighs, part by part, and the limits it is held to."""
    versions = {d.name: d.version for d in installed.distributions}
    runtime = runtime_record(platform.runtime, platform.target, judged.node_runtime)
    return Report(
        bundle=BundleSummary(
            sha256=zipped.sha256,
            compressed_bytes=zipped.compressed_bytes,
            uncompressed_bytes=zipped.uncompressed_bytes,
            files=len(zipped.entries),
        ),
        components=components_from(zipped, versions),
        runtime={**runtime, "notice": judged.notice},
        function={
            "name": config.name,
            "entry_point": config.entry_point,
            "signature": config.signature,
            "gen": config.gen,
        },
        warnings=staged.warnings,
        limits=tuple(budget.limits_for(generation(config.gen), config.budget, zipped)),
        extra={
            "resolver": installed.resolver,  # what resolved the requirements
            "trim": [effect_dict(e) for e in plan.effects],
            "native": checked.native.to_dict(),
        },
        node_framework=judged.node.spec,
    )


def _check_budget(report: Report, zipped: ZipResult, where: Locator, source: Path) -> None:
    """Refuse a bundle over a limit: the error carries its report, never written."""
    limits, parts = report.limits, report.components
    budget.check(limits, zipped, parts, report=report, where=where, source=source)


def _land(report: Report, zipped: ZipResult, out: Path) -> None:
    """The report, then the bundle, renamed into ``out``: a report never describes a
    bundle that is not there."""
    pending = zipped.path.parent / "report.json"
    pending.write_text(report.to_json(), encoding="utf-8")
    os.replace(pending, out / "report.json")
    os.replace(zipped.path, out / "bundle.zip")


# --- helpers --------------------------------------------------------------------------


def _python_of(runtime: str) -> tuple[int, int]:
    major, minor = runtime.removeprefix("pypy").split(".")
    return int(major), int(minor)


def _writable_out(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise BundleError(
            f"Cannot write to the output directory {out}",
            why=exc.strerror or str(exc),
            fix="Pass a writable directory with --out (or PYFN_OUT)",
        ) from exc
    return out
