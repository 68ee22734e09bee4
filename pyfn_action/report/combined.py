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

A change smaller than the minimum (:class:`Threshold`) counts as unchanged. The shim
(pyfn's Node.js part, the same in every bundle) is said once, not counted as a change
of each function. The body stays under GitHub's comment limit for hundreds of
functions: the folded tables are left out first, the table of changed functions never.

The comment carries its data in one hidden line, so jobs that share a comment
(a matrix, one function a job, with one ``comment-key``) each put their own rows into
it (:func:`merge`): a job's rows replace those of the same functions, rows of another
commit are dropped, the rest is kept. Everything read back from a comment is checked
(types, lengths, names) and the comment is drawn again from it, never posted as read.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pyfn_action.report.bench import section as speed_section
from pyfn_action.report.compare import Comparison, Row, _safe_name
from pyfn_action.report.model import Limit
from pyfn_action.report.render import COMMENT_LIMIT, component_table, truncate
from pyfn_action.sizes import format_size, parse_size

MARKER_PREFIX = "<!-- pyfn-size-comment"
_DATA = "<!-- pyfn-data: "
_BEGIN, _END = "<!-- pyfn-details: ", "<!-- pyfn-details-end -->"
FORMAT = 1
MAX_FUNCTIONS = 1000  # rows read back from a comment; more is not a comment pyfn wrote
NAMES_SHOWN = 40  # unchanged functions named before "and N more"
BASE_FROM = ("cache", "built", "report", "")  # where a function's base came from
STATES = ("changed", "unchanged", "new", "unknown")
PREVIEW_STATES = ("live", "deleted", "skipped")
# Why a function has no preview, as the comment says it.
NO_PREVIEW = {
    "event": "an event function's preview would take its trigger's events too",
    "fork": "pull requests from forks get no preview",
    "credentials": "the job had no Google Cloud credentials",
}
IDENTITY_CALL = 'curl -H "Authorization: Bearer $(gcloud auth print-identity-token)" URL'
_URL = r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?"


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


@dataclass(frozen=True)
class PreviewLine:
    """A function's preview, as the comment says it: running at ``url`` with the bundle
    ``sha256``, deleted (the pull request closed), or skipped (``reason``, of NO_PREVIEW)."""

    function: str
    name: str = ""  # the preview function's own name: hello-pr-42
    state: str = "live"  # live | deleted | skipped
    url: str = ""
    sha256: str = ""
    public: bool = False  # anyone may call it (allow-unauthenticated)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.url and not re.fullmatch(_URL, self.url):  # never markup in the comment
            object.__setattr__(self, "url", "")


@dataclass(frozen=True)
class SpeedLines:
    """A function's lines of the speed section (``pyfn bench``): plain text, one a request."""

    function: str
    lines: tuple[str, ...]


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
    lines += _preview_lines(combined.previews)
    lines += _speed_lines(combined)
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


def describe_preview(p: PreviewLine) -> str:
    """A running preview in one line: where, which function, which bundle, who may call."""
    access = "anyone may call it" if p.public else "private"
    return f"{p.url or '(no URL)'} · `{p.name}` runs bundle `{p.sha256}` · {access}"


def _preview_lines(previews: Sequence[PreviewLine]) -> list[str]:
    """The previews: each running one's URL and bundle, the deleted ones named once, and
    how to call a private one."""
    if not previews:
        return []
    lines = ["#### Previews", ""]
    for p in sorted(previews, key=lambda p: p.function):
        if p.state == "live":
            lines.append(f"- `{p.function}`: {describe_preview(p)}")
        elif p.state == "skipped":
            lines.append(f"- `{p.function}`: no preview: {NO_PREVIEW.get(p.reason, p.reason)}")
    deleted = sorted(p.name for p in previews if p.state == "deleted" and p.name)
    if deleted:
        names = ", ".join(f"`{n}`" for n in deleted)
        lines.append(f"- Deleted as the pull request closed: {names}")
    if any(p.state == "live" and not p.public for p in previews):
        lines += [
            "",
            f"_A private preview answers those the project lets invoke it: `{IDENTITY_CALL}`._",
        ]
    return [*lines, ""]


def _speed_lines(combined: Combined) -> list[str]:
    if not combined.speed:
        return []
    groups = [(g.function, g.lines) for g in sorted(combined.speed, key=lambda g: g.function)]
    return speed_section(groups, combined.speed_note)


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


def _row_data(e: FunctionEntry, notices: list[str]) -> list[object]:
    limit = list(e.limit) if e.limit else None
    notice = notices.index(e.notice) if e.notice else None
    return [e.name, e.zipped, e.base, e.change, e.shim, e.state, limit, e.over, e.base_from, notice]


def _data_line(combined: Combined) -> str:
    notices = list(dict.fromkeys(e.notice for e in combined.entries if e.notice))
    data: dict[str, object] = {
        "v": FORMAT,
        "sha": combined.sha,
        "base": combined.base_label,
        "min": combined.minimum,
        "n": notices,
        "f": [_row_data(e, notices) for e in combined.entries],
    }
    if combined.speed:
        data["s"] = [[g.function, list(g.lines)] for g in combined.speed]
        data["sn"] = combined.speed_note
    if combined.previews:
        data["p"] = [
            [p.function, p.name, p.state, p.url, p.sha256, p.public, p.reason]
            for p in combined.previews
        ]
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=True).encode()
    return f"{_DATA}{base64.b64encode(raw).decode()} -->"


