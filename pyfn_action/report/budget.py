"""Size limits: the platform's (per Cloud Functions generation) and the user's budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from pyfn_action.bundle.zipper import ZipResult
from pyfn_action.config import Budget, config_file, key_line
from pyfn_action.errors import BudgetExceeded, Finding
from pyfn_action.report.model import Component, Limit, Report
from pyfn_action.runtime.targets import Generation
from pyfn_action.sizes import format_size

_SHOWN = 10

# Where a bundle entry comes from: the function's file and line (bundle.checks.Locator).
Locate = Callable[[str], tuple[Path | None, int | None]]


def limits_for(gen: Generation, budget: Budget, zipped: ZipResult) -> list[Limit]:
    """Every limit that applies to this bundle, with what the bundle uses of it."""
    used = {"compressed": zipped.compressed_bytes, "uncompressed": zipped.uncompressed_bytes}
    limits = []
    platform = {
        "compressed": gen.max_compressed_bytes,
        "uncompressed": gen.max_uncompressed_bytes,
    }
    for kind, limit in platform.items():
        if limit is not None:
            limits.append(Limit(f"gen{gen.gen} {kind} sources", limit, used[kind]))
    for kind, limit in (("compressed", budget.compressed), ("uncompressed", budget.uncompressed)):
        if limit is not None:
            limits.append(Limit(f"budget {kind}", limit, used[kind]))
    return limits


def check(
    limits: Sequence[Limit],
    zipped: ZipResult,
    components: Sequence[Component],
    *,
    report: Report | None = None,
    where: Locate | None = None,
    source: Path | None = None,
) -> None:
    """Raise BudgetExceeded, naming limit, overshoot and the largest parts, when over.

    The error carries ``report`` (the refused bundle's, never written), and, given
    ``where`` and the function's ``source``, findings: each exceeded limit on the
    line that sets the budget, and the function's own largest files.
    """
    over = [limit for limit in limits if not limit.ok]
    if not over:
        return
    first = over[0]
    kind = "compressed" if "uncompressed" not in first.name else "uncompressed"

    def size(item: tuple[str, int, int]) -> int:
        return item[1] if kind == "compressed" else item[2]

    files = sorted(
        ((e.arcname, e.compressed_bytes, e.uncompressed_bytes) for e in zipped.entries),
        key=size,
        reverse=True,
    )[:_SHOWN]
    parts = sorted(
        ((c.name, c.compressed_bytes, c.uncompressed_bytes) for c in components),
        key=size,
        reverse=True,
    )[:_SHOWN]
    listed = "; ".join(f"{item[0]} {format_size(size(item))}" for item in files)
    biggest = "; ".join(f"{item[0]} {format_size(size(item))}" for item in parts)
    raise BudgetExceeded(
        f"The bundle exceeds the {first.name} limit of {format_size(first.limit_bytes)} "
        f"by {format_size(first.used_bytes - first.limit_bytes)} "
        f"({format_size(first.used_bytes)} {kind})",
        why=f"largest components: {biggest}; largest files: {listed}",
        fix="Trim it: add rules to .pyfnignore (pyfn build --dry-run shows what each rule "
        "removes), drop unused requirements, or raise the budget in pyfn.toml",
        report=report,
        findings=findings(over, zipped, where, source) if where is not None else (),
    )


def findings(
    over: Sequence[Limit], zipped: ZipResult, where: Locate, source: Path | None
) -> list[Finding]:
    """The exceeded limits (on the line that sets the budget) and the largest source files."""
    found = []
    for limit in over:
        message = (
            f"the bundle ({format_size(limit.used_bytes)}) exceeds the {limit.name} limit of "
            f"{format_size(limit.limit_bytes)}"
        )
        file = config_file(source) if source and limit.name.startswith("budget") else None
        line = key_line(file, "budget") if file is not None else None
        found.append(
            Finding(kind="budget", message=message, file=file if line else None, line=line)
        )
    largest = sorted(zipped.entries, key=lambda e: e.compressed_bytes, reverse=True)[:_SHOWN]
    for entry in largest:
        file, _ = where(entry.arcname)
        if entry.arcname.startswith("app/") and file is not None:
            message = (
                f"{entry.arcname.removeprefix('app/')} takes {format_size(entry.compressed_bytes)} "
                f"of the bundle ({format_size(entry.uncompressed_bytes)} unzipped)"
            )
            found.append(Finding(kind="oversized", message=message, file=file))
    return found
