"""Logging as the command and the Action set it up: one handler, pyfn's prefix, and the
client libraries' chatter kept to warnings."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from pyfn_action.logs import NOISY, configure_logging


@pytest.fixture(autouse=True)
def restored() -> Iterator[None]:
    """The root logger and the noisy ones as they were before each test."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in NOISY}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in levels.items():
        logging.getLogger(name).setLevel(noisy_level)


def test_one_handler_with_pyfns_prefix_from_info_up() -> None:
    stream = io.StringIO()
    configure_logging(stream, form="pyfn: %(levelname)s: %(message)s")
    configure_logging(stream, form="pyfn: %(levelname)s: %(message)s")  # replaces, never adds
    assert len(logging.getLogger().handlers) == 1
    logging.getLogger("pyfn_action.test").debug("hidden")
    logging.getLogger("pyfn_action.test").info("shown")
    assert stream.getvalue() == "pyfn: INFO: shown\n"


def test_debug_shows_debug_lines_but_not_the_libraries_chatter() -> None:
    stream = io.StringIO()
    configure_logging(stream, form="pyfn: %(message)s", debug=True)
    logging.getLogger("pyfn_action.test").debug("ours")
    assert stream.getvalue() == "pyfn: ours\n"
    for name in NOISY:
        library = logging.getLogger(f"{name}.connectionpool")
        assert not library.isEnabledFor(logging.INFO), name
        assert library.isEnabledFor(logging.WARNING), name
