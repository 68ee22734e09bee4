"""The GitHub Action: build every function, report its size on the pull request, deploy.

An adapter, as the ``pyfn`` command is one: it maps the Action's inputs to the
same flows (:mod:`pyfn_action.flows.jobs`) and their results to the runner's
language. The job fails on a build error, an exceeded budget or a failed
deploy, with the command's exit codes; never on a comment that could not be
posted (the body then goes to the job summary and the ``comment-body`` output,
with one warning saying why).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from pyfn_action.errors import (
    BudgetExceeded,
    CommentError,
    ConfigError,
    Finding,
    PyfnError,
)
from pyfn_action.flows.jobs import build_function, deploy_function, prepare_deploy
from pyfn_action.flows.previews import (
    deploy_preview,
)
from pyfn_action.github import basecache, speed
from pyfn_action.github.base import (
    base_label,
    base_reports,
    load_base_report,
    require_pull_request_commit,
)
from pyfn_action.github.cachekey import cache_key
from pyfn_action.github.comments import (
    Comments,
    default_key,
    post_combined,
)
from pyfn_action.github.event import Event, read_event
from pyfn_action.github.functions import Function, require_deploy_settings, resolve_functions
from pyfn_action.github.inputs import Inputs, parse, secret_values
from pyfn_action.github.previews import (
    close_previews,
    prepare_previews,
    preview_line,
    preview_text,
)
from pyfn_action.github.workflow import Runner
from pyfn_action.report import combined
from pyfn_action.report import compare as sizereport
from pyfn_action.report.combined import Combined
from pyfn_action.report.model import Report
from pyfn_action.report.render import render_markdown

if TYPE_CHECKING:
    from pyfn_action.report.model import Report

log = logging.getLogger("pyfn_action")

TITLES = {
    "native": "pyfn: native code",
    "oversized": "pyfn: oversized file",
    "credentials": "pyfn: credentials",
    "budget": "pyfn: size budget",
    "requirements": "pyfn: requirements",
}


def main(argv: Sequence[str] | None = None) -> int:
    from pyfn_action.signals import terminate_as_interrupt

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        with terminate_as_interrupt():  # a cancelled job leaves no temporary tree behind
            return run(args, dict(os.environ), sys.stdout, cwd=Path.cwd())
    except KeyboardInterrupt:
        sys.stdout.write("pyfn: interrupted\n")
        return 130


def run(args: Sequence[str], env: Mapping[str, str], stdout: TextIO, *, cwd: Path) -> int:
    """The Action's main step; with ``--check-inputs``, the step that checks every input
    first; with ``--cache-key``, the step that names its cache."""
    runner = Runner(env, stdout)
    _configure_logging(stdout, debug=env.get("RUNNER_DEBUG") == "1")
    runner.stop_commands()  # no text below can be taken for a workflow command
    if env.get("RUNNER_OS", "Linux") != "Linux":
        runner.error(
            f"pyfn-action runs on Linux runners only, not on {env.get('RUNNER_OS')}. "
            "Use runs-on: ubuntu-latest (or another Linux runner).",
            title="pyfn",
        )
        return 2
    for secret in secret_values(env):  # before anything could say them
        runner.mask(secret)
    try:
        if list(args) == ["--cache-key"]:
            return cache_key(env, runner, cwd)
        if args and list(args) != ["--check-inputs"]:
            raise ConfigError(
                f"Unknown arguments {' '.join(args)!r}",
                fix="Run entrypoint.py with no arguments, --check-inputs or --cache-key",
            )
        inputs = parse(env, cwd=cwd)
        for secret in inputs.secrets:
            runner.mask(secret)
        event = read_event(env)
        if event.is_pull_request:
            _judge_pull_request(inputs, event, env)
        base_report = load_base_report(inputs.base_report) if inputs.base_report else None
        functions = resolve_functions(inputs, env)
        if args:  # --check-inputs: the composite's first step, and what it decides
            runner.set_output("cache", "true" if inputs.cache else "false")
            runner.set_output("functions", function_list(inputs))
            kept = basecache.plan(env, event)
            if inputs.cache and base_report is None:
                runner.set_output("reports-path", str(kept.path))
                runner.set_output("reports-save-key", kept.save_key)
                runner.set_output("reports-restore-key", kept.restore_key)
            log.info("inputs checked: %d function(s)", len(functions))
            return 0
        return _run(inputs, event, functions, base_report, env, runner)
    except PyfnError as exc:
        _report_error(runner, exc, env)
        return exc.exit_code


# --- the steps of a run ---------------------------------------------------------------


def _judge_pull_request(inputs: Inputs, event: Event, env: Mapping[str, str]) -> None:
    """A pull request event is built only where its answer can be right."""
    if inputs.deploy:
        raise ConfigError(
            f"deploy is true on a {event.name} event",
            why="a pull request's code would be deployed where its base branch's runs",
            fix="Deploy on push (or a release) in a job of its own: deploy: "
            "${{ github.event_name == 'push' }}",
        )
    if inputs.preview and event.name != "pull_request":
        raise ConfigError(
            f"preview is true on a {event.name} event",
            why="pull_request_target runs with the base repository's secrets, so a preview "
            "there would deploy any fork's code with them",
            fix="Preview on the pull_request event (forks then get no credentials, and no preview)",
        )
    if inputs.preview and event.closed:
        return  # nothing is built: the previews are deleted
    require_pull_request_commit(event, inputs.workdir, env)


def _run(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    base_report: Report | None,
    env: Mapping[str, str],
    runner: Runner,
) -> int:
    if inputs.preview and event.closed:
        failure = close_previews(inputs, event, functions, env, runner)
        if failure is not None:
            _report_error(runner, failure, env)
            return failure.exit_code
        return 0
    if inputs.deploy:
        # Every function's deploy settings and credentials are judged before anything
        # is built or uploaded: a mistake in the last one deploys none.
        for function in functions:
            require_deploy_settings(function.settings, env, "deploy")
            function.prepared = prepare_deploy(
                function.config, function.settings, env, dry_run=False
            )
    if inputs.preview:
        prepare_previews(inputs, event, functions, env, runner)
    for function in functions:
        doing = "deploy" if inputs.deploy else "build"
        doing = "build and preview" if function.preview_target else doing
        with runner.group(f"pyfn: {doing} {function.name}"):
            _build_or_deploy(function, env)
        for finding in function.findings:  # what did not stop the build
            _annotate(runner, finding, env, error=finding.kind == "native")
        notice = function.report.runtime.get("notice") if function.report else None
        if isinstance(notice, str) and notice:  # the runtime's calendar
            runner.warning(f"{function.name}: {notice}", title="pyfn: Node.js runtime")
        if function.error is not None and inputs.deploy:
            break  # deploy nothing more once one function failed
    if inputs.bench:
        speed.measure_all(inputs, functions, env, runner)
    kept = basecache.plan(env, event)
    if inputs.cache and kept.save_key and event.sha:  # a push to the default branch
        basecache.clear(kept.path)
        basecache.save(
            kept.path,
            event.sha,
            [(f.name, f.report_path) for f in functions if f.report_path is not None],
        )
    bases: dict[str, Report | None]
    if base_report is not None:
        base_label, bases = "the base report", {f.name: base_report for f in functions}
        for function in functions:
            function.base_from = "report"
    else:
        base_label, bases = _bases(inputs, event, functions, kept, env, runner)
    for function in functions:
        known = function.name in bases
        _compare(function, known, bases.get(function.name), base_label)
    job, body, path = _bodies(inputs, event, functions, base_label, env, runner)
    if event.is_pull_request:
        runner.summary(_base_sources(functions, base_label))
    if event.is_pull_request and inputs.comment:
        _comment(inputs, event, functions, job, env, runner)
    elif inputs.comment and not event.is_pull_request:
        log.debug("not a pull request event: no comment")
    _outputs(functions, body, path, runner)
    failed = [f for f in functions if f.error is not None]
    for function in failed:
        assert function.error is not None
        _report_error(runner, function.error, env, function=function.name)
    return failed[0].error.exit_code if failed and failed[0].error else 0


def _bases(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    kept: basecache.Plan,
    env: Mapping[str, str],
    runner: Runner,
) -> tuple[str, dict[str, Report | None]]:
    """Each function's base report: read from the Actions cache where a push kept it,
    else built at the base commit; and how to name the base."""
    names = [f.name for f in functions if f.report is not None]
    cached: dict[str, Report] = {}
    if inputs.cache and kept.restore_key and event.base_sha:
        cached = basecache.load(kept.path, event.base_sha, names)
        if cached:
            log.info(
                "base reports read from the cache for %d of %d function(s)", len(cached), len(names)
            )
    wanted = [
        (f.name, f.source) for f in functions if f.report is not None and f.name not in cached
    ]
    hook = speed.base_hook(inputs, functions, env)
    label, built = (
        base_reports(inputs, event, wanted, env, runner, after_build=hook) if wanted else ("", {})
    )
    bases: dict[str, Report | None] = {**built, **cached}
    for function in functions:
        if function.name in cached:
            function.base_from = "cache"
        elif built.get(function.name) is not None:
            function.base_from = "built"
    if cached and not label:  # no base was built: the base is named all the same
        label = base_label(event)
    return label, bases


def _build_or_deploy(function: Function, env: Mapping[str, str]) -> None:
    try:
        if function.prepared is not None and function.preview_target is not None:
            function.preview = deploy_preview(function.prepared, env, function.preview_target)
            result = function.preview.outcome.build
        elif function.prepared is not None:
            outcome = deploy_function(function.prepared, env, dry_run=False)
            result = outcome.build
            function.url = outcome.deployed.url if outcome.deployed else None
        else:
            result = build_function(function.config, env)
    except BudgetExceeded as exc:
        function.error, function.report = exc, exc.report
        return
    except PyfnError as exc:
        function.error = exc
        return
    function.report, function.bundle, function.report_path = (
        result.report,
        result.bundle,
        result.report_path,
    )
    function.findings = list(result.findings)


def _compare(function: Function, known: bool, base: Report | None, base_label: str) -> None:
    """The function's report against its base. ``known`` says the base was looked at;
    with no ``base`` there, the function is new."""
    if function.report is None:
        return
    function.comparison = sizereport.compare(
        function.report,
        base,
        new_function=known and base is None,
        base_label=base_label if base is not None else "",
    )


def _bodies(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    base_label: str,
    env: Mapping[str, str],
    runner: Runner,
) -> tuple[Combined | None, str, Path | None]:
    """The markdown a reviewer reads, written to its file and the job summary: one body
    for the job (``combined``, and ``off``, which posts nothing), or one a function
    (``per-function``, each in its out directory as ``comment.md``). Back come the job's
    comment (``None`` per function), and its body, or the first function's, with its file."""
    compared = [f for f in functions if f.comparison is not None]
    speed_lines, speed_note, _ = speed.section(functions)
    if inputs.comment_mode == "per-function":
        bodies = {}
        for function in compared:
            assert function.comparison is not None
            bodies[function.name] = (
                render_markdown(function.comparison)
                + preview_text(function)
                + speed.section([function])[2]
            )
            function.comment_path = _write(
                function.config.out / "comment.md", bodies[function.name]
            )
            runner.summary(bodies[function.name])
        first = functions[0] if functions else None  # in source order
        if first is None or first.comment_path is None:
            return None, "", None
        return None, bodies[first.name], first.comment_path
    if not compared:
        alone = speed.section(functions)[2]  # a push measured: said in the summary only
        if alone:
            runner.summary(alone)
        return None, "", None
    job = Combined(
        key=inputs.comment_key or default_key(env),
        entries=tuple(
            combined.entry(f.comparison, threshold=inputs.minimum, base_from=f.base_from)
            for f in compared
            if f.comparison is not None
        ),
        sha=event.head_sha or "",
        base_label=base_label if any(f.base_from for f in compared) else "",
        minimum=inputs.minimum.describe(),
        previews=tuple(preview_line(f) for f in functions if f.preview or f.no_preview),
        speed=speed_lines,
        speed_note=speed_note,
    )
    body = combined.render(job)
    runner.summary(body)
    return job, body, _write(_job_comment_path(functions, inputs.workdir), body)


