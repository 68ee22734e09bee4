"""`pyfn report`: a bundle's size, part by part, optionally against a base report.

Renders text (terminal), markdown (a PR comment or job summary: it carries a
hidden marker naming the function, so one sticky comment per function can be
found and updated; it leads with the line a reviewer needs, folds unchanged
components into ``<details>`` and always stays under GitHub's 65,536-character
limit) and JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyfn_action.errors import ReportError
from pyfn_action.sizes import format_size

MARKER_PREFIX = "<!-- pyfn-size-report"
COMMENT_LIMIT = 65_536
SUPPORTED_VERSIONS = (1,)


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
    limits: tuple[Mapping[str, Any], ...]
    has_base: bool
    function: str = ""
    new_function: bool = False  # the base has no such function: absolute sizes only
    base_label: str = ""  # how to name the base, e.g. "main (1a2b3c4)"

    @property
    def unchanged(self) -> bool:
        return self.has_base and all(r.status == "unchanged" for r in (*self.rows, self.total))


def marker(function: str) -> str:
    """The hidden first line of a function's comment: how the sticky comment is found."""
    return f"{MARKER_PREFIX}: {_safe_name(function)} -->"


def _safe_name(name: str) -> str:
    """A function name as it may appear in markdown and HTML comments (names are input)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:63] or "function"


def load(path: Path) -> dict[str, Any]:
    """Read a report.json, refusing versions this pyfn does not know."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"Cannot read {path}", why=str(exc)) from exc
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not JSON", why=str(exc), fix="Pass a report.json") from exc
    version = data.get("version") if isinstance(data, dict) else None
    if version not in SUPPORTED_VERSIONS:
        raise ReportError(
            f"{path} is a report of version {version!r}, which this pyfn cannot read",
            why=f"it reads versions {', '.join(map(str, SUPPORTED_VERSIONS))}",
            fix="Rebuild with this pyfn, or use the pyfn that wrote the report",
        )
    try:
        for component in data["components"]:
            component["name"], component["kind"]
            int(component["compressed_bytes"]), int(component["uncompressed_bytes"])
        int(data["bundle"]["compressed_bytes"]), int(data["bundle"]["uncompressed_bytes"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"{path} is not a complete pyfn report", why=repr(exc)) from exc
    return dict(data)


def compare(
    report: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    *,
    new_function: bool = False,
    base_label: str = "",
) -> Comparison:
    """Every component of ``report`` (and of ``base``), with the change of each.

    ``new_function`` says the base was looked for and the function is not there.
    """
    current = {(c["kind"], c["name"]): c for c in report["components"]}
    before = {(c["kind"], c["name"]): c for c in base["components"]} if base else {}
    rows = []
    for key in [*current, *(k for k in before if k not in current)]:
        now, then = current.get(key), before.get(key)
        rows.append(_row(key[1], key[0], now, then, base is not None))
    rows.sort(key=lambda r: -max(r.compressed_bytes or 0, r.base_compressed_bytes or 0))
    total = _row("total", "", report["bundle"], base["bundle"] if base else None, base is not None)
    function = report.get("function")
    name = str(function.get("name", "")) if isinstance(function, Mapping) else ""
    return Comparison(total, tuple(rows), tuple(report.get("limits", [])), base is not None,
                      name, new_function and base is None, base_label)  # fmt: skip


def _row(
    name: str,
    kind: str,
    now: Mapping[str, Any] | None,
    then: Mapping[str, Any] | None,
    has_base: bool,
) -> Row:
    c = int(now["compressed_bytes"]) if now else None
    u = int(now["uncompressed_bytes"]) if now else None
    bc = int(then["compressed_bytes"]) if then else None
    bu = int(then["uncompressed_bytes"]) if then else None
    if not has_base:
        status = ""
    elif now is None:
        status = "removed"
    elif then is None:
        status = "new"
    else:
        status = "unchanged" if (c, u) == (bc, bu) else "changed"
    return Row(name, kind, c, u, bc, bu, status)


def _delta(now: int | None, then: int | None) -> str:
    if then is None or now is None:
        return ""
    diff = now - then
    if diff == 0:
        return "0"
    sign = "+" if diff > 0 else "-"
    pct = f" ({sign}{abs(diff) / then * 100:.1f}%)" if then else ""
    return f"{sign}{format_size(abs(diff))}{pct}"


def _size(n: int | None) -> str:
    return format_size(n) if n is not None else "—"


def render_text(comparison: Comparison) -> str:
    header = ["component", "kind", "zipped", "unzipped"]
    if comparison.has_base:
        header[3:3] = ["Δ zipped"]
        header += ["Δ unzipped", ""]
    table = [header]
    for row in (*comparison.rows, comparison.total):
        cells = [row.name, row.kind, _size(row.compressed_bytes), _size(row.uncompressed_bytes)]
        if comparison.has_base:
            cells[3:3] = [_delta(row.compressed_bytes, row.base_compressed_bytes)]
            cells += [
                _delta(row.uncompressed_bytes, row.base_uncompressed_bytes),
                row.status if row.status in ("new", "removed") else "",
            ]
        table.append(cells)
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))
        ).rstrip()
        for r in table
    ]
    lines.insert(1, "  ".join("-" * w for w in widths).rstrip())
    lines.insert(len(lines) - 1, lines[1])
    for limit in comparison.limits:
        state = "ok" if limit.get("ok") else "EXCEEDED"
        lines.append(
            f"{limit['name']}: {format_size(int(limit['used_bytes']))} of "
            f"{format_size(int(limit['limit_bytes']))} ({state})"
        )
    return "\n".join(lines) + "\n"


