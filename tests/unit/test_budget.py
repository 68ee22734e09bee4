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
    return ZipResult(
        Path("bundle.zip"),
        "0" * 64,
        sum(w.compressed_bytes for w in written),
        sum(w.uncompressed_bytes for w in written),
        written,
    )


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
    assert limits[-2].to_dict() == {
        "name": "budget compressed",
        "limit_bytes": 5,
        "used_bytes": 10,
        "ok": False,
    }


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
    zipped = _zip(
        ("small-zipped-big-unzipped.txt", "text", 1 * MB, 40 * MB),
        ("dense.bin", "dense", 5 * MB, 5 * MB),
    )
    limits = limits_for(generation(2), Budget(uncompressed=30 * MB), zipped)
    with pytest.raises(BudgetExceeded) as caught:
        check(limits, zipped, _components(zipped))
    assert "budget uncompressed" in caught.value.message
    assert "15.0 MB" in caught.value.message  # 45 MB used of 30 MB
    why = caught.value.why or ""
    assert why.index("small-zipped-big-unzipped.txt") < why.index("dense.bin")
    assert "text 40.0 MB" in why


# --- what docs/configuration.md promises, to the letter ---------------------------------


def test_first_gen_limits_are_the_documented_ones() -> None:
    gen1 = generation(1)  # "1st gen: 100 MB compressed, 500 MB uncompressed sources"
    assert (gen1.max_compressed_bytes, gen1.max_uncompressed_bytes) == (100 * MB, 500 * MB)
    gen2 = generation(2)  # "2nd gen publishes none"
    assert (gen2.max_compressed_bytes, gen2.max_uncompressed_bytes) == (None, None)


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


def _twelve(compressed_step: int, uncompressed_step: int, *, grow: str) -> ZipResult:
    """Twelve files, one component each, ranked one way by compressed size and the
    other way by uncompressed size, so ranking by the wrong measure shows."""
    files = []
    for i in range(12):
        up, down = i + 1, 12 - i
        c, u = (up, down) if grow == "compressed" else (down, up)
        files.append(
            (f"site/pkg{i:02d}/lib.so", f"pkg{i:02d}", c * compressed_step, u * uncompressed_step)
        )
    return _zip(*files)


@pytest.mark.parametrize(
    ("gen", "budget", "grow", "steps", "message"),
    [
        pytest.param(
            1,
            Budget(),
            "compressed",
            (1_500_000, 1 * MB),
            "The bundle exceeds the gen1 compressed sources limit of 100.0 MB by "
            "17.0 MB (117.0 MB compressed)",
            id="gen1-100MB-compressed",
        ),
        pytest.param(
            1,
            Budget(),
            "uncompressed",
            (1 * MB, 7 * MB),
            "The bundle exceeds the gen1 uncompressed sources limit of 500.0 MB by "
            "46.0 MB (546.0 MB uncompressed)",
            id="gen1-500MB-uncompressed",
        ),
        pytest.param(
            2,
            Budget(compressed=95 * MB, uncompressed=60 * MB),
            "uncompressed",
            (1 * MB, 1 * MB),
            "The bundle exceeds the budget uncompressed limit of 60.0 MB by "
            "18.0 MB (78.0 MB uncompressed)",
            id="uncompressed-budget",
        ),
        pytest.param(
            1,
            Budget(uncompressed=60 * MB),
            "uncompressed",
            (1 * MB, 1 * MB),
            "The bundle exceeds the budget uncompressed limit of 60.0 MB by "
            "18.0 MB (78.0 MB uncompressed)",
            id="gen1-within-limits-over-budget",
        ),
    ],
)
def test_refusal_names_limit_overshoot_and_the_ten_largest(
    gen: int, budget: Budget, grow: str, steps: tuple[int, int], message: str
) -> None:
    zipped = _twelve(*steps, grow=grow)
    limits = limits_for(generation(gen), budget, zipped)
    over = [limit.name for limit in limits if not limit.ok]
    assert len(over) == 1 and f" the {over[0]} limit " in message  # one limit is over
    with pytest.raises(BudgetExceeded) as caught:
        check(limits, zipped, _components(zipped))
    assert caught.value.what == message
    # the ten largest by the measure that is over, largest first; the two smallest left out
    step = steps[0] if grow == "compressed" else steps[1]
    ranked = [(f"{i:02d}", (i + 1) * step) for i in range(11, 1, -1)]
    components = "; ".join(f"pkg{n} {_mb(size)}" for n, size in ranked)
    files = "; ".join(f"site/pkg{n}/lib.so {_mb(size)}" for n, size in ranked)
    why = f"largest components: {components}; largest files: {files}"
    assert caught.value.why == why
    assert "pkg00" not in why and "pkg01" not in why
    assert caught.value.message.startswith(f"{message}. {why}. Trim it: add rules to .pyfnignore")
    assert "raise the budget in pyfn.toml" in caught.value.message


def test_exactly_at_a_limit_is_within_it() -> None:
    gen1 = generation(1)
    zipped = _zip(("site/a.so", "a", 100 * MB, 500 * MB))
    limits = limits_for(gen1, Budget(compressed=100 * MB, uncompressed=500 * MB), zipped)
    assert all(limit.ok for limit in limits) and len(limits) == 4
    check(limits, zipped, _components(zipped))
    over = _zip(("site/a.so", "a", 100 * MB + 1, 500 * MB))
    with pytest.raises(BudgetExceeded, match=r"compressed sources limit of 100\.0 MB by 1 B"):
        check(limits_for(gen1, Budget(), over), over, _components(over))


def test_the_refusal_carries_the_report_and_points_at_the_budget_and_the_largest_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "pyfn.toml").write_text('name = "fn"\n\n[budget]\ncompressed = "1 MB"\n')
    zipped = _zip(("app/data.bin", "app", 3 * MB, 3 * MB), ("site/a.so", "a", 1, 1))
    limits = limits_for(generation(2), Budget(compressed=MB), zipped)
    report = object()  # carried as it is

    def where(arcname: str) -> tuple[Path | None, int | None]:
        return tmp_path / arcname.removeprefix("app/"), None

    with pytest.raises(BudgetExceeded) as caught:
        check(limits, zipped, _components(zipped), report=report, where=where, source=tmp_path)
    assert caught.value.report is report
    budget, oversized = caught.value.findings
    assert (budget.kind, budget.file, budget.line) == ("budget", tmp_path / "pyfn.toml", 3)
    assert "exceeds the budget compressed limit of 1.0 MB" in budget.message
    assert (oversized.kind, oversized.file) == ("oversized", tmp_path / "data.bin")
    assert oversized.message.startswith("data.bin takes 3.0 MB of the bundle")
    with pytest.raises(BudgetExceeded) as bare:
        check(limits, zipped, _components(zipped))
    assert bare.value.report is None and bare.value.findings == ()