# --- reading a comment back -------------------------------------------------------------


class NotCombined(ValueError):
    """A body that is not a combined size comment pyfn could have written."""


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
    notices = [_text(n, 600) for n in said]
    details = _details(lines)
    entries = [_entry_of(row, details, notices) for row in rows]
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise NotCombined("a function has two rows")
    previews = [_preview_of(row) for row in _list(data.get("p", []), "previews")]
    if len({p.function for p in previews}) != len(previews):
        raise NotCombined("a function has two previews")
    speed = [_speed_of(group) for group in _list(data.get("s", []), "speed")]
    if len({g.function for g in speed}) != len(speed):
        raise NotCombined("a function has two speed sections")
    return Combined(
        key=key,
        entries=tuple(entries),
        sha=_text(data.get("sha"), 64, r"[0-9a-f]*"),
        base_label=_text(data.get("base"), 200),
        minimum=_text(data.get("min"), 40),
        previews=tuple(previews),
        speed=tuple(speed),
        speed_note=_text(data.get("sn"), 400),
    )


def _list(value: object, what: str) -> list[object]:
    if not isinstance(value, list) or len(value) > MAX_FUNCTIONS:
        raise NotCombined(f"its {what}: not a list, or too long")
    return value


def _speed_of(group: object) -> SpeedLines:
    if not isinstance(group, list) or len(group) != 2:
        raise NotCombined("a speed section is not a function's")
    function = _text(group[0], 63, r"[A-Za-z0-9_.-]+")
    lines = tuple(_text(line, 400) for line in _list(group[1], "speed lines")[:100])
    if not function:
        raise NotCombined("a speed section names no function")
    return SpeedLines(function, lines)


def _preview_of(row: object) -> PreviewLine:
    if not isinstance(row, list) or len(row) != 7:
        raise NotCombined("a preview is not a preview's row")
    function, name, state, url, sha256, public, reason = row
    if state not in PREVIEW_STATES or not isinstance(public, bool):
        raise NotCombined("a preview has an unknown state")
    if reason not in ("", *NO_PREVIEW):
        raise NotCombined("a preview gives an unknown reason")
    line = PreviewLine(
        function=_text(function, 63, r"[A-Za-z0-9_.-]+"),
        name=_text(name, 63, r"[a-z0-9-]*"),
        state=state,
        url=_text(url, 300, f"(?:{_URL})?"),
        sha256=_text(sha256, 64, r"(?:[0-9a-f]{64})?"),
        public=public,
        reason=reason,
    )
    if not line.function:
        raise NotCombined("a preview names no function")
    return line


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


def _entry_of(row: object, details: dict[str, str], notices: list[str]) -> FunctionEntry:
    if not isinstance(row, list) or len(row) != 10:
        raise NotCombined("a row is not a function's row")
    name, zipped, base, change, shim, state, limit, over, base_from, notice = row
    if notice is not None and not (
        isinstance(notice, int) and not isinstance(notice, bool) and 0 <= notice < len(notices)
    ):
        raise NotCombined("a row names a notice there is not")
    name = _text(name, 63, r"[A-Za-z0-9_.-]+")
    if not name or state not in STATES or base_from not in BASE_FROM:
        raise NotCombined("a row names no function, or an unknown state")
    if not isinstance(over, bool):
        raise NotCombined("a row's 'over' is not true or false")
    if limit is not None:
        if not (isinstance(limit, list) and len(limit) == 3):
            raise NotCombined("a row's limit is not (name, used, limit)")
        limit = (_text(limit[0], 80, r"[A-Za-z0-9 ._-]*"), _count(limit[1]), _count(limit[2]))
    return FunctionEntry(
        name=name,
        zipped=_count(zipped),
        base=None if base is None else _count(base),
        change=_integer(change),
        shim=_integer(shim),
        state=state,
        limit=limit,
        over=over,
        base_from=base_from,
        details=details.get(name, "")[:COMMENT_LIMIT],
        notice=notices[notice] if notice is not None else "",
    )


def _text(value: object, most: int, pattern: str | None = None) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > most:
        raise NotCombined("a text field is too long or not text")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise NotCombined(f"a field holds characters it may not: {value[:40]!r}")
    if "<" in value or ">" in value or "\n" in value:
        raise NotCombined("a text field holds markup")
    return value


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**53:
        raise NotCombined("a size is not a whole number")
    return value


def _count(value: object) -> int:
    number = _integer(value)
    if number < 0:
        raise NotCombined("a size is negative")
    return number


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
