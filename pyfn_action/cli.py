"""The ``pyfn`` command: a thin adapter that maps arguments to the core and errors to exit codes."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from pyfn_action import __version__
from pyfn_action.config import (
    BENCH_KEYS,
    DEPLOY_KEYS,
    KEYS,
    Config,
    Key,
    _bool,
    _table,
    resolve,
    resolve_bench,
    resolve_deploy,
    resolve_keys,
)
from pyfn_action.errors import PyfnError
from pyfn_action.flows.jobs import cache_dir, source_date_epoch
from pyfn_action.progress import terminal_progress

log = logging.getLogger("pyfn_action")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# --- argument parsing ---------------------------------------------------------


def _add_config_flags(
    parser: argparse.ArgumentParser, names: Sequence[str], keys: Mapping[str, Key] = KEYS
) -> None:
    for name in names:
        key = keys[name]
        if key.parse is _bool:
            parser.add_argument(
                key.flag, dest=name, action="store_true", default=None, help=key.help
            )
        elif key.parse is _table:
            parser.add_argument(
                key.flag,
                dest=name,
                action="append",
                metavar="KEY=VALUE",
                help=key.help + "; repeatable",
            )
        else:
            parser.add_argument(key.flag, dest=name, metavar=name.upper(), help=key.help)


def _flags(args: argparse.Namespace, keys: Mapping[str, Key]) -> dict[str, Any]:
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pyfn",
        description="Ship Python functions to Google Cloud Functions on PyPy.",
    )
    parser.add_argument("--version", action="version", version=f"pyfn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    build = commands.add_parser(
        "build",
        help="bundle a function with PyPy: writes DIR/bundle.zip and DIR/report.json",
        description="Bundle a function with a PyPy runtime, its requirements and the Node shim.",
    )
    build.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SRC",
        help="the function's directory (default: .)",
    )
    _add_config_flags(build, [k for k in KEYS])
    build.set_defaults(handler=_cmd_build)

    serve = commands.add_parser(
        "serve",
        help="build (or take a bundle) and serve it locally as Cloud Functions would",
        description="Serve a bundle under the real Node.js Functions Framework, exactly as "
        "Cloud Functions' Node.js runtime runs it, until interrupted.",
    )
    serve.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SRC",
        help="the function's directory, built first (default: .)",
    )
    serve.add_argument("--bundle", metavar="ZIP", help="serve this bundle instead of building")
    serve.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    serve.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    _add_config_flags(serve, [k for k in KEYS if k != "json"])
    serve.set_defaults(handler=_cmd_serve)

    report = commands.add_parser(
        "report",
        help="show a report.json, optionally against a base report",
        description="Show a bundle's size, part by part; with --base, the change of each part.",
    )
    report.add_argument("report", metavar="REPORT.json")
    report.add_argument("--base", metavar="BASE.json", help="the report to compare against")
    report.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    report.set_defaults(handler=_cmd_report)

    upload = commands.add_parser(
        "upload",
        help="upload a bundle to the staging bucket (content-addressed, idempotent)",
        description="Upload a bundle to gs://BUCKET/PREFIX/NAME/SHA256.zip unless it is there "
        "already, verified by checksum, and print gs://…#GENERATION.",
    )
    upload.add_argument("bundle", metavar="ZIP", help="the bundle, e.g. dist/bundle.zip")
    upload.add_argument("--name", help="function name (default: from the bundle's manifest)")
    _add_config_flags(upload, ["project", "region", "bucket", "prefix"], DEPLOY_KEYS)
    _add_config_flags(upload, ["json", "debug"])
    upload.set_defaults(handler=_cmd_upload)

    deploy = commands.add_parser(
        "deploy",
        help="build, upload and deploy a function to Cloud Functions",
        description="Build the function, upload the bundle to the staging bucket and create or "
        "update the function through the Cloud Functions API, writing only the settings "
        "given (an update mask). With --dry-run, print the request and change nothing.",
    )
    deploy.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SRC",
        help="the function's directory (default: .)",
    )
    _add_config_flags(deploy, [k for k in KEYS if k != "dry_run"])
    deploy.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_true",
        default=None,
        help="print the plan (the API request and update mask), change nothing",
    )
    _add_config_flags(deploy, list(DEPLOY_KEYS), DEPLOY_KEYS)
    deploy.set_defaults(handler=_cmd_deploy)

    _add_preview_parser(commands)
    _add_bench_parser(commands)

    comment = commands.add_parser(
        "comment",
        help="post size reports as sticky pull request comments (GitHub)",
        description="Post each markdown size report the Action wrote (its comment-path: one "
        "comment for all of a job's functions, or a function's own comment.md) as its sticky "
        "comment on a pull request, updating the one already there; a job's comment gets "
        "this job's rows merged in, and is not created when no function changed. "
        "Reads GITHUB_TOKEN, GITHUB_API_URL and GITHUB_REPOSITORY.",
    )
    comment.add_argument("bodies", nargs="+", metavar="BODY.md")
    comment.add_argument("--pr", type=int, required=True, metavar="N", help="pull request number")
    comment.add_argument(
        "--repo", metavar="OWNER/NAME", help="repository (default: $GITHUB_REPOSITORY)"
    )
    comment.add_argument(
        "--head-sha", metavar="SHA", help="refuse unless the pull request's head is this commit"
    )
    comment.set_defaults(handler=_cmd_comment)

    runtimes = commands.add_parser(
        "runtimes",
        help="show Cloud Functions' Node.js runtimes, their calendar and pyfn's picks",
        description="Show each Node.js runtime Cloud Functions offers: its generations, stack "
        "(and glibc), deprecation and decommission dates, and which one pyfn picks for each "
        "generation, and why.",
    )
    runtimes.add_argument("--json", action="store_true", help="print it as JSON")
    runtimes.add_argument(
        "--date",
        metavar="YYYY-MM-DD",
        help="judge the calendar on this day (default: $PYFN_TODAY, else today)",
    )
    runtimes.set_defaults(handler=_cmd_runtimes)

    runtime = commands.add_parser("runtime", help="work with PyPy runtimes")
    runtime_commands = runtime.add_subparsers(
        dest="runtime_command", required=True, metavar="COMMAND"
    )
    pack = runtime_commands.add_parser(
        "pack",
        help="pack an installed PyPy into an archive in the official layout",
        description="Pack an installed PyPy (for example Debian's pypy3) into a relocatable "
        "archive in the official layout, with the shared libraries the Cloud Functions "
        "image lacks, and print its SHA-256.",
    )
    pack.add_argument(
        "pypy",
        nargs="?",
        default="pypy3",
        metavar="PYPY",
        help="the PyPy interpreter to pack (default: pypy3 on PATH)",
    )
    pack.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="ARCHIVE",
        help="where to write it: .tar.gz, .tar.bz2 or .tar.xz",
    )
    pack.add_argument("--debug", action="store_true", default=None, help=KEYS["debug"].help)
    pack.set_defaults(handler=_cmd_runtime_pack)
    return parser


def _add_preview_parser(commands: Any) -> None:
    preview = commands.add_parser(
        "preview",
        help="deploy, list and delete a pull request's preview functions",
        description="A preview is the function deployed under a name of its own "
        "(NAME-pr-N), labelled with its repository and pull request, with no instance kept "
        "warm and at most --max-instances; found by its labels to be listed and deleted.",
    )
    sub = preview.add_subparsers(dest="preview_command", required=True, metavar="COMMAND")

    def whose(parser: argparse.ArgumentParser, *, pr_required: bool) -> None:
        parser.add_argument(
            "--pr", type=int, required=pr_required, metavar="N", help="the pull request's number"
        )
        parser.add_argument(
            "--repo", metavar="OWNER/NAME", help="its repository (default: $GITHUB_REPOSITORY)"
        )

    deploy = sub.add_parser(
        "deploy",
        help="build the function and deploy it as the pull request's preview",
        description="Build the function and deploy that bundle as NAME-pr-N, with the "
        "function's settings, min_instances 0, at most --max-instances, and the preview's "
        "labels; update it in place if it is this pull request's preview already. A "
        "function of that name without them is never touched. Event functions get none.",
    )
    deploy.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SRC",
        help="the function's directory (default: .)",
    )
    whose(deploy, pr_required=True)
    deploy.add_argument(
        "--max-instances",
        dest="preview_max_instances",
        type=int,
        default=1,
        metavar="N",
        help="the preview's maximum instances (default: 1)",
    )
    deploy.add_argument(
        "--allow-unauthenticated",
        action="store_true",
        help="let anyone call the preview (default: only those the project "
        "allows, with an identity token)",
    )
    _add_config_flags(deploy, [k for k in KEYS if k != "dry_run"])
    _add_config_flags(
        deploy, [k for k in DEPLOY_KEYS if k not in ("min_instances", "max_instances")], DEPLOY_KEYS
    )
    deploy.set_defaults(handler=_cmd_preview_deploy)

    delete = sub.add_parser(
        "delete",
        help="delete a pull request's previews, or those older than an age",
        description="Delete the preview functions of pull request --pr, or every preview "
        "not changed for --older-than (of --repo only, if given), found by their labels in "
        "every region. Nothing to delete is no error; a delete that fails fails the command.",
    )
    whose(delete, pr_required=False)
    delete.add_argument(
        "--older-than",
        metavar="AGE",
        help="previews last deployed longer ago than AGE: 30m, 12h, 7d, 2w",
    )
    delete.add_argument("--dry-run", action="store_true", help="say what would be deleted")
    _add_config_flags(delete, ["project", "timeout"], DEPLOY_KEYS)
    _add_config_flags(delete, ["json", "debug"])
    delete.set_defaults(handler=_cmd_preview_delete)

    listing = sub.add_parser(
        "list",
        help="list the preview functions of a project, with their age",
        description="List the project's preview functions in every region: name, region, "
        "generation, repository, pull request, age (since it was last deployed) and URL.",
    )
    whose(listing, pr_required=False)
    _add_config_flags(listing, ["project"], DEPLOY_KEYS)
    _add_config_flags(listing, ["json", "debug"])
    listing.set_defaults(handler=_cmd_preview_list)


def _add_bench_parser(commands: Any) -> None:
    bench = commands.add_parser(
        "bench",
        help="measure the function on PyPy against Cloud Functions' native Python runtime",
        description="Build (or take --bundle) and serve the function as pyfn serve does, "
        "and serve the same source on CPython with the Python Functions Framework under "
        "gunicorn, as the native runtime does; check both answer each [[bench]] request of "
        "pyfn.toml alike, then, taking turns, time one client (p50, p95) and several "
        "(requests a second), the cold start and the idle memory, and print the ratios.",
    )
    bench.add_argument(
        "source",
        nargs="?",
        default=".",
        metavar="SRC",
        help="the function's directory, with its [[bench]] requests (default: .)",
    )
    bench.add_argument("--bundle", metavar="ZIP", help="measure this bundle instead of building")
    bench.add_argument(
        "--duration",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="seconds a measure (default: 3)",
    )
    bench.add_argument(
        "--clients",
        type=int,
        default=8,
        metavar="N",
        help="clients at once for requests a second (default: 8)",
    )
    bench.add_argument(
        "--warmup",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="seconds of requests to each side before it is timed (default: 2)",
    )
    bench.add_argument(
        "--cold-starts",
        type=int,
        default=3,
        metavar="N",
        help="fresh starts of each side, timed to the first answer (default: 3)",
    )
    bench.add_argument(
        "--settle",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="idle seconds after a fresh start before the memory is read (default: 3)",
    )
    bench.add_argument(
        "--cpython",
        metavar="VERSION",
        help="the native side's CPython: a version (3.12) or a path (default: "
        "this Python if it is CPython, else python3)",
    )
    _add_config_flags(bench, list(BENCH_KEYS), BENCH_KEYS)
    _add_config_flags(bench, [k for k in KEYS if k not in ("dry_run",)])
    bench.set_defaults(handler=_cmd_bench)


# --- commands ------------------------------------------------------------------


def _build(config: Config, env: Mapping[str, str]) -> Any:
    """The build as every command runs it: progress on a terminal."""
    from pyfn_action.flows.jobs import build_function

    return build_function(config, env, progress=terminal_progress)


def _cmd_build(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.bundle.trim import plan_dict, render_plan
    from pyfn_action.report.render import render_table

    config = resolve(Path(args.source), env=env, flags=_flags(args, KEYS))
    _set_debug(config.debug)
    result = _build(config, env)
    if result.report is None:  # a dry run
        if config.json:
            stdout.write(json.dumps(plan_dict(result.plan), indent=2) + "\n")
        else:
            stdout.write(render_plan(result.plan))
        return 0
    if config.json:
        stdout.write(result.report.to_json())
    else:
        stdout.write(render_table(result.report))
        stdout.write(f"\nwrote {result.bundle} (sha256 {result.report.bundle.sha256})\n")
        stdout.write(f"wrote {result.report_path}\n")
    return 0


def _cmd_report(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.report import render
    from pyfn_action.report.compare import compare
    from pyfn_action.report.model import load

    report = load(Path(args.report))
    base = load(Path(args.base)) if args.base else None
    comparison = compare(report, base)
    renderer = {
        "text": render.render_text,
        "markdown": render.render_markdown,
        "json": render.render_json,
    }[args.format]
    stdout.write(renderer(comparison))
    return 0


def _runtime_mismatch(framework: Any, manifest: Any, env: Mapping[str, str]) -> str:
    """The serve warning for the runtime the bundle was built for (its manifest says
    which; a bundle of an older pyfn, that does not, is judged against pyfn's pick)."""
    from pyfn_action.flows import nodeframework
    from pyfn_action.runtime import noderuntimes

    on = noderuntimes.today(env)
    gen = manifest.function.gen
    name = manifest.runtime.get("node_runtime") or noderuntimes.choose(gen, None, on).name
    return nodeframework.runtime_mismatch(framework, str(name), gen, on, env)


def _cmd_serve(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    import signal

    from pyfn_action.flows import nodeframework, serve, served

    if args.bundle:
        # No source to read a config file from: the cache is the flag's, else PYFN_CACHE_DIR's.
        bundle = Path(args.bundle)
        given = resolve_keys(["cache_dir"], env=env, flags=_flags(args, KEYS))
        cache = cache_dir(given.get("cache_dir"))
    else:
        config = resolve(Path(args.source), env=env, flags=_flags(args, KEYS))
        _set_debug(config.debug)
        cache = cache_dir(config.cache_dir)
        result = _build(config, env)
        if result.bundle is None:
            from pyfn_action.errors import ServeError

            raise ServeError("Nothing to serve after a dry run", fix="Drop --dry-run")
        bundle = result.bundle

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)  # also when run() is called alone
    # A bad bundle fails before anything is installed.
    with served.served_copy(bundle, cache) as copy:
        root, entry_point = copy.root, copy.manifest.function.entry_point
        framework = nodeframework.ensure_framework(
            cache, env, nodeframework.declared_framework(root)
        )
        mismatch = _runtime_mismatch(framework, copy.manifest, env)
        if mismatch:
            log.warning("%s", mismatch)
        process = serve.start(
            framework,
            root,
            entry_point=entry_point,
            host=args.host,
            port=args.port,
            env=env,
            cleanup=copy.cleanup,
        )
        shown = f"[{args.host}]" if ":" in args.host else args.host
        stdout.write(
            f"Serving {entry_point} from {bundle} at http://{shown}:{args.port}/ "
            f"under the Node.js Functions Framework {framework.package.spec} "
            "(Ctrl-C to stop)\n"
        )
        stdout.flush()
        try:
            code = process.wait()
        except KeyboardInterrupt:
            serve.stop(process)
            stdout.write("Stopped.\n")
            return 0
        finally:
            signal.signal(signal.SIGTERM, previous)
            if process.poll() is None:
                serve.stop(process)
    from pyfn_action.errors import ServeError

    raise ServeError(
        f"The Node.js Functions Framework exited with status {code}",
        why="see its messages above (a port already in use, for example)",
        fix="Pick another --port, or check the bundle with pyfn build",
    )


def _cmd_upload(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.flows.jobs import upload_bundle

    settings = resolve_deploy(None, env=env, flags=_flags(args, DEPLOY_KEYS))
    json_out = resolve_keys(["json"], env=env, flags=_flags(args, KEYS)).get("json", False)
    result = upload_bundle(
        Path(args.bundle), settings, env, name=args.name, progress=terminal_progress
    )
    if json_out:
        stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        stdout.write(f"{'already uploaded' if result.skipped else 'uploaded'} {result}\n")
    return 0


def _built_config(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    """The build settings of a command that builds for real (no --dry-run of the build)."""
    build_keys = {k: KEYS[k] for k in KEYS if k != "dry_run"}
    config = resolve(Path(args.source), env=env, flags=_flags(args, build_keys))
    _set_debug(config.debug)
    return config


def _deploy_settings(args: argparse.Namespace, env: Mapping[str, str]) -> tuple[Config, Any]:
    """A deploy's build settings and deploy settings, from the function's source and flags."""
    config = _built_config(args, env)
    return config, resolve_deploy(Path(args.source), env=env, flags=_flags(args, DEPLOY_KEYS))


def _cmd_deploy(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.flows.jobs import deploy

    config, settings = _deploy_settings(args, env)
    outcome = deploy(config, settings, env, dry_run=bool(args.dry_run), progress=terminal_progress)
    if config.json:
        stdout.write(json.dumps(outcome.to_dict(), indent=2) + "\n")
    else:
        stdout.write(outcome.to_text())
    return 0


def _repository(value: str | None) -> str | None:
    """``OWNER/NAME`` as given (``None``: none given), checked as the event's is."""
    from pyfn_action.errors import ConfigError
    from pyfn_action.github.event import REPOSITORY

    if value and not REPOSITORY.match(value):
        raise ConfigError(f"{value!r} is not a repository", fix="Pass --repo OWNER/NAME")
    return value or None


def _cmd_preview_deploy(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.errors import ConfigError
    from pyfn_action.flows.previews import PreviewTarget, deploy_preview, prepare_preview

    config, settings = _deploy_settings(args, env)
    repository = _repository(args.repo or env.get("GITHUB_REPOSITORY"))
    if repository is None:
        raise ConfigError(
            "No repository for the preview's labels",
            fix="Pass --repo OWNER/NAME or set GITHUB_REPOSITORY",
        )
    target = PreviewTarget(
        repository,
        args.pr,
        max_instances=args.preview_max_instances,
        public=args.allow_unauthenticated,
    )
    inputs = prepare_preview(config, settings, env, target)
    preview = deploy_preview(inputs, env, target, progress=terminal_progress)
    if config.json:
        stdout.write(json.dumps(preview.to_dict(), indent=2) + "\n")
        return 0
    stdout.write(preview.outcome.to_text())
    if not preview.public and preview.url:
        stdout.write(f"private: {_identity_curl(preview.url)}\n")
    return 0


def _identity_curl(url: str) -> str:
    return f'curl -H "Authorization: Bearer $(gcloud auth print-identity-token)" {url}'


def _cmd_preview_delete(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.cloud.previews import parse_age
    from pyfn_action.errors import ConfigError
    from pyfn_action.flows.previews import delete_previews, raise_failures

    if args.pr is None and args.older_than is None:
        raise ConfigError(
            "Which previews? Neither --pr nor --older-than is given",
            fix="Pass --pr N (a pull request's previews) or --older-than 7d",
        )
    older_than = parse_age(args.older_than) if args.older_than else None
    # --pr names a pull request of --repo, else of this workflow's repository
    pull_given = args.pr is not None
    repository = _repository(args.repo or (env.get("GITHUB_REPOSITORY") if pull_given else None))
    settings = resolve_deploy(None, env=env, flags=_flags(args, DEPLOY_KEYS))
    json_out = resolve_keys(["json"], env=env, flags=_flags(args, KEYS)).get("json", False)
    deletion = delete_previews(
        settings,
        env,
        repository=repository,
        pull=args.pr,
        older_than=older_than,
        dry_run=args.dry_run,
    )
    failed = {d.listed.path: d.error.message for d in deletion.failed if d.error is not None}
    if json_out:
        rows = [
            {
                "name": p.name,
                "function": p.path,
                "deleted": not args.dry_run and p.path not in failed,
                "error": failed.get(p.path),
            }
            for p in deletion.chosen
        ]
        stdout.write(json.dumps({"dry_run": bool(args.dry_run), "previews": rows}, indent=2) + "\n")
    elif not deletion.chosen:
        stdout.write("no preview to delete\n")
    else:
        verb = "would delete" if args.dry_run else "deleted"
        for preview in deletion.chosen:
            said = "failed" if preview.path in failed else verb
            stdout.write(f"{said} {preview.path}\n")
    raise_failures(deletion)
    return 0


def _cmd_preview_list(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from datetime import datetime, timezone

    from pyfn_action.flows.previews import find_previews, select

    settings = resolve_deploy(None, env=env, flags=_flags(args, DEPLOY_KEYS))
    json_out = resolve_keys(["json"], env=env, flags=_flags(args, KEYS)).get("json", False)
    repository = _repository(args.repo)
    now = datetime.now(timezone.utc)
    found = find_previews(settings, env)
    previews = select(found.previews, repository=repository, pull=args.pr, older_than=None, now=now)
    if json_out:
        stdout.write(json.dumps([p.to_dict(now) for p in previews], indent=2) + "\n")
        return 0
    if not previews:
        stdout.write(f"no preview functions in {found.project}\n")
        return 0
    rows = [("NAME", "REGION", "GEN", "PR", "REPOSITORY", "AGE", "URL")]
    for p in previews:
        rows.append(
            (
                p.name,
                p.region,
                str(p.gen),
                f"#{p.pull}" if p.pull else "?",
                p.labels.get("pyfn-preview-repo", ""),
                _age(p.age(now)),
                p.url or "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        stdout.write("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1] + "\n")
    return 0


def _age(age: Any) -> str:
    """``3d 4h``, ``5h 12m``, ``12m``: how long ago a preview was last deployed."""
    if age is None:
        return "?"
    minutes = max(int(age.total_seconds()) // 60, 0)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def _cmd_bench(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.errors import AnswersDiffer, SlowerThanNative
    from pyfn_action.flows.bench import bench
    from pyfn_action.flows.benchsession import BenchOptions
    from pyfn_action.report.bench import render_text

    config = _built_config(args, env)
    settings = resolve_bench(Path(args.source), env=env, flags=_flags(args, BENCH_KEYS))
    options = BenchOptions(
        duration=args.duration,
        clients=args.clients,
        warmup=args.warmup,
        cold_starts=args.cold_starts,
        settle=args.settle,
        cpython=args.cpython,
    )

    def built(config: Config) -> Path:
        result = _build(config, env)
        assert result.bundle is not None
        return Path(result.bundle)

    def show(result: Any) -> None:
        stdout.write(result.to_json() if config.json else render_text(result))

    try:
        result = bench(
            config,
            env,
            cache_dir=cache_dir(config.cache_dir),
            options=options,
            bundle=Path(args.bundle) if args.bundle else None,
            min_speedup=settings.get("min_speedup"),
            build=built,
        )
    except (AnswersDiffer, SlowerThanNative) as exc:
        show(exc.result)
        raise
    show(result)
    return 0


def _cmd_comment(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.errors import ConfigError
    from pyfn_action.github.bodies import post_bodies
    from pyfn_action.github.comments import Comments

    token = env.get("GITHUB_TOKEN") or env.get("GH_TOKEN")
    repository = args.repo or env.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise ConfigError(
            f"No {'GITHUB_TOKEN' if not token else 'repository'} to post the comment with",
            fix="Set GITHUB_TOKEN (with pull-requests: write) and GITHUB_REPOSITORY or --repo",
        )
    bodies = []
    for name in args.bodies:
        try:
            bodies.append(Path(name).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read {name}", why=str(exc)) from None
    api = env.get("GITHUB_API_URL") or "https://api.github.com"
    comments = Comments(api, repository, token, graphql_url=env.get("GITHUB_GRAPHQL_URL") or None)
    for posted in post_bodies(comments, args.pr, bodies, head_sha=args.head_sha):
        if posted is None:
            stdout.write("not posted: no function changed, and no comment to update\n")
        else:
            stdout.write(f"{posted.action} {posted.url}\n")
    return 0


def _cmd_runtimes(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.report.runtimes import render_runtimes
    from pyfn_action.runtime import noderuntimes

    on = noderuntimes.today({**env, **({"PYFN_TODAY": args.date} if args.date else {})})
    if args.json:
        stdout.write(json.dumps(noderuntimes.describe(on), indent=2) + "\n")
    else:
        stdout.write(render_runtimes(on))
    return 0


def _cmd_runtime_pack(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    import shutil

    from pyfn_action.errors import PackError
    from pyfn_action.runtime.pack import pack_runtime

    interpreter = args.pypy
    if os.sep not in interpreter:
        found = shutil.which(interpreter, path=env.get("PATH"))
        if found is None:
            raise PackError(
                f"No {interpreter!r} on PATH",
                fix="Install PyPy (on Debian: apt-get install pypy3) or pass its path",
            )
        interpreter = found
    result = pack_runtime(
        Path(interpreter),
        Path(args.output),
        progress=terminal_progress,
        source_date_epoch=source_date_epoch(env),
        env=env,
    )
    stdout.write(f"{result.sha256}  {result.path}\n")
    return 0


# --- the one place errors become text and exit codes ----------------------------


def _set_debug(debug: bool | None) -> None:
    if debug:
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)
        for handler in root.handlers:
            handler.setFormatter(
                logging.Formatter("pyfn: %(relativeCreated)7.0f ms %(levelname)s: %(message)s")
            )


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("pyfn: %(levelname)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    for noisy in ("urllib3", "google", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run(
    argv: Sequence[str] | None,
    env: Mapping[str, str],
    stdout: TextIO,
    stderr: TextIO,
) -> int:
    """Parse ``argv``, run the command, and turn any PyfnError into a message and exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = bool(getattr(args, "debug", None)) or env.get("PYFN_DEBUG", "") in ("1", "true")
    _set_debug(debug)
    handler: Callable[[argparse.Namespace, Mapping[str, str], TextIO], int] = args.handler
    try:
        return handler(args, env, stdout)
    except PyfnError as exc:
        if debug or logging.getLogger().isEnabledFor(logging.DEBUG):
            log.exception("traceback (--debug)")
        stderr.write(f"pyfn: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        stderr.write("pyfn: interrupted\n")
        return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    from pyfn_action.signals import terminate_as_interrupt

    _configure_logging()
    env: dict[str, Any] = dict(os.environ)
    with terminate_as_interrupt():  # a cancelled job leaves no temporary tree behind
        return run(argv, env, sys.stdout, sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
