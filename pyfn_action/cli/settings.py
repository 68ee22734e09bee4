"""What the commands share: configuration keys as flags and read back through the one
precedence (:mod:`pyfn_action.config`), ``--debug``, and the build as each of them runs it.

A key is a flag by its kind: a ``flag`` is there or not, a ``table`` is repeated
``KEY=VALUE``, a ``value`` is one word; each flag's help is the key's own line.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyfn_action.config import (
    DEPLOY_KEYS,
    KEYS,
    Config,
    DeploySettings,
    Key,
    resolve,
    resolve_deploy,
    resolve_keys,
)
from pyfn_action.progress import terminal_progress

if TYPE_CHECKING:
    from pyfn_action.flows.build import BuildResult


def add_source(parser: argparse.ArgumentParser, help: str) -> None:
    """The function's directory, ``SRC``: optional, ``.`` unless given."""
    parser.add_argument("source", nargs="?", default=".", metavar="SRC", help=help)


def add_config_flags(
    parser: argparse.ArgumentParser, names: Sequence[str], keys: Mapping[str, Key] = KEYS
) -> None:
    """A flag for each key of ``names``, as its kind is written on a command line."""
    for name in names:
        key = keys[name]
        if key.kind == "flag":
            parser.add_argument(
                key.flag, dest=name, action="store_true", default=None, help=key.help
            )
        elif key.kind == "table":
            parser.add_argument(
                key.flag,
                dest=name,
                action="append",
                metavar="KEY=VALUE",
                help=key.help + "; repeatable",
            )
        else:
            parser.add_argument(key.flag, dest=name, metavar=name.upper(), help=key.help)


def flag_values(args: argparse.Namespace, keys: Mapping[str, Key]) -> dict[str, Any]:
    """The flags of ``keys`` given on the command line (those not given are left out)."""
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def wants_json(args: argparse.Namespace, env: Mapping[str, str]) -> bool:
    """``--json`` (or ``PYFN_JSON``) for a command that reads no function's config file."""
    return bool(resolve_keys(["json"], env=env, flags=flag_values(args, KEYS)).get("json", False))


def set_debug(debug: bool | None) -> None:
    """With ``--debug``, every log line from DEBUG up, with the time since pyfn started."""
    if debug:
        root = logging.getLogger()
        root.setLevel(logging.DEBUG)
        for handler in root.handlers:
            handler.setFormatter(
                logging.Formatter("pyfn: %(relativeCreated)7.0f ms %(levelname)s: %(message)s")
            )


def run_build(config: Config, env: Mapping[str, str]) -> BuildResult:
    """The build as every command runs it: progress on a terminal."""
    from pyfn_action.flows.jobs import build_function

    return build_function(config, env, progress=terminal_progress)


def built_config(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    """The build settings of a command that builds for real (no --dry-run of the build)."""
    build_keys = {k: KEYS[k] for k in KEYS if k != "dry_run"}
    config = resolve(Path(args.source), env=env, flags=flag_values(args, build_keys))
    set_debug(config.debug)
    return config


def deploy_settings(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[Config, DeploySettings]:
    """A deploy's build settings and deploy settings, from the function's source and flags."""
    config = built_config(args, env)
    return config, resolve_deploy(Path(args.source), env=env, flags=flag_values(args, DEPLOY_KEYS))
