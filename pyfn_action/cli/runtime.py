"""``pyfn runtimes`` and ``pyfn runtime pack``: the Node.js runtimes Cloud Functions
offers, and a PyPy packed for the bundle."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from pyfn_action.config import KEYS
from pyfn_action.flows.jobs import source_date_epoch
from pyfn_action.progress import terminal_progress


def add_runtimes(commands: Any) -> None:
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


def add_runtime(commands: Any) -> None:
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
    pack.set_defaults(handler=_cmd_pack)


def _cmd_runtimes(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
    from pyfn_action.report.runtimes import render_runtimes
    from pyfn_action.runtime import noderuntimes

    on = noderuntimes.today({**env, **({"PYFN_TODAY": args.date} if args.date else {})})
    if args.json:
        stdout.write(json.dumps(noderuntimes.describe(on), indent=2) + "\n")
    else:
        stdout.write(render_runtimes(on))
    return 0


def _cmd_pack(args: argparse.Namespace, env: Mapping[str, str], stdout: TextIO) -> int:
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
