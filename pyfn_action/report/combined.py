"""One comment for all the functions of a job: what a reviewer of a pull request reads.

As a reviewer sees it::

    ### pyfn bundle sizes
    **3 functions, 74.1 MB zipped** · +12.3 KB (+0.0%) against `main` (1a2b3c4) ·
    1 of 3 changed · all within their limits

    | function | zipped | change | limit |
    |---|---|---|---|
    | `hello` | 24.7 MB | +12.3 KB (+0.0%) | ✅ 23% of 104.9 MB |

    2 unchanged: `billing`, `search`

    ▸ `hello`: 2 components changed          (its component table, folded)

A change smaller than the minimum (:class:`~pyfn_action.report.entries.Threshold`)
counts as unchanged. The shim (pyfn's Node.js part, the same in every bundle) is said
once, not counted as a change of each function. The body stays under GitHub's comment
limit for hundreds of functions: the folded tables are left out first, the table of
changed functions never. Its parts: a function's row (:mod:`~pyfn_action.report.entries`),
preview (:mod:`~pyfn_action.report.previews`) and speed (:mod:`~pyfn_action.report.speed`).

The comment carries its data in one hidden line, so jobs that share a comment
(a matrix, one function a job, with one ``comment-key``) each put their own rows into
it (:func:`merge`): a job's rows replace those of the same functions, rows of another
commit are dropped, the rest is kept. Everything read back from a comment is checked
(types, lengths, names: :mod:`pyfn_action.report.fields`) and the comment is drawn
again from it, never posted as read.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pyfn_action.report import fields
from pyfn_action.report.entries import FunctionEntry, entry_data, read_entry
from pyfn_action.report.fields import MAX_FUNCTIONS, NotCombined
from pyfn_action.report.previews import PreviewLine, preview_data, preview_section, read_preview
from pyfn_action.report.render import COMMENT_LIMIT, truncate
from pyfn_action.report.speed import SpeedLines, read_speed, speed_data, speed_section
from pyfn_action.sizes import format_size

MARKER_PREFIX = "<!-- pyfn-size-comment"
_DATA = "<!-- pyfn-data: "
_BEGIN, _END = "<!-- pyfn-details: ", "<!-- pyfn-details-end -->"
FORMAT = 1
NAMES_SHOWN = 40  # unchanged functions named before "and N more"


@dataclass(frozen=True)
class Combined:
    """A job's comment: its key, the commit it describes, the base, and its rows."""

    key: str
    entries: tuple[FunctionEntry, ...]
    sha: str = ""  # the pull request commit the rows were measured at
    base_label: str = ""  # e.g. "`main` (1a2b3c4)"
    minimum: str = ""  # the threshold, as said: "1.0 KB", "0.5%", ""
    previews: tuple[PreviewLine, ...] = ()
    speed: tuple[SpeedLines, ...] = ()
    speed_note: str = ""  # the machine the speed was measured on

    @property
    def changed(self) -> bool:
        """Worth a comment: a function changed (or is over a limit), a preview runs or
        was deleted, or its speed was measured (``bench: true`` asks for it)."""
        return (
            any(e.noted for e in self.entries)
            or any(p.state != "skipped" for p in self.previews)
            or bool(self.speed)
        )


# --- the comment ------------------------------------------------------------------------


_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,63}|[A-Za-z0-9_.-]{0,40}\+[0-9a-f]{16}")


def key_name(key: str) -> str:
    """A comment key as the marker carries it: up to 63 safe characters as they are,
    any other cut and followed by ``+`` and a digest of the whole key (a name in that
    form already stays as it is, so a key read back from a marker is its own name)."""
    if _KEY_NAME.fullmatch(key):
        return key
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', key)[:40]}+{digest}"


def marker(key: str) -> str:
    """The hidden first line that finds a job's comment again."""
    return f"{MARKER_PREFIX}: {key_name(key)} -->"


