"""``pyfn upload`` and ``pyfn deploy``: a bundle to the staging bucket, a function to
Cloud Functions."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
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


def add_upload(commands: Any) -> None:
    upload = commands.add_parser(
        "upload",
        help="upload a bundle to the staging bucket (content-addressed, idempotent)",
        description="Upload a bundle to gs://BUCKET/PREFIX/NAME/SHA256.zip unless it is there "
        "already, verified by checksum, and print gs://…#GENERATION.",
    )
    upload.add_argument("bundle", metavar="ZIP", help="the bundle, e.g. dist/bundle.zip")
    upload.add_argument("--name", help="function name (default: from the bundle's manifest)")
    add_config_flags(upload, ["project", "region", "bucket", "prefix"], DEPLOY_KEYS)
    add_config_flags(upload, ["json", "debug"])
    upload.set_defaults(handler=_cmd_upload)


def add_deploy(commands: Any) -> None:
    deploy = commands.add_parser(
        "deploy",
        help="build, upload and deploy a function to Cloud Functions",
        description="Build the function, upload the bundle to the staging bucket and create or "
        "update the function through the Cloud Functions API, writing only the settings "
        "given (an update mask). With --dry-run, print the request and change nothing.",
    )
    add_source(deploy, "the function's directory (default: .)")
    add_config_flags(deploy, [k for k in KEYS if k != "dry_run"])
    deploy.add_argument(
        "--dry-run",
        dest="dry_run",
        action="store_true",
        default=None,
        help="print the plan (the API request and update mask), change nothing",
    )
    add_config_flags(deploy, list(DEPLOY_KEYS), DEPLOY_KEYS)
    deploy.set_defaults(handler=_cmd_deploy)


def _cmd_upload(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.flows.jobs import upload_bundle

    settings = resolve_deploy(None, env=env, flags=flag_values(args, DEPLOY_KEYS))
    json_out = wants_json(args, env)
    result = upload_bundle(
        Path(args.bundle), settings, env, name=args.name, progress=terminal_progress
    )
    if json_out:
        stdout.write(json.dumps(result.to_dict(), indent=2) + "\n")
    else:
        stdout.write(f"{'already uploaded' if result.skipped else 'uploaded'} {result}\n")
    return 0


def _cmd_deploy(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.flows.jobs import deploy

    config, settings = deploy_settings(args, env)
    outcome = deploy(config, settings, env, dry_run=bool(args.dry_run), progress=terminal_progress)
    if config.json:
        stdout.write(json.dumps(outcome.to_dict(), indent=2) + "\n")
    else:
        stdout.write(outcome.to_text())
    return 0
