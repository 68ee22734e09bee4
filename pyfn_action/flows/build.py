"""The build pipeline: source + config → runtime → requirements → stage → zip → report.

:func:`build` is the one public function. It takes typed values, returns one,
and never prints, exits or reads the process environment: the environment
child processes see is passed in.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyfn_action import __version__, secrets
from pyfn_action.bundle import nodepackage, prewarm
from pyfn_action.bundle.bytecode import cache_tag, compile_entries
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.native import inspect_entries
from pyfn_action.bundle.nodepackage import NodePackage
from pyfn_action.bundle.source import check_source
from pyfn_action.bundle.stage import stage
from pyfn_action.bundle.trim import (
    Effect,
    TrimPlan,
    builtin_rules,
    gcloud_default,
    plan_trim,
    portable_deps_rules,
    protected_files,
    user_rules,
)
from pyfn_action.bundle.zipper import ZIP_EPOCH_MIN, ZipResult, write_zip
from pyfn_action.config import Config, config_file, key_line
from pyfn_action.deps import localreqs, sitecache
from pyfn_action.deps.pip_runner import interpreter_for
from pyfn_action.deps.reqfile import Requirements, read_requirements
from pyfn_action.deps.requirements import Installed, install_requirements
from pyfn_action.deps.sources import Sources
from pyfn_action.errors import (
    BudgetExceeded,
    BundleError,
    CredentialsFound,
    Finding,
    NoCompatibleWheel,
)
from pyfn_action.progress import ProgressFactory, silent
from pyfn_action.redact import redact_url
from pyfn_action.report import budget
from pyfn_action.report.manifest import FunctionInfo, Manifest
from pyfn_action.report.model import BundleSummary, Limit, Report, components_from
from pyfn_action.runtime import noderuntimes
from pyfn_action.runtime.pypy import Runtime, RuntimeRequest, resolve_runtime
from pyfn_action.runtime.targets import Target, generation
from pyfn_action.secrets.envfiles import credential_files
from pyfn_action.sizes import format_size

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
    """
    out = config.out if config.dry_run else _writable_out(config.out)
    # Judge the source and its requirements before anything is downloaded.
    if not config.pypy_archive:
        check_source(config, _python_of(config.runtime))
    requirements = (
        read_requirements(config.source / config.requirements, config.source)
        if (config.source / config.requirements).is_file()
        else None
    )
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
    gen = generation(config.gen)
    target = runtime.target(node_runtime.glibc)
    source = check_source(config, target.python_tuple)

    names = requirements.names if requirements is not None else frozenset()
    extra = []
    if config.signature != "script" and FRAMEWORK_NAME not in names:
        extra.append(FRAMEWORK_REQUIREMENT)

    work_root = cache_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=work_root) as work_name:
        work = Path(work_name)
        interpreter = interpreter_for(runtime, target, cache_dir, env)
        rules = [
            *builtin_rules(cache_tag(runtime)),
            *portable_deps_rules(runtime.root),
            *user_rules(source.root),
        ]
        sources = Sources(config.index_url, config.extra_index_urls, config.find_links)
        included = list(requirements.files) if requirements is not None else []
        local = localreqs.digest(requirements)
        key = sitecache.cache_key(
            included,
            extra,
            target,
            sources,
            runtime.sha256,
            local=local,
            resolver=config.resolver,
        )
        try:
            installed = sitecache.installed_site(
                cache_dir,
                key,
                lambda site: install_requirements(
                    extra,
                    # Local requirements are installed from copies, never in place.
                    requirement_files=localreqs.pip_files(
                        requirements, work / "local", expected=local
                    ),
                    target=target,
                    interpreter=interpreter,
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
                        interpreter=interpreter,
                        rules=rules,
                        cache_dir=cache_dir,
                    ),
                ),
                refresh=config.refresh,
            )
        except NoCompatibleWheel as exc:
            if requirements is not None and exc.requirement:
                file, line = requirements.where(exc.requirement)
                exc.findings = (Finding("native", exc.what, file, line),)
            raise
        manifest = _manifest(
            config,
            runtime,
            target,
            node_runtime,
            installed,
            node,
            request_timeout,
            request_concurrency,
        )
        staged = stage(
            runtime,
            installed,
            source.root,
            manifest,
            node,
            app_ignores=_out_ignores(config, out),
            never_bundle=credential_files(env),
        )
        for warning in staged.warnings:
            log.warning("%s", warning)
        default = gcloud_default(source.root)
        if default is not None:
            log.info("%s", default)
        module = source.module.relative_to(source.root).as_posix()
        plan = plan_trim(staged.entries, rules, protected_files(runtime.python_version, module))
        if config.dry_run:
            return BuildResult(runtime, plan)
        where = _Locator(source.root, requirements, plan.kept)
        findings = _refuse_credentials(plan.kept, where, allowed=config.allow_credentials)
        native = inspect_entries(plan.kept, target, cache_dir)
        for problem in native.problems:
            log.warning("native code: %s %s", problem.path, problem.problem)
            file, line = where(problem.path)
            message = f"{problem.path} {problem.problem}"
            findings.append(Finding("native", message, file, line))
        entries = list(plan.kept)
        if interpreter.is_target:
            entries = compile_entries(entries, runtime, interpreter, cache_dir)
        else:
            log.warning("no precompiled bytecode: this machine cannot run the target's PyPy")
        with tempfile.TemporaryDirectory(prefix=".pyfn-build-", dir=out) as pending_name:
            pending = Path(pending_name)
            zipped = write_zip(
                entries,
                pending / "bundle.zip",
                source_date_epoch=source_date_epoch,
                progress=progress,
                cache_dir=cache_dir,
            )
            versions = {d.name: d.version for d in installed.distributions}
            limits = budget.limits_for(gen, config.budget, zipped)
            report = Report(
                bundle=BundleSummary(
                    sha256=zipped.sha256,
                    compressed_bytes=zipped.compressed_bytes,
                    uncompressed_bytes=zipped.uncompressed_bytes,
                    files=len(zipped.entries),
                ),
                components=components_from(zipped, versions),
                runtime={**_runtime_dict(runtime, target, node_runtime), "notice": notice},
                function={
                    "name": config.name,
                    "entry_point": config.entry_point,
                    "signature": config.signature,
                    "gen": config.gen,
                },
                warnings=staged.warnings,
                limits=tuple(limits),
                extra={
                    "resolver": installed.resolver,  # what resolved the requirements
                    "trim": [_effect_dict(e) for e in plan.effects],
                    "native": native.to_dict(),
                },
                node_framework=node.spec,
            )
            try:
                budget.check(limits, zipped, report.components)
            except BudgetExceeded as exc:
                exc.report = report
                exc.findings = tuple(_budget_findings(limits, zipped, config, where))
                raise
            (pending / "report.json").write_text(report.to_json(), encoding="utf-8")
            # The bundle lands last: a report never describes a bundle that is not there.
            os.replace(pending / "report.json", out / "report.json")
            os.replace(zipped.path, out / "bundle.zip")
    return BuildResult(
        runtime, plan, out / "bundle.zip", out / "report.json", report, tuple(findings)
    )


