"""The size report: what a bundle weighs, part by part (``report.json``, version 1).

One typed model, written by the build (:meth:`Report.to_dict`) and read back by
everything that compares or renders (:func:`load`, :meth:`Report.from_dict`). A
report read back may come from another run, or from a pull request's artifact:
it is checked field by field and refused with a :class:`ReportError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyfn_action.bundle.zipper import ZipResult
from pyfn_action.errors import ReportError

REPORT_VERSION = 1
SUPPORTED_VERSIONS = (1,)
_KIND_ORDER = {"runtime": 0, "stdlib": 1, "package": 2, "app": 3, "shim": 4}


@dataclass(frozen=True)
class Component:
    name: str
    kind: str  # runtime | stdlib | package | app | shim
    compressed_bytes: int
    uncompressed_bytes: int
    files: int
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if data["version"] is None:
            del data["version"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Component:
        version = data.get("version")
        return cls(
            name=_text(data["name"]),
            kind=_text(data["kind"]),
            compressed_bytes=_count(data["compressed_bytes"]),
            uncompressed_bytes=_count(data["uncompressed_bytes"]),
            files=_count(data.get("files", 0)),
            version=None if version is None else _text(version),
        )


@dataclass(frozen=True)
class BundleSummary:
    sha256: str
    compressed_bytes: int
    uncompressed_bytes: int
    files: int

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BundleSummary:
        return cls(
            sha256=_text(data.get("sha256", "")),
            compressed_bytes=_count(data["compressed_bytes"]),
            uncompressed_bytes=_count(data["uncompressed_bytes"]),
            files=_count(data.get("files", 0)),
        )


@dataclass(frozen=True)
class Limit:
    """A size limit that applies to the bundle, and how much of it the bundle uses."""

    name: str  # "gen2 compressed sources", "budget uncompressed", ...
    limit_bytes: int
    used_bytes: int

    @property
    def ok(self) -> bool:
        return self.used_bytes <= self.limit_bytes

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "limit_bytes": self.limit_bytes,
            "used_bytes": self.used_bytes,
            "ok": self.ok,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Limit:
        return cls(_text(data["name"]), _count(data["limit_bytes"]), _count(data["used_bytes"]))


@dataclass(frozen=True)
class Report:
    bundle: BundleSummary
    components: tuple[Component, ...]
    runtime: Mapping[str, Any]
    function: Mapping[str, Any]
    warnings: tuple[str, ...] = ()
    limits: tuple[Limit, ...] = ()
    version: int = REPORT_VERSION
    extra: Mapping[str, Any] = field(default_factory=dict)  # trim effects, native findings
    node_framework: str | None = None  # the Node.js Functions Framework package.json declares

    @property
    def function_name(self) -> str:
        name = self.function.get("name", "")
        return name if isinstance(name, str) else ""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "version": self.version,
            "bundle": asdict(self.bundle),
            "components": [c.to_dict() for c in self.components],
            "runtime": dict(self.runtime),
            "function": dict(self.function),
            "warnings": list(self.warnings),
            "limits": [limit.to_dict() for limit in self.limits],
        }
        if self.node_framework is not None:
            data["node_framework"] = self.node_framework
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, data: object, where: str = "the report") -> Report:
        """A report from its JSON form; :class:`ReportError` names what is wrong."""
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(data, dict) or version not in SUPPORTED_VERSIONS:
            raise ReportError(
                f"{where} is a report of version {version!r}, which this pyfn cannot read",
                why=f"it reads versions {', '.join(map(str, SUPPORTED_VERSIONS))}",
                fix="Rebuild with this pyfn, or use the pyfn that wrote the report",
            )
        known = {
            "version",
            "bundle",
            "components",
            "runtime",
            "function",
            "warnings",
            "limits",
            "node_framework",
        }
        try:
            runtime, function = data.get("runtime", {}), data.get("function", {})
            if not isinstance(runtime, dict) or not isinstance(function, dict):
                raise TypeError("runtime and function must be objects")
            return cls(
                bundle=BundleSummary.from_dict(data["bundle"]),
                components=tuple(Component.from_dict(c) for c in _list(data["components"])),
                runtime=runtime,
                function=function,
                warnings=tuple(_text(w) for w in _list(data.get("warnings", []))),
                limits=tuple(Limit.from_dict(x) for x in _list(data.get("limits", []))),
                version=version,
                extra={k: v for k, v in data.items() if k not in known},
                node_framework=_optional_text(data.get("node_framework")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ReportError(f"{where} is not a complete pyfn report", why=repr(exc)) from exc


def load(path: Path) -> Report:
    """Read a report.json, refusing versions this pyfn does not know and incomplete ones."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"Cannot read {path}", why=str(exc)) from exc
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not JSON", why=str(exc), fix="Pass a report.json") from exc
    return Report.from_dict(data, str(path))


def components_from(zipped: ZipResult, versions: Mapping[str, str]) -> tuple[Component, ...]:
    """Sum the zip's entries by component; packages carry their versions."""
    totals: dict[tuple[str, str], list[int]] = {}
    for entry in zipped.entries:
        slot = totals.setdefault((entry.component, entry.kind), [0, 0, 0])
        slot[0] += entry.compressed_bytes
        slot[1] += entry.uncompressed_bytes
        slot[2] += 1
    components = [
        Component(
            name=name,
            kind=kind,
            compressed_bytes=c,
            uncompressed_bytes=u,
            files=n,
            version=versions.get(name) if kind == "package" else None,
        )
        for (name, kind), (c, u, n) in totals.items()
    ]
    components.sort(key=lambda c: (_KIND_ORDER.get(c.kind, 9), -c.compressed_bytes, c.name))
    return tuple(components)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_text(value: object) -> str | None:
    return None if value is None else _text(value)


def _count(value: object) -> int:
    """A byte or file count: a non-negative integer (JSON numbers that are whole)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a whole number, got {value!r}")
    if isinstance(value, float) and not value.is_integer():  # also NaN and infinities
        raise ValueError(f"expected a whole number, got {value!r}")
    if value < 0:
        raise ValueError(f"expected a count, got {value!r}")
    return int(value)


def _list(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return value
