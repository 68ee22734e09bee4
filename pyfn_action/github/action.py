"""The GitHub Action: build every function, report its size on the pull request, deploy.

An adapter, as the ``pyfn`` command is one: it maps the Action's inputs to the
same flows (:mod:`pyfn_action.flows.jobs`) and their results to the runner's
language. The job fails on a build error, an exceeded budget or a failed
deploy, with the command's exit codes; never on a comment that could not be
posted (the body then goes to the job summary and the ``comment-body`` output,
with one warning saying why).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from pyfn_action.errors import BudgetExceeded, ConfigError, PyfnError
from pyfn_action.flows.jobs import build_function, deploy_function, prepare_deploy
from pyfn_action.flows.previews import deploy_preview
from pyfn_action.github import basecache, speed
from pyfn_action.github.annotations import annotate, report_error
from pyfn_action.github.base import (
    base_label,
    base_reports,
    load_base_report,
    require_pull_request_commit,
)
from pyfn_action.github.cachekey import cache_key
from pyfn_action.github.event import Event, read_event
from pyfn_action.github.functions import Function, require_deploy_settings, resolve_functions
from pyfn_action.github.inputs import Inputs, parse, secret_values
from pyfn_action.github.outcome import (
    base_sources,
    bodies,
    function_list,
    post_comment,
    write_outputs,
)
from pyfn_action.github.previews import close_previews, prepare_previews
from pyfn_action.github.workflow import Runner
from pyfn_action.logs import configure_logging
from pyfn_action.report import compare as sizereport
from pyfn_action.report.model import Report

log = logging.getLogger("pyfn_action")


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
    # log lines on the same stream as the commands, so that they keep their order
    configure_logging(stdout, form="pyfn: %(message)s", debug=env.get("RUNNER_DEBUG") == "1")
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
        report_error(runner, exc, env)
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
            report_error(runner, failure, env)
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
            annotate(runner, finding, env, error=finding.kind == "native")
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
    job, body, path = bodies(inputs, event, functions, base_label, env, runner)
    if event.is_pull_request:
        runner.summary(base_sources(functions, base_label))
    if event.is_pull_request and inputs.comment:
        post_comment(inputs, event, functions, job, env, runner)
    elif inputs.comment and not event.is_pull_request:
        log.debug("not a pull request event: no comment")
    write_outputs(functions, body, path, runner)
    failed = [f for f in functions if f.error is not None]
    for function in failed:
        assert function.error is not None
        report_error(runner, function.error, env, function=function.name)
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
