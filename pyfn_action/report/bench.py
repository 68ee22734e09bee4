"""What ``pyfn bench`` measured: each request on both runtimes, side by side, and the ratio.

The figures are one run on one machine: both runtimes served the same requests,
taking turns, on the same CPUs, so their ratio means more than either figure
alone. They are said with the machine's CPU count and the clients used; a
runner's CPUs are shared, so a figure can move from one run to the next
(docs/bench.md says how much, and where the ratios mislead).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

FORMAT = 1


@dataclass(frozen=True)
class Side:
    """One runtime's figures for one request."""

    p50_ms: float
    p95_ms: float
    rps: float  # right answers a second with ``clients`` clients
    requests: int  # timed requests, one client and several
    wrong: int  # answers that were not the expected one, under load


@dataclass(frozen=True)
class Measured:
    """One declared request on both runtimes."""

    name: str
    label: str  # METHOD PATH, without the query
    native: Side
    pyfn: Side

    @property
    def speedup(self) -> float:
        """How many times faster pyfn answers one client (native p50 ÷ pyfn p50)."""
        return self.native.p50_ms / self.pyfn.p50_ms if self.pyfn.p50_ms else 0.0

    @property
    def rps_ratio(self) -> float:
        return self.pyfn.rps / self.native.rps if self.native.rps else 0.0


@dataclass(frozen=True)
class Difference:
    """A request the runtimes answered differently: never timed."""

    name: str
    native: str  # "200: {...}" (status and the start of the body)
    pyfn: str
    why: str


@dataclass(frozen=True)
class BenchResult:
    """A whole run: every request, the start and the idle memory of each runtime."""

    function: str
    cpus: int
    clients: int
    duration: float  # seconds a measure
    cpython: str
    pypy: str
    measured: tuple[Measured, ...] = ()
    differences: tuple[Difference, ...] = ()
    cold_start_ms: Mapping[str, float] = field(default_factory=dict)  # native, pyfn
    idle_rss_mb: Mapping[str, float] = field(default_factory=dict)
    min_speedup: float | None = None

    def too_slow(self) -> list[Measured]:
        """The requests below ``min_speedup``."""
        if self.min_speedup is None:
            return []
        return [m for m in self.measured if m.speedup < self.min_speedup]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["format"] = FORMAT
        out["measured"] = [
            {**asdict(m), "speedup": round(m.speedup, 3), "rps_ratio": round(m.rps_ratio, 3)}
            for m in self.measured
        ]
        out["too_slow"] = [m.name for m in self.too_slow()]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


# --- as text, and in the comment -------------------------------------------------------


def times(ratio: float) -> str:
    """``14×``, ``2.3×``, ``0.82×``."""
    if ratio >= 10:
        return f"{ratio:.0f}×"
    return f"{ratio:.2g}×" if ratio < 1 else f"{ratio:.1f}×".replace(".0×", "×")


def verdict(m: Measured) -> str:
    """``14× faster``, ``about as fast``, ``1.3× slower``."""
    s = m.speedup
    if 0.95 <= s <= 1.05:
        return "about as fast"
    return f"{times(s)} faster" if s > 1 else f"{times(1 / s) if s else '∞×'} slower"


def _ms(value: float) -> str:
    return f"{value:.3g} ms" if value < 10 else f"{value:.0f} ms"


def line(m: Measured) -> str:
    """``POST /score  p50 1.1 ms vs 15.9 ms native: 14× faster``."""
    return f"{m.label}  p50 {_ms(m.pyfn.p50_ms)} vs {_ms(m.native.p50_ms)} native: {verdict(m)}"


