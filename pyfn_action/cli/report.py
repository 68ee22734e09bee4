"""``pyfn report`` and ``pyfn comment``: a size report shown, and posted on a pull request."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO


def add_report(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="show a report.json, optionally against a base report",
        description="Show a bundle's size, part by part; with --base, the change of each part.",
    )
    report.add_argument("report", metavar="REPORT.json")
    report.add_argument("--base", metavar="BASE.json", help="the report to compare against")
    report.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    report.set_defaults(handler=_cmd_report)


def add_comment(commands: Any) -> None:
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
    comments = Comments.from_env(env, repository, token)
    for posted in post_bodies(comments, args.pr, bodies, head_sha=args.head_sha):
        if posted is None:
            stdout.write("not posted: no function changed, and no comment to update\n")
        else:
            stdout.write(f"{posted.action} {posted.url}\n")
    return 0
