from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from pyfn_action.cli import run
from pyfn_action.errors import ReportError
from pyfn_action.report.compare import compare, marker
from pyfn_action.report.model import Component, Limit, Report, load
from pyfn_action.report.render import (
    COMMENT_LIMIT,
    TRUNCATED_NOTE,
    headline,
    render_markdown,
    render_table,
    truncate,
)


def _report(components: dict[str, tuple[int, int]], **extra: object) -> Report:
    return Report.from_dict(_report_dict(components, **extra))


def _report_dict(components: dict[str, tuple[int, int]], **extra: object) -> dict:  # type: ignore[type-arg]
    comps = [
        {"name": n, "kind": "package", "compressed_bytes": c, "uncompressed_bytes": u, "files": 1}
        for n, (c, u) in components.items()
    ]
    return {
        "version": 1,
        "bundle": {
            "sha256": "0" * 64,
            "compressed_bytes": sum(c for c, _ in components.values()),
            "uncompressed_bytes": sum(u for _, u in components.values()),
            "files": len(comps),
        },
        "components": comps,
        "function": {"name": "hello"},
        **extra,
    }


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_compare_flags_new_removed_changed() -> None:
    head = _report({"flask": (200, 600), "numpy": (5000, 20000), "same": (10, 10)})
    base = _report({"flask": (100, 300), "requests": (50, 100), "same": (10, 10)})
    comparison = compare(head, base)
    status = {r.name: r.status for r in comparison.rows}
    assert status == {
        "flask": "changed",
        "numpy": "new",
        "requests": "removed",
        "same": "unchanged",
    }
    assert comparison.total.compressed_bytes == 5210
    assert comparison.total.base_compressed_bytes == 160


def test_markdown_marker_folding_and_deltas() -> None:
    head = _report(
        {"flask": (200_000, 600_000), "same": (10, 10)},
        limits=[
            {
                "name": "gen1 compressed sources",
                "limit_bytes": 100_000_000,
                "used_bytes": 200_010,
                "ok": True,
            }
        ],
    )
    base = _report({"flask": (100_000, 300_000), "same": (10, 10)})
    text = render_markdown(compare(head, base))
    assert text.startswith(marker("hello") + "\n")
    assert "+100.0 KB (+100.0%)" in text
    assert "<details><summary>1 unchanged components</summary>" in text
    assert text.index("`flask`") < text.index("<details>") < text.index("`same`")
    assert "✅ gen1 compressed sources" in text


def test_markdown_stays_under_the_comment_limit() -> None:
    many = {f"package-with-a-long-name-{i:05d}": (i * 7 + 1, i * 20 + 3) for i in range(6000)}
    base = {k: (c + 1, u) for k, (c, u) in list(many.items())[:3000]}
    text = render_markdown(compare(_report(many), _report(base)))
    assert len(text) <= COMMENT_LIMIT
    assert text.startswith(marker("hello") + "\n")
    assert "more components (see `report.json`)" in text


@pytest.mark.parametrize("data", [{"version": 99, "components": []}, [1, 2], {"no": "version"}])
def test_unknown_versions_are_refused(tmp_path: Path, data: object) -> None:
    with pytest.raises(ReportError, match="cannot read"):
        load(_write(tmp_path, "r.json", data))


def test_incomplete_report_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="not a complete"):
        load(_write(tmp_path, "r.json", {"version": 1, "components": [{"name": "x"}]}))


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_report_command(tmp_path: Path, fmt: str) -> None:
    head = _write(tmp_path, "head.json", _report_dict({"flask": (200, 600)}))
    base = _write(tmp_path, "base.json", _report_dict({"flask": (100, 600)}))
    out, err = io.StringIO(), io.StringIO()
    code = run(["report", str(head), "--base", str(base), "--format", fmt], {}, out, err)
    assert code == 0, err.getvalue()
    if fmt == "json":
        data = json.loads(out.getvalue())
        assert data["components"][0]["base_compressed_bytes"] == 100
    else:
        assert "flask" in out.getvalue() and "+100 B" in out.getvalue()