def render_text(result: BenchResult) -> str:
    rows = [("request", "native p50", "pyfn p50", "speedup", "native rps", "pyfn rps", "ratio")]
    for m in result.measured:
        rows.append(
            (
                m.name,
                _ms(m.native.p50_ms),
                _ms(m.pyfn.p50_ms),
                verdict(m),
                f"{m.native.rps:,.0f}",
                f"{m.pyfn.rps:,.0f}",
                times(m.rps_ratio),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    out.append("")
    for d in result.differences:
        out.append(f"differs: {d.name}: {d.why}")
        out.append(f"  native: {d.native}")
        out.append(f"  pyfn:   {d.pyfn}")
    out += _start_lines(result)
    out.append(_machine(result))
    for m in result.too_slow():
        out.append(f"below min_speedup {result.min_speedup:g}: {m.name} ({times(m.speedup)})")
    return "\n".join(out) + "\n"


def _start_lines(result: BenchResult) -> list[str]:
    lines = []
    cold, rss = result.cold_start_ms, result.idle_rss_mb
    if "native" in cold and "pyfn" in cold:
        lines.append(
            f"cold start to the first answer: pyfn {cold['pyfn']:.0f} ms, native "
            f"{cold['native']:.0f} ms ({cold['pyfn'] - cold['native']:+.0f} ms)"
        )
    if rss.get("native") and "pyfn" in rss:
        lines.append(
            f"idle memory: pyfn {rss['pyfn']:.0f} MB, native {rss['native']:.0f} MB "
            f"({times(rss['pyfn'] / rss['native'])})"
        )
    return lines


def _machine(result: BenchResult) -> str:
    return (
        f"{result.cpus} CPUs, {result.clients} clients, {result.duration:g} s a measure; "
        f"CPython {result.cpython} against PyPy {result.pypy}; one shared machine: "
        "the ratios mean more than the figures"
    )


def comment_lines(result: BenchResult, base: BenchResult | None) -> tuple[str, ...]:
    """The comment's lines for one function: one a request, the base's ratio beside it
    where it was measured, a request slower than at the base said so. Plain text with
    no markup of the pull request's making (names are the repository's)."""
    before = {m.name: m for m in base.measured} if base is not None else {}
    labels = [m.label for m in result.measured]
    out = []
    for m in result.measured:
        text = _plain(line(m))
        if labels.count(m.label) > 1:  # two requests of one path: their names tell them apart
            text += f" ({_plain(m.name)})"
        was = before.get(m.name)
        if was is not None:
            text += f" (base: {times(was.speedup)}"
            if m.speedup < was.speedup * 0.9:
                text += f", ⚠️ slower than at the base by {times(was.speedup / m.speedup)}"
            text += ")"
        out.append(text)
    for d in result.differences:
        out.append(
            f"{_plain(d.name)}: ❌ the runtimes answer differently ({_plain(d.why)}): not timed"
        )
    for m in result.too_slow():
        out.append(f"{_plain(m.name)}: ❌ below min_speedup {result.min_speedup:g}")
    return tuple(out)


def machine_note(result: BenchResult) -> str:
    return _plain(_machine(result))


def section(groups: Sequence[tuple[str, Sequence[str]]], note: str) -> list[str]:
    """The speed section's lines, as the comment and the job summary both draw it: each
    function's lines, and the machine they were measured on."""
    lines = ["#### Speed against the native Python runtime", ""]
    for function, texts in groups:
        lines += [f"- `{function}` {text}" for text in texts]
    if note:
        lines += ["", f"_{note}._"]
    return [*lines, ""]


def markdown(results: Sequence[BenchResult], bases: Mapping[str, BenchResult]) -> str:
    """The section the job summary shows (the comment draws the same lines)."""
    if not results:
        return ""
    groups = [(r.function, comment_lines(r, bases.get(r.function))) for r in results]
    return "\n".join(section(groups, machine_note(results[0])))


def _plain(text: str) -> str:
    """``text`` on one line, as markdown shows it literally: no HTML, markup escaped."""
    kept = "".join(c for c in text if c not in "<>\n\r")[:300]
    return "".join("\\" + c if c in "\\`*[]|#" else c for c in kept)
