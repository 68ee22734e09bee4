"""report.budget: the limits that apply to a bundle, and the refusal when one is exceeded."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfn_action.bundle.zipper import Written, ZipResult
from pyfn_action.config import Budget
from pyfn_action.errors import BudgetExceeded
from pyfn_action.report.budget import check, limits_for
from pyfn_action.report.model import Component, Limit
from pyfn_action.runtime.targets import generation
from pyfn_action.sizes import format_size

MB = 1_000_000


def _zip(*files: tuple[str, str, int, int]) -> ZipResult:
    written = tuple(Written(name, part, "package", c, u) for name, part, c, u in files)
    return ZipResult(Path("bundle.zip"), "0" * 64, sum(w.compressed_bytes for w in written),
                     sum(w.uncompressed_bytes for w in written), written)  # fmt: skip


def _components(zipped: ZipResult) -> list[Component]:
    parts: dict[str, list[int]] = {}
    for w in zipped.entries:
        slot = parts.setdefault(w.component, [0, 0, 0])
        slot[0] += w.compressed_bytes
        slot[1] += w.uncompressed_bytes
        slot[2] += 1
    return [Component(n, "package", c, u, f) for n, (c, u, f) in parts.items()]


def test_first_gen_platform_limits_and_no_budget() -> None:
    zipped = _zip(("a.py", "app", 10, 20))
    limits = limits_for(generation(1), Budget(), zipped)
    gen1 = generation(1)
    assert gen1.max_compressed_bytes and gen1.max_uncompressed_bytes
    assert limits == [
        Limit("gen1 compressed sources", gen1.max_compressed_bytes, 10),
        Limit("gen1 uncompressed sources", gen1.max_uncompressed_bytes, 20),
    ]
    assert all(limit.ok for limit in limits)
    assert limits_for(generation(2), Budget(), zipped) == []  # 2nd gen: no sources limit


def test_budget_limits_follow_the_platform_ones() -> None:
    zipped = _zip(("a.py", "app", 10, 20))
    limits = limits_for(generation(2), Budget(compressed=5, uncompressed=100), zipped)
    names = [limit.name for limit in limits]
    assert names[-2:] == ["budget compressed", "budget uncompressed"]
    assert [limit.ok for limit in limits[-2:]] == [False, True]
    assert limits[-2].to_dict() == {"name": "budget compressed", "limit_bytes": 5,
                                    "used_bytes": 10, "ok": False}  # fmt: skip


def test_within_every_limit_passes() -> None:
    zipped = _zip(("a.py", "app", 10, 20))
    check(limits_for(generation(2), Budget(compressed=10), zipped), zipped, _components(zipped))


@pytest.mark.parametrize("kind", ["compressed", "uncompressed"])
def test_first_gen_limit_exceeded_names_overshoot_and_largest(kind: str) -> None:
    gen1 = generation(1)
    platform = gen1.max_compressed_bytes if kind == "compressed" else gen1.max_uncompressed_bytes
    assert platform is not None
    zipped_size = platform if kind == "compressed" else MB
    zipped = _zip(
        ("site/numpy/core.so", "numpy", zipped_size, platform),
        ("site/big/data.bin", "big", 3 * MB, 3 * MB),
        ("main.py", "app", 1, 1),
    )
    limits = limits_for(gen1, Budget(), zipped)
    with pytest.raises(BudgetExceeded) as caught:
        check(limits, zipped, _components(zipped))
    over = next(limit for limit in limits if not limit.ok)
    message = caught.value.message
    assert over.name == f"gen1 {kind} sources" and over.name in message
    assert f"by {format_size(over.used_bytes - over.limit_bytes)}" in message
    why = caught.value.why or ""
    assert why.index("numpy") < why.index("big")  # largest first
    assert "site/numpy/core.so" in why and "main.py" in why


def test_uncompressed_budget_ranks_by_uncompressed_size() -> None:
    zipped = _zip(("small-zipped-big-unzipped.txt", "text", 1 * MB, 40 * MB),
                  ("dense.bin", "dense", 5 * MB, 5 * MB))  # fmt: skip
    limits = limits_for(generation(2), Budget(uncompressed=30 * MB), zipped)
    with pytest.raises(BudgetExceeded) as caught:
        check(limits, zipped, _components(zipped))
    assert "budget uncompressed" in caught.value.message
    assert "15.0 MB" in caught.value.message  # 45 MB used of 30 MB
    why = caught.value.why or ""
    assert why.index("small-zipped-big-unzipped.txt") < why.index("dense.bin")
    assert "text 40.0 MB" in why
