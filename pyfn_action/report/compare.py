"""A report against a base report: every component, with the change of each.

A pull request's comment shows this comparison; so does ``pyfn report --base``.
Each function's comment carries a hidden marker naming it (:func:`marker`), so one
sticky comment per function can be found and updated.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from pyfn_action.report.model import BundleSummary, Component, Limit, Report

MARKER_PREFIX = "<!-- pyfn-size-report"


@dataclass(frozen=True)
class Row:
    name: str
    kind: str
    compressed_bytes: int | None  # None: removed since the base
    uncompressed_bytes: int | None
    base_compressed_bytes: int | None  # None: new, or no base given
    base_uncompressed_bytes: int | None
    status: str  # new | removed | changed | unchanged | "" (no base)


@dataclass(frozen=True)
class Comparison:
    total: Row
    rows: tuple[Row, ...]
    limits: tuple[Limit, ...]
    has_base: bool
    function: str = ""
    new_function: bool = False  # the base has no such function: absolute sizes only
    base_label: str = ""  # how to name the base, e.g. "main (1a2b3c4)"
    notices: tuple[str, ...] = ()  # what the build warned of the platform: a runtime's calendar

    @property
    def unchanged(self) -> bool:
        return self.has_base and all(r.status == "unchanged" for r in (*self.rows, self.total))


def marker(function: str) -> str:
    """The hidden first line of a function's comment: how the sticky comment is found.

    One name, one marker, and never another name's: a name of up to 63 safe
    characters stands as it is; any other is cut and sanitized, then followed by
    ``+`` (never in a plain name) and a digest of the whole name, so ``…-v1`` and
    ``…-v2`` of 67 characters keep comments of their own.
    """
    return f"{MARKER_PREFIX}: {marker_name(function)} -->"


def marker_name(name: str) -> str:
    """The name a marker carries (see :func:`marker`)."""
    if _PLAIN_NAME.match(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40]}+{digest}"


_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,63}$")


def _safe_name(name: str) -> str:
    """A function name as it may appear in markdown and HTML comments (names are input)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63] or "function"


def compare(
    report: Report,
    base: Report | None,
    *,
    new_function: bool = False,
    base_label: str = "",
) -> Comparison:
    """Every component of ``report`` (and of ``base``), with the change of each.

    ``new_function`` says the base was looked for and the function is not there.
    """
    current = {(c.kind, c.name): c for c in report.components}
    before = {(c.kind, c.name): c for c in base.components} if base else {}
    rows = []
    for key in [*current, *(k for k in before if k not in current)]:
        now, then = current.get(key), before.get(key)
        rows.append(_row(key[1], key[0], now, then, base is not None))
    rows.sort(key=lambda r: -max(r.compressed_bytes or 0, r.base_compressed_bytes or 0))
    total = _row("total", "", report.bundle, base.bundle if base else None, base is not None)
    notice = report.runtime.get("notice")
    notices = (" ".join(notice.split())[:500],) if isinstance(notice, str) and notice else ()
    return Comparison(
        total=total,
        rows=tuple(rows),
        limits=report.limits,
        has_base=base is not None,
        function=report.function_name,
        new_function=new_function and base is None,
        base_label=base_label,
        notices=notices,
    )


def _row(
    name: str,
    kind: str,
    now: Component | BundleSummary | None,
    then: Component | BundleSummary | None,
    has_base: bool,
) -> Row:
    c = now.compressed_bytes if now else None
    u = now.uncompressed_bytes if now else None
    bc = then.compressed_bytes if then else None
    bu = then.uncompressed_bytes if then else None
    if not has_base:
        status = ""
    elif now is None:
        status = "removed"
    elif then is None:
        status = "new"
    else:
        status = "unchanged" if (c, u) == (bc, bu) else "changed"
    return Row(
        name=name,
        kind=kind,
        compressed_bytes=c,
        uncompressed_bytes=u,
        base_compressed_bytes=bc,
        base_uncompressed_bytes=bu,
        status=status,
    )
