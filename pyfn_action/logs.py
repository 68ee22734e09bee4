"""Logging as pyfn's entry points set it up: one handler with pyfn's prefix, and the
client libraries' chatter kept to warnings.

The ``pyfn`` command logs to stderr with each line's level; the Action logs on the
stream of its workflow commands, so that the two keep their order. Both quiet the same
libraries, which log every HTTP connection and lock at INFO and DEBUG.
"""

from __future__ import annotations

import logging
from typing import TextIO

# Loggers that would drown pyfn's own lines: HTTP connections, Google's clients, locks.
NOISY = ("urllib3", "google", "filelock")


def configure_logging(stream: TextIO, *, form: str, debug: bool = False) -> None:
    """Send every log line to ``stream`` as ``form`` says, from INFO up (DEBUG with
    ``debug``; the noisy libraries' from WARNING up); any handler set before is replaced."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(form))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)