_MARKER_LINE = re.compile(r"^<!-- pyfn-size-comment: (" + _KEY_NAME.pattern + ") -->$")


def is_marker(line: str) -> bool:
    return bool(_MARKER_LINE.match(line))


def render(combined: Combined, limit: int = COMMENT_LIMIT) -> str:
    """The comment's markdown, under ``limit`` characters: the folded tables of the
    smallest changes are left out first, then the unchanged names."""
    order = sorted(
        (e for e in combined.entries if e.noted),
        key=lambda e: (not e.over, e.state != "new", e.state == "unknown", -abs(e.change), e.name),
    )
    with_details = [e.name for e in order if e.details]
    body = _draw(combined, order, set(with_details), names=True)
    while len(body) > limit and with_details:
        with_details.pop()
        body = _draw(combined, order, set(with_details), names=True, cut=True)
    if len(body) > limit:
        body = _draw(combined, order, set(), names=False, cut=True)
    return truncate(body, limit)


def _draw(
    combined: Combined,
    order: Sequence[FunctionEntry],
    detailed: set[str],
    *,
    names: bool,
    cut: bool = False,
) -> str:
    entries = combined.entries
    quiet = [e for e in entries if not e.noted]
    lines = [marker(combined.key), "### pyfn bundle sizes", "", _headline(combined), ""]
    lines += [line for notice in _notices(entries) for line in (f"> ⚠️ {notice}", "")]
    if order:
        lines += ["| function | zipped | change | limit |", "|---|---|---|---|"]
        lines += [_function_row(e) for e in order]
        lines.append("")
    if quiet:
        lines += [_names_line(quiet, "unchanged", names=names), ""]
    shim = _shim_line(entries)
    if shim:
        lines += [shim, ""]
    lines += preview_section(combined.previews)
    lines += speed_section(combined.speed, combined.speed_note)
    for e in order:
        if e.name in detailed:
            lines += [
                f"{_BEGIN}{e.name} -->",
                f"<details><summary><code>{e.name}</code>: {_changed_parts(e)}</summary>",
                "",
                _hidden_safe(e.details),
                "",
                "</details>",
                _END,
            ]
    left_out = sum(1 for e in order if e.details and e.name not in detailed)
    if cut and left_out:
        lines += [
            "",
            f"_The component tables of {left_out} functions are left out here (a "
            "comment's size is limited): see the job summary or `report.json`._",
        ]
    notes = ["Sizes from `report.json`"]
    if combined.minimum:
        notes.append(f"a change under {combined.minimum} counts as unchanged")
    sources = _base_sources(entries)
    if sources:
        notes.append(sources)
    lines += ["", "_" + "; ".join(notes) + "._", _data_line(combined)]
    return "\n".join(lines) + "\n"


def _notices(entries: Sequence[FunctionEntry]) -> list[str]:
    """Each notice once, naming its functions unless it is every function's."""
    said: dict[str, list[str]] = {}
    for e in entries:
        if e.notice:
            said.setdefault(e.notice, []).append(e.name)
    return [
        notice if len(names) == len(entries) else f"{notice} ({', '.join(f'`{n}`' for n in names)})"
        for notice, names in said.items()
    ]


def _names_line(group: Sequence[FunctionEntry], label: str, *, names: bool) -> str:
    if not names:
        return f"{len(group)} {label}"
    named = ", ".join(f"`{e.name}`" for e in group[:NAMES_SHOWN])
    more = len(group) - NAMES_SHOWN
    return f"{len(group)} {label}: {named}" + (f" and {more} more" if more > 0 else "")