def _base_sources(functions: Sequence[Function], label: str) -> str:
    """For the job summary: where each function's base came from."""
    said = {
        "cache": "read from the Actions cache (kept by a push)",
        "built": "built at the base commit",
        "report": "the base-report input",
        "": "none (a new function, or no base could be had)",
    }
    lines = [f"Bases{' (' + label + ')' if label else ''}:", ""]
    lines += [f"- `{f.name}`: {said[f.base_from]}" for f in functions if f.report is not None]
    return "\n".join(lines) + "\n"


def _job_comment_path(functions: Sequence[Function], workdir: Path) -> Path:
    """Where the job's comment is written: ``comment.md`` in the directory above the
    functions' outs (``dist`` for ``dist/NAME``), or in the one out there is; never the
    working directory itself, never outside it."""
    outs = [f.config.out.resolve() for f in functions]
    if len(outs) == 1:
        return outs[0] / "comment.md"
    common = Path(os.path.commonpath(outs))
    root = workdir.resolve()
    if common != root and common.is_relative_to(root):
        return common / "comment.md"
    return outs[0] / "pyfn-comment.md"


def _write(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body, encoding="utf-8")
    return path


def _comment(
    inputs: Inputs,
    event: Event,
    functions: list[Function],
    job: Combined | None,
    env: Mapping[str, str],
    runner: Runner,
) -> None:
    posting = [f for f in functions if f.comparison is not None and f.comment_path is not None]
    if job is None and not posting:
        return
    fallback = "the size report is in the job summary and the comment-body output"
    if not inputs.token:
        runner.warning(f"No github-token: no pull request comment; {fallback}", title="pyfn")
        return
    assert event.pull_number is not None
    comments = Comments(
        env.get("GITHUB_API_URL") or "https://api.github.com",
        event.repository,
        inputs.token,
        graphql_url=env.get("GITHUB_GRAPHQL_URL") or None,
    )
    try:
        if job is not None:
            posted = post_combined(comments, event.pull_number, job)
            if posted is not None:
                log.info("%s the size comment: %s", posted.action, posted.url)
            return
        for function in posting:
            assert function.comparison is not None and function.comment_path is not None
            marker = sizereport.marker(function.comparison.function)
            posted = comments.upsert(
                event.pull_number, marker, function.comment_path.read_text(encoding="utf-8")
            )
            log.info("%s the size comment for %s: %s", posted.action, function.name, posted.url)
    except CommentError as exc:
        why = "the token may not write to this pull request" if exc.forbidden else "GitHub failed"
        runner.warning(f"No pull request comment ({why}: {exc.message}); {fallback}", title="pyfn")


