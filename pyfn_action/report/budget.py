"""Size limits: the platform's (per Cloud Functions generation) and the user's budget."""

from __future__ import annotations

from collections.abc import Sequence

from pyfn_action.bundle.zipper import ZipResult
from pyfn_action.config import Budget
from pyfn_action.errors import BudgetExceeded
from pyfn_action.report.model import Component, Limit
from pyfn_action.runtime.targets import Generation
from pyfn_action.sizes import format_size

_SHOWN = 10


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


def check(limits: Sequence[Limit], zipped: ZipResult, components: Sequence[Component]) -> None:
    """Raise BudgetExceeded, naming limit, overshoot and the largest parts, when over."""
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
    )
