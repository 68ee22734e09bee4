"""Progress reporting as a small protocol, so the core never draws anything itself.

The core takes a :class:`ProgressFactory`; the CLI hands it one that draws
``tqdm`` bars on a terminal and nothing elsewhere, and tests hand it a recorder.
"""

from __future__ import annotations

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