class _Locator:
    """Which file of the function a bundle entry comes from: ``app/x`` is the source's
    ``x``; a file under ``site/`` is the requirements line naming its distribution."""

    def __init__(
        self, root: Path, requirements: Requirements | None, entries: Sequence[Entry]
    ) -> None:
        self.root = root
        self.requirements = requirements
        self.component = {e.arcname: e.component for e in entries}

    def __call__(self, arcname: str) -> tuple[Path | None, int | None]:
        if arcname.startswith("app/"):
            return self.root / arcname.removeprefix("app/"), None
        if arcname.startswith("site/") and self.requirements is not None:
            return self.requirements.where(self.component.get(arcname, ""))
        return None, None


def _budget_findings(
    limits: Sequence[Limit], zipped: ZipResult, config: Config, where: _Locator
) -> list[Finding]:
    """The exceeded limits (on the line that sets the budget) and the largest source files."""
    findings = []
    for limit in limits:
        if limit.ok:
            continue
        message = (
            f"the bundle ({format_size(limit.used_bytes)}) exceeds the {limit.name} limit of "
            f"{format_size(limit.limit_bytes)}"
        )
        file = config_file(config.source) if limit.name.startswith("budget") else None
        line = key_line(file, "budget") if file is not None else None
        findings.append(Finding("budget", message, file if line else None, line))
    largest = sorted(zipped.entries, key=lambda e: e.compressed_bytes, reverse=True)[:10]
    for entry in largest:
        file, _ = where(entry.arcname)
        if entry.arcname.startswith("app/") and file is not None:
            message = (
                f"{entry.arcname.removeprefix('app/')} takes {format_size(entry.compressed_bytes)} "
                f"of the bundle ({format_size(entry.uncompressed_bytes)} unzipped)"
            )
            findings.append(Finding("oversized", message, file))
    return findings