def _outputs(functions: list[Function], body: str, path: Path | None, runner: Runner) -> None:
    """The step's outputs: the first function's figures (in ``source`` order, whatever
    became of it), the comment's markdown and file, and every function's figures."""
    figures = {f.name: _figures(f) for f in functions if f.report is not None}
    if functions:
        for name, value in _figures(functions[0]).items():
            if name not in ("name", "source"):
                runner.set_output(name, value)
    runner.set_output("comment-body", body)
    runner.set_output("comment-path", str(path or ""))
    runner.set_output("reports", json.dumps(figures, sort_keys=True))
    previews = {f.name: f.preview.url for f in functions if f.preview is not None}
    runner.set_output("preview-urls", json.dumps(previews, sort_keys=True))


def function_list(inputs: Inputs) -> str:
    """``functions``: the function directories found, relative to the working directory,
    as JSON (for a later job's ``strategy.matrix``)."""
    root = inputs.workdir.resolve()
    return json.dumps([p.relative_to(root).as_posix() or "." for p in inputs.sources])


def _figures(function: Function) -> dict[str, Any]:
    report = function.report
    built = function.bundle is not None
    return {
        "name": function.name,
        "source": str(function.source),
        "bundle": str(function.bundle or ""),
        "sha256": report.bundle.sha256 if report is not None and built else "",
        # a bundle refused by its budget still has its sizes: what was refused
        "compressed-bytes": str(report.bundle.compressed_bytes) if report else "",
        "uncompressed-bytes": str(report.bundle.uncompressed_bytes) if report else "",
        "report": str(function.report_path or "") if built else "",
        "url": function.url or "",
    }


