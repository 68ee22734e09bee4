"""The build pipeline: source + config → runtime → requirements → stage → zip → report.

:func:`build` is the one public function. It takes typed values, returns one,
and never prints, exits or reads the process environment: the environment
child processes see is passed in.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import __version__, budget, sitecache
from .bytecode import cache_tag, compile_entries
from .config import Config
from .errors import BundleError, CredentialsFound
from .hooks.check_secrets import MAX_SCANNED_BYTES, scan_bytes
from .native import inspect_entries
from .pip_runner import interpreter_for
from .progress import ProgressFactory, silent
from .report import BundleSummary, Report, components_from
from .reqfile import read_requirements
from .requirements import Installed, Sources, install_requirements
from .runtime import Runtime, RuntimeRequest, resolve_runtime
from .source import check_source
from .stage import Entry, stage
from .targets import Target, generation
from .trim import (
    Effect,
    TrimPlan,
    builtin_rules,
    plan_trim,
    portable_deps_rules,
    protected_files,
    user_rules,
)
from .zipper import ZIP_EPOCH_MIN, write_zip

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


def build(
    config: Config,
    *,
    cache_dir: Path,
    env: Mapping[str, str],
    source_date_epoch: int = ZIP_EPOCH_MIN,
    progress: ProgressFactory = silent,
    request_timeout: int | None = None,
) -> BuildResult:
    """Build ``config.source`` into ``config.out/bundle.zip`` and ``config.out/report.json``.

    ``request_timeout`` (seconds) is the deployed function's timeout, recorded in
    the manifest so that the shim stops a handler when the platform gives up on
    the request; a local build leaves it to ``PYFN_TIMEOUT`` or the shim's 60 s.
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
    target = runtime.target(gen.glibc)
    source = check_source(config, target.python_tuple)

    files = [source.requirements] if source.requirements is not None else []
    names = requirements.names if requirements is not None else frozenset()
    extra = []
    if config.signature != "script" and FRAMEWORK_NAME not in names:
        extra.append(FRAMEWORK_REQUIREMENT)

    work_root = cache_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-", dir=work_root) as work_name:
        work = Path(work_name)
        interpreter = interpreter_for(runtime, target, cache_dir, env)
        sources = Sources(config.index_url, config.extra_index_urls, config.find_links)
        included = list(requirements.files) if requirements is not None else []
        key = sitecache.cache_key(included, extra, target, sources, runtime.sha256)
        installed = sitecache.installed_site(
            cache_dir,
            key,
            lambda site: install_requirements(
                extra,
                requirement_files=files,
                target=target,
                interpreter=interpreter,
                site=site,
                work=work / "pip",
                cache_dir=cache_dir,
                sources=sources,
            ),
            refresh=config.refresh,
        )
        manifest = _manifest(config, runtime, target, installed, request_timeout)
        staged = stage(
            runtime, installed, source.root, manifest, app_ignores=_out_ignores(config, out)
        )
        for warning in staged.warnings:
            log.warning("%s", warning)
        rules = [
            *builtin_rules(cache_tag(runtime)),
            *portable_deps_rules(runtime.root),
            *user_rules(source.root),
        ]
        module = source.module.relative_to(source.root).as_posix()
        plan = plan_trim(staged.entries, rules, protected_files(runtime.python_version, module))
        if config.dry_run:
            return BuildResult(runtime, plan)
        _refuse_credentials(plan.kept, allowed=config.allow_credentials)
        native = inspect_entries(plan.kept, target, cache_dir)
        for problem in native.problems:
            log.warning("native code: %s %s", problem.path, problem.problem)
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
                runtime=_runtime_dict(runtime, target),
                function={
                    "name": config.name,
                    "entry_point": config.entry_point,
                    "signature": config.signature,
                    "gen": config.gen,
                },
                warnings=staged.warnings,
                extra={
                    "limits": [limit.to_dict() for limit in limits],
                    "trim": [_effect_dict(e) for e in plan.effects],
                    "native": native.to_dict(),
                },
            )
            budget.check(limits, zipped, report.components)
            (pending / "report.json").write_text(report.to_json(), encoding="utf-8")
            # The bundle lands last: a report never describes a bundle that is not there.
            os.replace(pending / "report.json", out / "report.json")
            os.replace(zipped.path, out / "bundle.zip")
    return BuildResult(runtime, plan, out / "bundle.zip", out / "report.json", report)


def _effect_dict(effect: Effect) -> dict[str, object]:
    rule = effect.rule
    return {
        "rule": rule.text,
        "source": rule.origin,
        "line": rule.line,
        "files": effect.files,
        "bytes": effect.bytes,
    }


def _refuse_credentials(entries: Sequence[Entry], *, allowed: bool) -> None:
    """No private key leaves in a bundle unless the user says so (allow_credentials)."""
    findings = [
        finding
        for entry in entries
        if entry.arcname.startswith(("app/", "site/")) and entry.size() <= MAX_SCANNED_BYTES
        for finding in scan_bytes(entry.arcname, entry.read())
    ]
    if not findings:
        return
    for finding in findings:
        log.warning("%s", finding.line() if allowed else f"{finding.where}: {finding.what}")
    if not allowed:
        listed = "; ".join(f"{f.where} ({f.what})" for f in findings[:10])
        raise CredentialsFound(
            f"The bundle would carry private keys: {listed}",
            why="anyone who can read the function's source could use them",
            fix="Delete them (or list them in .pyfnignore) and use the function's runtime "
            "service account or Secret Manager; set allow_credentials = true only if "
            "shipping them is intended",
        )


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


def _runtime_dict(runtime: Runtime, target: Target) -> dict[str, object]:
    return {
        "python_version": runtime.python_version,
        "pypy_version": runtime.pypy_version,
        "arch": runtime.arch,
        "abi": target.abi,
        "sha256": runtime.sha256,
        "source": runtime.source,
        "executable": f"pypy/bin/pypy{runtime.python_version}",
    }


def _manifest(
    config: Config,
    runtime: Runtime,
    target: Target,
    installed: Installed,
    request_timeout: int | None,
) -> bytes:
    function: dict[str, object] = {
        "name": config.name,
        "entry_point": config.entry_point,
        "signature": config.signature,
        "script": config.script,
        "stdin": config.stdin,
        "gen": config.gen,
    }
    if request_timeout is not None:
        function["timeout"] = request_timeout
    data = {
        "pyfn_version": __version__,
        "function": function,
        "runtime": _runtime_dict(runtime, target),
        "packages": [
            {"name": d.name, "version": d.version, "wheel": d.wheel}
            for d in installed.distributions
        ],
    }
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()
