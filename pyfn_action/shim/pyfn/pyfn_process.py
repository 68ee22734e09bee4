"""The worker process's footing, set before the function loads: where its pipes are,
what happens when Node goes, which process the out-of-memory killer takes, and
logs as JSON lines.

Part of the worker (``worker.py`` loads it by path, never by name): Python 3.9
and the standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib
import json
import logging
import os
import sys

REQUEST_FD = 3  # where index.js hands the worker its request pipe
RESPONSE_FD = 4  # and its response pipe
# Where the protocol pipes move: high, but below select()'s FD_SETSIZE (1024).
_PROTOCOL_FD_BASES = (960, 240, 64, 10)
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None, quick: bool = True) -> bool:
    """Ask Linux to kill this worker when index.js's process goes away; True if it will.

    ``quick``: through PyPy's built-in ``_cffi_backend``, in well under a millisecond,
    so it is done before the function loads (a hung import dies with Node too).
    Otherwise through ctypes, which takes tens of ms to import on PyPy (after the
    function loaded, only if the quick way is missing). Without prctl (not
    Linux), EOF on the request pipe still ends the worker. ``parent``: index.js's
    pid (``PYFN_NODE_PID``), if it said.
    """
    done = False
    with contextlib.suppress(Exception):
        if quick:
            backend = importlib.import_module("_cffi_backend")
            c_int = backend.new_primitive_type("int")
            c_ulong = backend.new_primitive_type("unsigned long")
            signature = backend.new_function_type((c_int,) + (c_ulong,) * 4, c_int, False)
            prctl = backend.load_library(None).load_function(signature, "prctl")
            done = prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0) == 0  # SIGKILL
        else:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            done = libc.prctl(_PR_SET_PDEATHSIG, 9, 0, 0, 0) == 0
    # Orphaned already, index.js gone before prctl? Its pid says, rather than 1:
    # Node itself may be pid 1 in a container.
    if (os.getppid() != parent) if parent is not None else (os.getppid() == 1):
        os._exit(0)
    return done


def yield_to_node_when_out_of_memory() -> None:
    """The kernel's out-of-memory killer takes a worker (replaced) before Node (the instance)."""
    with contextlib.suppress(OSError):
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)


def move_protocol_fds() -> tuple[int, int]:
    """Move the request and response pipes from fds 3 and 4 out of the user's way.

    They go to high, close-on-exec descriptors (a program the function runs does
    not inherit them), are closed in forked children, and 3 and 4 are closed (a
    user's ``os.write(4, ...)`` or ``echo >&4`` fails instead of corrupting a frame).
    """
    moved = []
    for fd in (REQUEST_FD, RESPONSE_FD):
        for base in _PROTOCOL_FD_BASES:
            try:
                new = fcntl.fcntl(fd, fcntl.F_DUPFD, base)  # PyPy 3.9 has no F_DUPFD_CLOEXEC
                break
            except OSError:  # EINVAL: base is above the descriptor limit
                continue
        else:
            new = os.dup(fd)
        os.set_inheritable(new, False)
        moved.append(new)
    os.close(REQUEST_FD)
    os.close(RESPONSE_FD)
    request_fd, response_fd = moved

    def close_in_child() -> None:
        for fd in moved:
            with contextlib.suppress(OSError):
                os.close(fd)

    os.register_at_fork(after_in_child=close_in_child)
    return request_fd, response_fd


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the severity Cloud Logging reads."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return json.dumps({"severity": record.levelname, "message": message, "logger": record.name})


def configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