# --- errors and annotations ------------------------------------------------------------


def _report_error(
    runner: Runner, exc: PyfnError, env: Mapping[str, str], *, function: str = ""
) -> None:
    for finding in exc.findings:
        _annotate(runner, finding, env, error=True)
    prefix = f"{function}: " if function else ""
    runner.error(prefix + exc.message, title=f"pyfn: {type(exc).__name__}")
    if log.isEnabledFor(logging.DEBUG):
        log.debug("traceback", exc_info=exc)


def _annotate(runner: Runner, finding: Finding, env: Mapping[str, str], *, error: bool) -> None:
    file = _workspace_path(finding.file, env) if finding.file is not None else None
    say = runner.error if error else runner.warning
    say(
        finding.message,
        file=file,
        line=finding.line if file else None,
        title=TITLES.get(finding.kind, "pyfn"),
    )


def _workspace_path(path: Path, env: Mapping[str, str]) -> str | None:
    """``path`` relative to the repository, as annotations name files; else ``None``."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(workspace).as_posix()
    except (ValueError, OSError):
        return None


# --- logging --------------------------------------------------------------------------


def _configure_logging(stream: TextIO, *, debug: bool) -> None:
    """Log lines on the same stream as the commands, so that they keep their order."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("pyfn: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("urllib3", "google", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
