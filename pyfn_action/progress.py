"""Progress reporting as a small protocol, so the core never draws anything itself.

The core takes a :class:`ProgressFactory`; the CLI hands it :func:`terminal_progress`, which draws
``tqdm`` bars on a terminal and nothing elsewhere, and tests hand it a recorder.
"""

from __future__ import annotations

import sys
from typing import Protocol


class ProgressTask(Protocol):
    def advance(self, n: int) -> None: ...

    def close(self) -> None: ...


class ProgressFactory(Protocol):
    def __call__(self, label: str, total: int | None, unit: str = "B") -> ProgressTask: ...


class _Silent:
    def advance(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def silent(label: str, total: int | None, unit: str = "B") -> ProgressTask:
    """A ProgressFactory that shows nothing."""
    return _Silent()


class _Bar:
    def __init__(self, label: str, total: int | None, unit: str) -> None:
        from tqdm import tqdm

        self._bar = tqdm(
            total=total,
            desc=label,
            unit=unit,
            unit_scale=True,
            unit_divisor=1024,
            leave=False,
            file=sys.stderr,
        )

    def advance(self, n: int) -> None:
        self._bar.update(n)

    def close(self) -> None:
        self._bar.close()


def terminal_progress(label: str, total: int | None, unit: str = "B") -> ProgressTask:
    """Progress bars on a terminal, nothing when stderr is a file or a CI log."""
    if sys.stderr.isatty():
        return _Bar(label, total, unit)
    return silent(label, total, unit)