def _headline(combined: Combined) -> str:
    entries = combined.entries
    total = sum(e.zipped for e in entries)
    count = len(entries)
    parts = [f"**{count} function{'s' if count != 1 else ''}, {format_size(total)} zipped**"]
    against = f" against {combined.base_label}" if combined.base_label else ""
    compared = [e for e in entries if e.base is not None]
    changed = [e for e in entries if e.state in ("changed", "new")]
    if not compared and not any(e.state == "new" for e in entries):
        parts.append("no base to compare with")
    elif not changed:
        parts.append(f"no function changed{against}")
    else:
        base_total = sum(e.base for e in compared if e.base is not None)
        change = sum(e.change for e in compared if e.state == "changed")
        parts.append(f"{_delta(change, base_total)}{against}")
        parts.append(f"{len(changed)} of {count} changed")
    over = [e for e in entries if e.over]
    if over:
        parts.append(f"❌ {len(over)} over {'its limit' if len(over) == 1 else 'their limits'}")
    elif any(e.limit for e in entries):
        parts.append("all within their limits")
    return " · ".join(parts)


def _function_row(e: FunctionEntry) -> str:
    if e.state == "new":
        change = "🆕 new"
    elif e.base is None:
        change = "—"
    elif e.state == "unchanged":
        change = "unchanged"
    else:
        change = _delta(e.change, e.base)
    limit = "—"
    if e.limit is not None:
        name, used, most = e.limit
        if used > most:
            limit = f"❌ {format_size(used - most)} over {format_size(most)}"
        else:
            share = used / most * 100 if most else 100.0
            limit = f"✅ {share:.0f}% of {format_size(most)}"
        if name.partition(" ")[0] == "budget":
            limit += " budget"
    return f"| `{e.name}` | {format_size(e.zipped)} | {change} | {limit} |"


def _delta(change: int, base: int | None) -> str:
    if change == 0:
        return "0"
    sign = "+" if change > 0 else "-"
    pct = f" ({sign}{abs(change) / base * 100:.1f}%)" if base else ""
    return f"{sign}{format_size(abs(change))}{pct}"


def _changed_parts(e: FunctionEntry) -> str:
    rows = sum(1 for line in e.details.splitlines() if line.startswith("| `"))
    what = "new function" if e.state == "new" else _delta(e.change, e.base)
    return f"{what}, {rows} component{'s' if rows != 1 else ''}"


def _shim_line(entries: Sequence[FunctionEntry]) -> str:
    """The shim's change, said once for every function whose shim changed."""
    moved = sorted({e.shim for e in entries if e.base is not None and e.shim})
    if not moved:
        return ""
    count = sum(1 for e in entries if e.base is not None and e.shim)
    which = "every function" if count == len(entries) else f"{count} functions"
    amount = (
        _delta(moved[0], None)
        if len(moved) == 1
        else (f"{_delta(moved[0], None)} to {_delta(moved[-1], None)}")
    )
    return (
        f"> The shim (pyfn's Node.js part of each bundle) changed by {amount} in {which}: "
        "shown here once, not counted as a change of each function."
    )


def _base_sources(entries: Sequence[FunctionEntry]) -> str:
    said = {
        "cache": "read from the cache",
        "built": "built at the base commit",
        "report": "given as a report",
    }
    counts = {k: sum(1 for e in entries if e.base_from == k) for k in said}
    parts = [f"{n} {said[k]}" for k, n in counts.items() if n]
    return "bases: " + ", ".join(parts) if parts else ""


def _hidden_safe(text: str) -> str:
    """Text of the comment that can never open or close a hidden line of it."""
    return text.replace("<!--", "&lt;!--").replace("-->", "--&gt;")


def _data_line(combined: Combined) -> str:
    notices = list(dict.fromkeys(e.notice for e in combined.entries if e.notice))
    data: dict[str, object] = {
        "v": FORMAT,
        "sha": combined.sha,
        "base": combined.base_label,
        "min": combined.minimum,
        "n": notices,
        "f": [entry_data(e, notices) for e in combined.entries],
    }
    if combined.speed:
        data["s"] = [speed_data(g) for g in combined.speed]
        data["sn"] = combined.speed_note
    if combined.previews:
        data["p"] = [preview_data(p) for p in combined.previews]
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()
    return f"{_DATA}{base64.b64encode(raw).decode()} -->"


