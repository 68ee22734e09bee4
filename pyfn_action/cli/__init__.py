"""The ``pyfn`` command: a thin adapter that maps arguments to the core and errors to exit codes.

Each command's arguments and handler are in the module of its kind: ``build.py``
(build, serve), ``report.py`` (report, comment), ``deploy.py`` (upload, deploy),
``preview.py``, ``bench.py`` and ``runtime.py`` (runtimes, runtime pack), with what
they share in ``settings.py``. Here they are put together, and :func:`run` is the one
place a :class:`~pyfn_action.errors.PyfnError` becomes a message and an exit code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO

from pyfn_action import __version__
from pyfn_action.cli import bench, build, deploy, preview, report, runtime
from pyfn_action.cli.settings import set_debug
from pyfn_action.errors import PyfnError
from pyfn_action.logs import configure_logging

log = logging.getLogger("pyfn_action")

EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """Every command, in the order ``pyfn --help`` lists them."""
    parser = argparse.ArgumentParser(
        prog="pyfn",
        description="Ship Python functions to Google Cloud Functions on PyPy.",
    )
    parser.add_argument("--version", action="version", version=f"pyfn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build.add_build(commands)
    build.add_serve(commands)
    report.add_report(commands)
    deploy.add_upload(commands)
    deploy.add_deploy(commands)
    preview.add_preview(commands)
    bench.add_bench(commands)
    report.add_comment(commands)
    runtime.add_runtimes(commands)
    runtime.add_runtime(commands)
    return parser


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
    set_debug(debug)
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

    configure_logging(sys.stderr, form="pyfn: %(levelname)s: %(message)s")
    env: dict[str, Any] = dict(os.environ)
    with terminate_as_interrupt():  # a cancelled job leaves no temporary tree behind
        return run(argv, env, sys.stdout, sys.stderr)