def _md_row(row: Row, has_base: bool) -> str:
    label = {"new": " 🆕", "removed": " ❌ removed"}.get(row.status, "")
    cells = [f"`{row.name}`{label}", row.kind, _size(row.compressed_bytes)]
    if has_base:
        cells.append(_delta(row.compressed_bytes, row.base_compressed_bytes))
    cells.append(_size(row.uncompressed_bytes))
    if has_base:
        cells.append(_delta(row.uncompressed_bytes, row.base_uncompressed_bytes))
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def headline(comparison: Comparison) -> str:
    """The one line a reviewer needs: size, change, and how close to the nearest limit."""
    total = comparison.total
    parts = [f"**{_size(total.compressed_bytes)}** zipped"]
    against = f" against {comparison.base_label}" if comparison.base_label else ""
    if comparison.unchanged:
        parts.append(f"unchanged{against}")
    elif comparison.has_base:
        delta = _delta(total.compressed_bytes, total.base_compressed_bytes)
        parts.append(f"{delta}{against}")
    elif comparison.new_function:
        parts.append("new function")
    parts.append(_closest_limit(comparison.limits))
    return " · ".join(parts)


def _closest_limit(limits: Sequence[Mapping[str, Any]]) -> str:
    if not limits:
        return "no size limit applies (no budget set)"
    tightest = max(
        limits, key=lambda item: int(item["used_bytes"]) / max(int(item["limit_bytes"]), 1)
    )
    used, limit = int(tightest["used_bytes"]), int(tightest["limit_bytes"])
    name = str(tightest["name"])
    kind, _, rest = name.partition(" ")
    label = f"{rest} budget" if kind == "budget" else f"{name} limit"
    if used > limit:
        return f"❌ {format_size(used - limit)} over the {format_size(limit)} {label}"
    share = used / limit * 100 if limit else 100.0
    return f"{share:.0f}% of the {format_size(limit)} {label} ({format_size(limit - used)} left)"


def render_markdown(comparison: Comparison, limit: int = COMMENT_LIMIT) -> str:
    """A PR comment / job summary body, never longer than ``limit`` characters."""
    base = comparison.has_base
    head = "| component | kind | zipped |" + (" Δ |" if base else "") + " unzipped |"
    head += " Δ |" if base else ""
    rule = _rule(head)
    name = _safe_name(comparison.function) if comparison.function else ""
    title = f"### pyfn bundle size: `{name}`" if name else "### pyfn bundle size"
    top = [marker(comparison.function), title, "", headline(comparison), ""]
    for item in comparison.limits:
        mark = "✅" if item.get("ok") else "❌"
        top.append(
            f"- {mark} {item['name']}: {format_size(int(item['used_bytes']))} of "
            f"{format_size(int(item['limit_bytes']))}"
        )
    if comparison.limits:
        top.append("")
    shown = [r for r in comparison.rows if r.status != "unchanged"]
    folded = [r for r in comparison.rows if r.status == "unchanged"]
    tail_note = "\n_Sizes from `report.json`; unchanged components are folded._\n"
    budget = limit - len("\n".join(top)) - len(tail_note) - 400  # room for the fixed parts
    body, budget = _table_lines(shown, head, rule, base, budget)
    out = [*top, *body]
    if folded:
        rows, _ = _table_lines(folded, head, rule, base, budget)
        out += ["", f"<details><summary>{len(folded)} unchanged components</summary>", "",
                *rows, "", "</details>"]  # fmt: skip
    text = "\n".join(out) + "\n" + (tail_note if base else "")
    return truncate(text, limit)


TRUNCATED_NOTE = (
    "\n\n_… cut here: the report is longer than a comment may be; see `report.json`._\n"
)


def truncate(text: str, limit: int = COMMENT_LIMIT) -> str:
    """``text`` if it fits in ``limit`` characters, else cut at a line with a note saying so."""
    if len(text) <= limit:
        return text
    cut = text[: limit - len(TRUNCATED_NOTE)]
    cut = cut[: cut.rfind("\n")] if "\n" in cut else cut
    return cut + TRUNCATED_NOTE


def _rule(head: str) -> str:
    return "|" + "---|" * (head.count("|") - 1)


def _table_lines(
    rows: Sequence[Row], head: str, rule: str, base: bool, budget: int
) -> tuple[list[str], int]:
    """As many rows as fit in ``budget`` characters, then a line saying how many did not."""
    if not rows:
        return [], budget
    lines = [head, rule]
    budget -= len(head) + len(rule) + 2
    for n, row in enumerate(rows):
        line = _md_row(row, base)
        if len(line) + 1 > budget - 120:
            lines.append(f"\n… and {len(rows) - n} more components (see `report.json`)")
            return lines, 0
        lines.append(line)
        budget -= len(line) + 1
    return lines, budget


def render_json(comparison: Comparison) -> str:
    return (
        json.dumps(
            {
                "version": 1,
                "function": comparison.function,
                "new_function": comparison.new_function,
                "total": asdict(comparison.total),
                "components": [asdict(r) for r in comparison.rows],
                "limits": list(comparison.limits),
            },
            indent=2,
        )
        + "\n"
    )