def test_report_command_error(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = run(["report", str(_write(tmp_path, "r.json", {"version": 2}))], {}, out, err)
    assert code == 10 and "version 2" in err.getvalue()


def test_each_function_has_its_own_marker_and_names_are_sanitized() -> None:
    assert marker("hello") == "<!-- pyfn-size-report: hello -->"
    assert marker("hello") != marker("world")
    hostile = marker("x --> <img src=y> `z`")
    assert hostile.count("-->") == 1 and "<img" not in hostile and "`" not in hostile
    text = render_markdown(compare(_report({"a": (1, 1)}, function={"name": "a|`b`"}), None))
    assert "`a__b_`" in text


def test_a_package_named_by_a_pull_request_stays_inside_its_cell() -> None:
    """A local package's metadata may name it anything: it cannot forge the comment."""
    hostile = "x` **all fine** ![](https://evil.test/i.png) `\n| fake | row |\r\n### Forged"
    head = _report({hostile: (5000, 9000), "flask": (200, 600)})
    base = _report({"flask": (200, 600)})
    text = render_markdown(compare(head, base))
    [row] = [line for line in text.splitlines() if "all fine" in line]
    assert (
        row.startswith("| `x� **all fine** ![](https://evil.test/i.png) ��") and row.count("`") == 2
    )
    assert "\n### Forged" not in text and "\n| fake | row |" not in text
    assert row.count("|") - row.count("\\|") == 7  # the header's cells, no more


def test_headline_says_size_change_and_the_nearest_limit() -> None:
    limits = [
        {
            "name": "gen1 compressed sources",
            "limit_bytes": 100_000_000,
            "used_bytes": 25_000_000,
            "ok": True,
        },
        {
            "name": "budget compressed",
            "limit_bytes": 30_000_000,
            "used_bytes": 25_000_000,
            "ok": True,
        },
    ]
    head = _report({"a": (25_000_000, 60_000_000)}, limits=limits)
    base = _report({"a": (24_000_000, 59_000_000)})
    line = headline(compare(head, base, base_label="`main`"))
    assert line.startswith("**25.0 MB** zipped · +1.0 MB (+4.2%) against `main` · ")
    assert line.endswith("83% of the 30.0 MB compressed budget (5.0 MB left)")


def test_headline_for_new_unchanged_and_over_budget() -> None:
    over = [{"name": "budget compressed", "limit_bytes": 1000, "used_bytes": 1500, "ok": False}]
    report = _report({"a": (1500, 3000)}, limits=over)
    new = headline(compare(report, None, new_function=True))
    assert "new function" in new and "❌ 500 B over the 1.0 KB compressed budget" in new
    same = compare(report, report)
    assert same.unchanged and "unchanged" in headline(same)
    assert "no size limit applies" in headline(compare(_report({"a": (1, 1)}), None))
    text = render_markdown(same)
    assert text.index("unchanged") < text.index("<details>")


def test_truncate_cuts_at_a_line_and_says_so() -> None:
    text = "\n".join(f"line {i:06d}" for i in range(10_000))
    cut = truncate(text, 5000)
    assert len(cut) <= 5000 and cut.endswith(TRUNCATED_NOTE)
    assert cut[: -len(TRUNCATED_NOTE)].splitlines()[-1].startswith("line ")
    assert truncate("short", 5000) == "short"


def test_report_round_trips_through_its_json_form() -> None:
    report = Report.from_dict(
        _report_dict(
            {"flask": (200, 600)},
            limits=[
                {"name": "budget compressed", "limit_bytes": 100, "used_bytes": 200, "ok": False}
            ],
            trim=[{"rule": "*.pyi"}],
            node_framework="5.0.5",
        )
    )
    assert report.node_framework == "5.0.5"
    assert "Node.js Functions Framework 5.0.5" in render_table(report)
    assert report.limits == (Limit("budget compressed", 100, 200),)
    assert report.components[0] == Component("flask", "package", 200, 600, 1)
    assert report.extra == {"trim": [{"rule": "*.pyi"}]}
    again = Report.from_dict(json.loads(report.to_json()))
    assert again == report
    assert again.to_dict() == report.to_dict()
    older = _report({"flask": (200, 600)})  # a report of a pyfn that did not record it
    assert older.node_framework is None and "node_framework" not in older.to_dict()
    assert "Functions Framework" not in render_table(older)
    with pytest.raises(ReportError):
        Report.from_dict(_report_dict({"flask": (200, 600)}, node_framework=5))


@pytest.mark.parametrize(
    "bad",
    [
        {"compressed_bytes": -1},
        {"compressed_bytes": True},
        {"compressed_bytes": "12"},
        {"compressed_bytes": 1.5},
        {"compressed_bytes": float("nan")},
        {"name": 7},
        {"kind": None},
    ],
)
def test_hostile_component_values_are_refused(tmp_path: Path, bad: dict[str, object]) -> None:
    data = _report_dict({"flask": (200, 600)})
    data["components"][0].update(bad)
    with pytest.raises(ReportError, match="not a complete pyfn report"):
        load(_write(tmp_path, "r.json", data))


@pytest.mark.parametrize("field", ["limits", "components", "warnings"])
def test_lists_that_are_not_lists_are_refused(tmp_path: Path, field: str) -> None:
    data = _report_dict({"flask": (200, 600)})
    data[field] = {"not": "a list"}
    with pytest.raises(ReportError, match="not a complete pyfn report"):
        load(_write(tmp_path, "r.json", data))