# --- reading a comment back -------------------------------------------------------------


def parse(body: str) -> Combined:
    """The comment ``body`` describes: checked field by field; its folded tables kept."""
    lines = body.split("\n")
    if not lines or not is_marker(lines[0]):
        raise NotCombined("its first line is not a pyfn size comment's marker")
    key = lines[0].removeprefix(MARKER_PREFIX + ": ").removesuffix(" -->")
    data_lines = [line for line in lines if line.startswith(_DATA) and line.endswith(" -->")]
    if len(data_lines) != 1:
        raise NotCombined("it has no data line, or several")
    try:
        raw = base64.b64decode(data_lines[0][len(_DATA) : -4], validate=True)
        data = json.loads(raw)
    except (ValueError, TypeError) as exc:
        raise NotCombined(f"its data line cannot be read: {exc}") from None
    if not isinstance(data, dict) or data.get("v") != FORMAT:
        raise NotCombined("its data line is of another format")
    rows = data.get("f")
    if not isinstance(rows, list) or len(rows) > MAX_FUNCTIONS:
        raise NotCombined("its rows are not a list of functions")
    said = data.get("n", [])
    if not isinstance(said, list) or len(said) > MAX_FUNCTIONS:
        raise NotCombined("its notices are not a list")
    notices = [fields.text(n, 600) for n in said]
    details = _details(lines)
    entries = [read_entry(row, details, notices) for row in rows]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise NotCombined("a function has two rows")
    previews = [read_preview(row) for row in fields.listed(data.get("p", []), "previews")]
    if len({p.function for p in previews}) != len(previews):
        raise NotCombined("a function has two previews")
    speed = [read_speed(group) for group in fields.listed(data.get("s", []), "speed")]
    if len({g.function for g in speed}) != len(speed):
        raise NotCombined("a function has two speed sections")
    return Combined(
        key=key,
        entries=tuple(entries),
        sha=fields.text(data.get("sha"), 64, r"[0-9a-f]*"),
        base_label=fields.text(data.get("base"), 200),
        minimum=fields.text(data.get("min"), 40),
        previews=tuple(previews),
        speed=tuple(speed),
        speed_note=fields.text(data.get("sn"), 400),
    )


def _details(lines: list[str]) -> dict[str, str]:
    """Each function's folded table, as drawn between its two hidden lines."""
    found: dict[str, str] = {}
    name: str | None = None
    inner: list[str] = []
    for line in lines:
        if line.startswith(_BEGIN) and line.endswith(" -->"):
            name, inner = line[len(_BEGIN) : -4], []
        elif line == _END and name is not None:
            # <details><summary>…</summary>, blank, the table, blank, </details>
            table = inner[2:-2] if len(inner) >= 4 else []
            found[name] = "\n".join(table).strip("\n")
            name = None
        elif name is not None:
            inner.append(line)
    return found


def merge(existing: Combined | None, new: Combined) -> Combined:
    """``new``'s rows over ``existing``'s: rows of the same functions replaced, rows of
    another commit dropped (a function removed since, or measured at an older push)."""
    same = existing is not None and key_name(existing.key) == key_name(new.key)
    if existing is None or not same or existing.sha != new.sha:
        return new
    mine = {e.name for e in new.entries}
    kept = [e for e in existing.entries if e.name not in mine]
    entries = sorted([*kept, *new.entries], key=lambda e: e.name)
    previewed = {p.function for p in new.previews}
    previews = [p for p in existing.previews if p.function not in previewed]
    previews = sorted([*previews, *new.previews], key=lambda p: p.function)
    measured = {g.function for g in new.speed}
    speed = [g for g in existing.speed if g.function not in measured]
    speed = sorted([*speed, *new.speed], key=lambda g: g.function)
    return dataclasses.replace(
        new,
        entries=tuple(entries),
        previews=tuple(previews),
        speed=tuple(speed),
        speed_note=new.speed_note or existing.speed_note,
    )
