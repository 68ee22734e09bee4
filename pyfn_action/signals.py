"""SIGTERM taken as an interruption, as Ctrl-C is.

A CI runner that cancels a job, or a timeout, sends SIGTERM. Python's default for it
ends the process at once, so ``finally`` blocks and ``with`` exits do not run, and a
build's temporary trees (unpacked runtimes, pip's and uv's build directories: a
gigabyte and more) would stay behind. Raised as :class:`KeyboardInterrupt` instead,
it unwinds like Ctrl-C: every temporary tree is removed on the way out, and the
subprocesses a build waits on are killed by :func:`subprocess.run`.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """While the block runs (in the main thread), SIGTERM raises KeyboardInterrupt."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
