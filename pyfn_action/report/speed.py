"""A function's speed (``pyfn bench``, ``bench: true``) as the job's comment says it: its
lines of the speed section, and their row of the comment's hidden data, read back.

The lines are plain text, one a request, drawn by :func:`pyfn_action.report.bench.section`
for the comment and the job summary alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyfn_action.report.bench import section
from pyfn_action.report.fields import NotCombined, listed, text


@dataclass(frozen=True)
class SpeedLines:
    """A function's lines of the speed section (``pyfn bench``): plain text, one a request."""

    function: str
    lines: tuple[str, ...]


def speed_section(speed: Sequence[SpeedLines], note: str) -> list[str]:
    """The speed section of the functions measured, by name; ``note`` names the machine."""
    if not speed:
        return []
    groups = [(g.function, g.lines) for g in sorted(speed, key=lambda g: g.function)]
    return section(groups, note)


def speed_data(group: SpeedLines) -> list[object]:
    """The function's row of the comment's hidden data."""
    return [group.function, list(group.lines)]


def read_speed(group: object) -> SpeedLines:
    """A function's speed row read back from the hidden data; :class:`NotCombined` if it
    is not one pyfn could have written."""
    if not isinstance(group, list) or len(group) != 2:
        raise NotCombined("a speed section is not a function's")
    function = text(group[0], 63, r"[A-Za-z0-9_.-]+")
    lines = tuple(text(line, 400) for line in listed(group[1], "speed lines")[:100])
    if not function:
        raise NotCombined("a speed section names no function")
    return SpeedLines(function=function, lines=lines)