def _effect_dict(effect: Effect) -> dict[str, object]:
    rule = effect.rule
    return {
        "rule": rule.text,
        "source": rule.origin,
        "line": rule.line,
        "files": effect.files,
        "bytes": effect.bytes,
    }


def _refuse_credentials(
    entries: Sequence[Entry], where: _Locator, *, allowed: bool
) -> list[Finding]:
    """No private key leaves in a bundle unless the user says so (allow_credentials).

    Every file from ``app/`` and ``site/`` goes through the scanner of
    pyfn-no-credentials (:mod:`.secrets`), archives inside it included. Allowed, each key
    found is returned as a finding to show; else the build stops. What could not be
    scanned (too large, encrypted, damaged, a limit reached) is logged and returned as a
    finding too; it does not stop the build.
    """
    keys: list[secrets.Finding] = []
    located: list[Finding] = []
    unscanned: list[Finding] = []
    for entry in entries:
        if not entry.arcname.startswith(("app/", "site/")):
            continue
        if entry.source is not None:
            scan = secrets.scan_file(entry.source, entry.arcname)
        else:
            scan = secrets.scan_content(entry.arcname, entry.read())
        file, line = where(entry.arcname)
        for found in scan.findings:
            keys.append(found)
            log.warning("%s", found.line() if allowed else f"{found.where}: {found.what}")
            # A line of a member of an archive is not a line of the archive.
            own = found.lineno if found.where == secrets.shown_name(entry.arcname) else None
            located.append(
                Finding(
                    "credentials",
                    f"{found.where}: {found.what}",
                    file,
                    own if line is None else line,
                )
            )
        for note in scan.unscanned:
            log.warning("%s", note.line())
            unscanned.append(Finding("credentials", note.line(), file, line))
    if keys and not allowed:
        listed = "; ".join(f"{f.where} ({f.what})" for f in keys[:10])
        more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
        raise CredentialsFound(
            f"The bundle would carry private keys: {listed}{more}",
            why="anyone who can read the function's source could use them",
            fix="Delete them (or list them in .pyfnignore) and use the function's runtime "
            "service account or Secret Manager; set allow_credentials = true only if "
            "shipping them is intended",
            findings=[*located, *unscanned],
        )
    return [*located, *unscanned]


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


def _out_ignores(config: Config, out: Path) -> list[str]:
    """Keep the output directory out of the bundle when it lies inside the source."""
    try:
        rel = out.resolve().relative_to(config.source.resolve())
    except ValueError:
        return []
    return [f"/{rel.as_posix()}/"] if rel.parts else []


def _runtime_dict(
    runtime: Runtime, target: Target, node_runtime: noderuntimes.Choice
) -> dict[str, object]:
    return {
        "node_runtime": node_runtime.name,
        "glibc": "{}.{}".format(*target.glibc),
        "python_version": runtime.python_version,
        "pypy_version": runtime.pypy_version,
        "arch": runtime.arch,
        "abi": target.abi,
        "sha256": runtime.sha256,
        "source": redact_url(runtime.source),  # never a URL's user info or query
        "executable": f"pypy/bin/pypy{runtime.python_version}",
    }


def _manifest(
    config: Config,
    runtime: Runtime,
    target: Target,
    node_runtime: noderuntimes.Choice,
    installed: Installed,
    node: NodePackage,
    request_timeout: int | None,
    request_concurrency: int | None = None,
) -> bytes:
    return Manifest(
        pyfn_version=__version__,
        function=FunctionInfo(
            name=config.name,
            entry_point=config.entry_point,
            signature=config.signature,
            script=config.script,
            stdin=config.stdin,
            gen=config.gen,
            timeout=request_timeout,
            concurrency=request_concurrency,
        ),
        runtime=_runtime_dict(runtime, target, node_runtime),
        packages=tuple(
            {"name": d.name, "version": d.version, "wheel": d.wheel}
            for d in installed.distributions
        ),
        node_framework=node.spec,
    ).to_bytes()
