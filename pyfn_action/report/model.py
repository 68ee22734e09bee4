"""The size report: what a bundle weighs, part by part (``report.json``, version 1)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pyfn_action.bundle.zipper import ZipResult
from pyfn_action.sizes import format_size

REPORT_VERSION = 1
_KIND_ORDER = {"runtime": 0, "stdlib": 1, "package": 2, "app": 3, "shim": 4}


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # runtime | stdlib | package | app | shim
    compressed_bytes: int
    uncompressed_bytes: int
    files: int
    version: str | None = None


@dataclass(frozen=True)
class BundleSummary:
    sha256: str
    compressed_bytes: int
    uncompressed_bytes: int
    files: int


@dataclass(frozen=True)
class Report:
    bundle: BundleSummary
    components: tuple[Component, ...]
    runtime: Mapping[str, Any]
    function: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    version: int = REPORT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "bundle": asdict(self.bundle),
            "components": [_component_dict(c) for c in self.components],
            "runtime": dict(self.runtime),
            "function": dict(self.function),
            "warnings": list(self.warnings),
        }
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"


def _component_dict(component: Component) -> dict[str, Any]:
    data = asdict(component)
    if data["version"] is None:
        del data["version"]
    return data


def components_from(zipped: ZipResult, versions: Mapping[str, str]) -> tuple[Component, ...]:
    """Sum the zip's entries by component; packages carry their versions."""
    totals: dict[tuple[str, str], list[int]] = {}
    for entry in zipped.entries:
        slot = totals.setdefault((entry.component, entry.kind), [0, 0, 0])
        slot[0] += entry.compressed_bytes
        slot[1] += entry.uncompressed_bytes
        slot[2] += 1
    components = [
        Component(name, kind, c, u, n, versions.get(name) if kind == "package" else None)
        for (name, kind), (c, u, n) in totals.items()
    ]
    components.sort(key=lambda c: (_KIND_ORDER.get(c.kind, 9), -c.compressed_bytes, c.name))
    return tuple(components)


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
    return "\n".join(out) + "\n"
