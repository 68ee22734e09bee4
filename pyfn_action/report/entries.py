"""A function's row of the job's size comment, made from its comparison with the base.

A row holds the function's zipped size, its change less the shim's own (the shim,
the same in every bundle, is said once in the comment, not counted as a change of
each function), its tightest limit and, for a changed function, its folded
component table. A change smaller than ``minimum-change`` (:class:`Threshold`)
counts as unchanged. The comment's hidden data holds each row as a list, read back
field by field (:func:`read_entry`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyfn_action.report.compare import Comparison, Row, _safe_name
from pyfn_action.report.fields import NotCombined, count, integer, text
from pyfn_action.report.model import Limit
from pyfn_action.report.render import COMMENT_LIMIT, component_table
from pyfn_action.sizes import format_size, parse_size

BASE_FROM = ("cache", "built", "report", "")  # where a function's base came from
STATES = ("changed", "unchanged", "new", "unknown")


@dataclass(frozen=True)
class Threshold:
    """``minimum-change``: a change of fewer bytes (or a smaller share of the base) than
    this counts as unchanged; 0 counts every byte."""

    bytes: int = 0
    percent: float | None = None

    def counts(self, change: int, base: int | None) -> bool:
        if change == 0:
            return False
        if self.percent is not None:
            return base is None or base == 0 or abs(change) * 100 >= self.percent * base
        return abs(change) >= self.bytes

    def describe(self) -> str:
        if self.percent is not None:
            return f"{self.percent:g}%"
        return format_size(self.bytes) if self.bytes else ""


def parse_threshold(text: str) -> Threshold:
    """``1KB``, ``500``, ``0.5%`` or ''; :class:`ValueError` saying what is accepted."""
    text = text.strip()
    if not text:
        return Threshold()
    if text.endswith("%"):
        try:
            percent = float(text[:-1].strip())
        except ValueError:
            percent = -1.0
        if not 0 <= percent <= 100 or percent != percent:  # NaN is not a share
            raise ValueError(f"{text!r} is not a share: write a percentage from 0% to 100%")
        return Threshold(percent=percent)
    return Threshold(bytes=parse_size(text))


@dataclass(frozen=True)
class FunctionEntry:
    """One function's row: its size, its change (the shim's left out), its tightest limit."""

    name: str
    zipped: int
    base: int | None  # its zipped size at the base; None: new, or no base known
    change: int  # zipped, against the base, less the shim's own change
    shim: int  # the shim's own change in this function (0 with no base)
    state: str  # changed | unchanged | new | unknown (no base to compare with)
    limit: tuple[str, int, int] | None  # the tightest: (name, used, limit)
    over: bool  # a limit exceeded
    base_from: str = ""  # cache | built | report | "" (see BASE_FROM)
    details: str = ""  # the folded component table (markdown), for a changed function
    notice: str = ""  # what the build warned of the platform: its runtime's calendar

    @property
    def noted(self) -> bool:
        """Worth a row of the table (and a comment): changed, new, not compared (its size
        is news when no base could be had) or over a limit."""
        return self.state != "unchanged" or self.over


def entry(comparison: Comparison, *, threshold: Threshold, base_from: str = "") -> FunctionEntry:
    """A function's row from its comparison with the base."""
    total = comparison.total
    zipped = total.compressed_bytes or 0
    base = total.base_compressed_bytes if comparison.has_base else None
    shim = sum(
        (r.compressed_bytes or 0) - (r.base_compressed_bytes or 0)
        for r in comparison.rows
        if r.kind == "shim" and comparison.has_base
    )
    change = zipped - base - shim if base is not None else 0
    if comparison.new_function:
        state = "new"
    elif base is None:
        state = "unknown"
    else:
        state = "changed" if threshold.counts(change, base) else "unchanged"
    shown = [r for r in comparison.rows if _shown(r, threshold)]
    details = ""
    if state in ("changed", "new") and shown:
        details = "\n".join(component_table(shown, comparison.has_base, COMMENT_LIMIT))
    return FunctionEntry(
        name=_safe_name(comparison.function or "function"),
        zipped=zipped,
        base=base,
        change=change,
        shim=shim,
        state=state,
        limit=tightest(comparison.limits),
        over=any(not x.ok for x in comparison.limits),
        base_from=base_from if base_from in BASE_FROM else "",
        details=details,
        notice=comparison.notices[0] if comparison.notices else "",
    )


def tightest(limits: Sequence[Limit]) -> tuple[str, int, int] | None:
    """The limit the bundle comes closest to (or exceeds most), as a row holds it."""
    if not limits:
        return None
    most = max(limits, key=lambda x: x.used_bytes / max(x.limit_bytes, 1))
    return most.name, most.used_bytes, most.limit_bytes


def _shown(row: Row, threshold: Threshold) -> bool:
    """A component row the folded table shows: changed beyond the minimum (every part of a
    new function), never the shim, which is said once for all."""
    if row.kind == "shim" or row.status == "unchanged":
        return False
    if row.status in ("", "new", "removed"):
        return True
    change = (row.compressed_bytes or 0) - (row.base_compressed_bytes or 0)
    return threshold.counts(change, row.base_compressed_bytes)


def entry_data(e: FunctionEntry, notices: list[str]) -> list[object]:
    """The row as the comment's hidden data holds it (its notice by index in ``notices``;
    its folded table is in the comment itself)."""
    limit = list(e.limit) if e.limit else None
    notice = notices.index(e.notice) if e.notice else None
    return [e.name, e.zipped, e.base, e.change, e.shim, e.state, limit, e.over, e.base_from, notice]


def read_entry(row: object, details: dict[str, str], notices: list[str]) -> FunctionEntry:
    """A row read back from the hidden data, with its folded table from ``details``;
    :class:`NotCombined` if it is not one pyfn could have written."""
    if not isinstance(row, list) or len(row) != 10:
        raise NotCombined("a row is not a function's row")
    name, zipped, base, change, shim, state, limit, over, base_from, notice = row
    if notice is not None and not (
        isinstance(notice, int) and not isinstance(notice, bool) and 0 <= notice < len(notices)
    ):
        raise NotCombined("a row names a notice there is not")
    name = text(name, 63, r"[A-Za-z0-9_.-]+")
    if not name or state not in STATES or base_from not in BASE_FROM:
        raise NotCombined("a row names no function, or an unknown state")
    if not isinstance(over, bool):
        raise NotCombined("a row's 'over' is not true or false")
    if limit is not None:
        if not (isinstance(limit, list) and len(limit) == 3):
            raise NotCombined("a row's limit is not (name, used, limit)")
        limit = (text(limit[0], 80, r"[A-Za-z0-9 ._-]*"), count(limit[1]), count(limit[2]))
    return FunctionEntry(
        name=name,
        zipped=count(zipped),
        base=None if base is None else count(base),
        change=integer(change),
        shim=integer(shim),
        state=state,
        limit=limit,
        over=over,
        base_from=base_from,
        details=details.get(name, "")[:COMMENT_LIMIT],
        notice=notices[notice] if notice is not None else "",
    )
