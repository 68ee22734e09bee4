"""Serve a bundle locally exactly as Cloud Functions' Node.js runtime does.

The bundle is unpacked into the cache (:mod:`.served`) and its ``index.js`` runs
under the real Node.js Functions Framework (:mod:`.nodeframework`), the version the
bundle declares. The framework runs in its own process group so that stopping it
stops every PyPy worker with it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import IO

from pyfn_action.bundle import nodepackage
from pyfn_action.flows.nodeframework import Framework

log = logging.getLogger(__name__)

# The write end of each started framework's watch pipe, by its pid (see start()).
_WATCHED: dict[int, int] = {}


def start(
    framework: Framework,
    bundle_dir: Path,
    *,
    entry_point: str,
    host: str,
    port: int,
    env: Mapping[str, str],
    output: IO[bytes] | None = None,
    cleanup: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start the framework on ``bundle_dir`` in a new process group.

    Its output (the function's logs) goes to ``output``, or to this process's own. The
    framework watches a pipe from this process: when this process ends, however it ends,
    the framework removes ``cleanup`` (the unpacked bundle's directory) and kills its
    own process group.
    """
    child_env = dict(env)
    watch_read, watch_write = os.pipe()
    child_env.update(
        PYFN_SERVE_HOST=host,
        PYFN_SERVE_WATCH_FD=str(watch_read),
        NODE_ENV=child_env.get("NODE_ENV", "development"),
        # As pyfn deploy sets it: index.js (and its workers) before the framework.
        NODE_OPTIONS=nodepackage.node_options(child_env.get("NODE_OPTIONS")),
        # Where index.js, loaded first, finds the framework to register its function
        # with, as it finds the one the platform installed next to it.
        NODE_PATH=os.pathsep.join(
            p for p in (str(framework.home / "node_modules"), child_env.get("NODE_PATH")) if p
        ),
    )
    # Only the directory named here is ever removed: never one the caller's environment
    # happened to name.
    child_env.pop("PYFN_SERVE_CLEANUP", None)
    if cleanup is not None:
        child_env["PYFN_SERVE_CLEANUP"] = str(cleanup)
    argv = [
        framework.node,
        str(framework.launcher),
        f"--target={entry_point}",
        f"--source={bundle_dir}",
        f"--port={port}",
        "--signature-type=http",
    ]
    log.debug("starting %s", " ".join(argv))
    try:
        process = subprocess.Popen(
            argv,
            cwd=bundle_dir,
            env=child_env,
            stdout=output,
            stderr=subprocess.STDOUT if output is not None else None,
            start_new_session=True,
            pass_fds=(watch_read,),
        )
    except BaseException:
        os.close(watch_write)
        raise
    finally:
        os.close(watch_read)
    _WATCHED[process.pid] = watch_write  # kept open (never inherited) while it runs
    return process


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> int:
    """Stop the framework's whole process group: TERM, then KILL what is left."""
    code = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        code = process.wait(timeout=grace_seconds)
    # Node itself if it did not stop, and any worker still in the group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    code = process.wait() if code is None else code
    watch = _WATCHED.pop(process.pid, None)
    if watch is not None:
        os.close(watch)
    return code
