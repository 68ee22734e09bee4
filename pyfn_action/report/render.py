"""The size report, rendered: a text table for the terminal, markdown for a pull
request's comment or a job summary, and JSON.

The markdown leads with the line a reviewer needs, folds unchanged components into
``<details>`` and always stays under GitHub's 65,536-character comment limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict

from pyfn_action.report.compare import Comparison, Row, _safe_name, marker
from pyfn_action.report.model import Limit, Report
from pyfn_action.sizes import format_size

COMMENT_LIMIT = 65_536


def render_table(report: Report) -> str:
    """The report as an aligned text table, largest components first within each kind."""
    rows: Sequence[tuple[str, str, str, str, str]] = [
        (
            c.name + (f" {c.version}" if c.version else ""),
            c.kind,
            format_size(c.compressed_bytes),
            format_size(c.uncompressed_bytes),
            str(c.files),
        )
        for c in report.components
    ]
    total = (
        "total",
        "",
        format_size(report.bundle.compressed_bytes),
        format_size(report.bundle.uncompressed_bytes),
        str(report.bundle.files),
    )
    header = ("component", "kind", "zipped", "unzipped", "files")
    table = [header, *rows, total]
    widths = [max(len(row[i]) for row in table) for i in range(5)]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
        cells += [row[i].rjust(widths[i]) for i in (2, 3, 4)]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(header), rule, *(line(r) for r in rows), rule, line(total)]
    if report.node_framework:
        out.append(
            f"\nruns under the Node.js Functions Framework {report.node_framework} "
            "(package.json and its lockfile)"
        )
    return "\n".join(out) + "\n"


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
    lines += [f"warning: {notice}" for notice in comparison.notices]
    for limit in comparison.limits:
        state = "ok" if limit.ok else "EXCEEDED"
        lines.append(
            f"{limit.name}: {format_size(limit.used_bytes)} of "
            f"{format_size(limit.limit_bytes)} ({state})"
        )
    return "\n".join(lines) + "\n"


def code_text(text: str, limit: int = 100) -> str:
    """Text from a pull request (a package's name is whatever its metadata says), safe
    inside a markdown code span and a table cell: no backtick, no line break or other
    control character, at most ``limit`` characters."""
    kept = "".join(c if c.isprintable() and c != "`" else "�" for c in text)
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def _md_row(row: Row, has_base: bool) -> str:
    label = {"new": " 🆕", "removed": " ❌ removed"}.get(row.status, "")
    cells = [f"`{code_text(row.name)}`{label}", row.kind, _size(row.compressed_bytes)]
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


def _closest_limit(limits: Sequence[Limit]) -> str:
    if not limits:
        return "no size limit applies (no budget set)"
    tightest = max(limits, key=lambda item: item.used_bytes / max(item.limit_bytes, 1))
    used, limit = tightest.used_bytes, tightest.limit_bytes
    name = tightest.name
    kind, _, rest = name.partition(" ")
    label = f"{rest} budget" if kind == "budget" else f"{name} limit"
    if used > limit:
        return f"❌ {format_size(used - limit)} over the {format_size(limit)} {label}"
    share = used / limit * 100 if limit else 100.0
    return f"{share:.0f}% of the {format_size(limit)} {label} ({format_size(limit - used)} left)"


def render_markdown(comparison: Comparison, limit: int = COMMENT_LIMIT) -> str:
    """A PR comment / job summary body, never longer than ``limit`` characters."""
    base = comparison.has_base
    head, rule = _component_head(base)
    name = _safe_name(comparison.function) if comparison.function else ""
    title = f"### pyfn bundle size: `{name}`" if name else "### pyfn bundle size"
    top = [marker(comparison.function), title, "", headline(comparison), ""]
    top += [line for notice in comparison.notices for line in (f"> ⚠️ {notice}", "")]
    for item in comparison.limits:
        mark = "✅" if item.ok else "❌"
        top.append(
            f"- {mark} {item.name}: {format_size(item.used_bytes)} of "
            f"{format_size(item.limit_bytes)}"
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
        out += [
            "",
            f"<details><summary>{len(folded)} unchanged components</summary>",
            "",
            *rows,
            "",
            "</details>",
        ]
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


def _component_head(has_base: bool) -> tuple[str, str]:
    head = "| component | kind | zipped |" + (" Δ |" if has_base else "") + " unzipped |"
    head += " Δ |" if has_base else ""
    return head, _rule(head)


def component_table(rows: Sequence[Row], has_base: bool, budget: int) -> list[str]:
    """The markdown table of ``rows``, as many as fit in ``budget`` characters."""
    head, rule = _component_head(has_base)
    return _table_lines(rows, head, rule, has_base, budget)[0]


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
                "limits": [limit.to_dict() for limit in comparison.limits],
            },
            indent=2,
        )
        + "\n"
    )
