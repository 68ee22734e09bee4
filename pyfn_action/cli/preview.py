"""``pyfn preview deploy|delete|list``: a pull request's preview functions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from pyfn_action.cli.settings import (
    add_config_flags,
    add_source,
    deploy_settings,
    flag_values,
    wants_json,
)
from pyfn_action.config import DEPLOY_KEYS, KEYS, resolve_deploy
from pyfn_action.progress import terminal_progress


def add_preview(commands: Any) -> None:
    preview = commands.add_parser(
        "preview",
        help="deploy, list and delete a pull request's preview functions",
        description="A preview is the function deployed under a name of its own "
        "(NAME-pr-N), labelled with its repository and pull request, with no instance kept "
        "warm and at most --max-instances; found by its labels to be listed and deleted.",
    )
    sub = preview.add_subparsers(dest="preview_command", required=True, metavar="COMMAND")
    _add_deploy(sub)
    _add_delete(sub)
    _add_list(sub)


def _whose(parser: argparse.ArgumentParser, *, pr_required: bool) -> None:
    parser.add_argument(
        "--pr", type=int, required=pr_required, metavar="N", help="the pull request's number"
    )
    parser.add_argument(
        "--repo", metavar="OWNER/NAME", help="its repository (default: $GITHUB_REPOSITORY)"
    )


def _add_deploy(sub: Any) -> None:
    deploy = sub.add_parser(
        "deploy",
        help="build the function and deploy it as the pull request's preview",
        description="Build the function and deploy that bundle as NAME-pr-N, with the "
        "function's settings, min_instances 0, at most --max-instances, and the preview's "
        "labels; update it in place if it is this pull request's preview already. A "
        "function of that name without them is never touched. Event functions get none.",
    )
    add_source(deploy, "the function's directory (default: .)")
    _whose(deploy, pr_required=True)
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
    add_config_flags(deploy, [k for k in KEYS if k != "dry_run"])
    add_config_flags(
        deploy, [k for k in DEPLOY_KEYS if k not in ("min_instances", "max_instances")], DEPLOY_KEYS
    )
    deploy.set_defaults(handler=_cmd_deploy)


def _add_delete(sub: Any) -> None:
    delete = sub.add_parser(
        "delete",
        help="delete a pull request's previews, or those older than an age",
        description="Delete the preview functions of pull request --pr, or every preview "
        "not changed for --older-than (of --repo only, if given), found by their labels in "
        "every region. Nothing to delete is no error; a delete that fails fails the command.",
    )
    _whose(delete, pr_required=False)
    delete.add_argument(
        "--older-than",
        metavar="AGE",
        help="previews last deployed longer ago than AGE: 30m, 12h, 7d, 2w",
    )
    delete.add_argument("--dry-run", action="store_true", help="say what would be deleted")
    add_config_flags(delete, ["project", "timeout"], DEPLOY_KEYS)
    add_config_flags(delete, ["json", "debug"])
    delete.set_defaults(handler=_cmd_delete)


def _add_list(sub: Any) -> None:
    listing = sub.add_parser(
        "list",
        help="list the preview functions of a project, with their age",
        description="List the project's preview functions in every region: name, region, "
        "generation, repository, pull request, age (since it was last deployed) and URL.",
    )
    _whose(listing, pr_required=False)
    add_config_flags(listing, ["project"], DEPLOY_KEYS)
    add_config_flags(listing, ["json", "debug"])
    listing.set_defaults(handler=_cmd_list)


def _repository(value: str | None) -> str | None:
    """``OWNER/NAME`` as given (``None``: none given), checked as the event's is."""
    from pyfn_action.errors import ConfigError
    from pyfn_action.github.event import REPOSITORY

    if value and not REPOSITORY.match(value):
        raise ConfigError(f"{value!r} is not a repository", fix="Pass --repo OWNER/NAME")
    return value or None


def _cmd_deploy(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.errors import ConfigError
    from pyfn_action.flows.previews import PreviewTarget, deploy_preview, prepare_preview

    config, settings = deploy_settings(args, env)
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


def _cmd_delete(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
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
    settings = resolve_deploy(None, env=env, flags=flag_values(args, DEPLOY_KEYS))
    json_out = wants_json(args, env)
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


def _cmd_list(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from datetime import datetime, timezone

    from pyfn_action.flows.previews import find_previews, select

    settings = resolve_deploy(None, env=env, flags=flag_values(args, DEPLOY_KEYS))
    json_out = wants_json(args, env)
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
