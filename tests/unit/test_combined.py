"""One comment for a job's functions: its rows, its quiet rules, its size, and what a
comment read back (perhaps one written by someone else) may and may not change."""

from __future__ import annotations

import base64
import json

import pytest

from pyfn_action.report import combined
from pyfn_action.report.combined import Combined
from pyfn_action.report.compare import compare
from pyfn_action.report.entries import FunctionEntry, Threshold, entry, parse_threshold
from pyfn_action.report.fields import NotCombined
from pyfn_action.report.model import BundleSummary, Component, Limit, Report
from pyfn_action.report.previews import PreviewLine
from pyfn_action.report.render import COMMENT_LIMIT
from pyfn_action.report.speed import SpeedLines

SHA = "ab" * 20
EVERY_BYTE = Threshold()
LABEL = "`main` (1a2b3c4)"


def _report(name: str, parts: dict[str, int], *, limit: int | None = 100_000_000) -> Report:
    kinds = {"runtime": "runtime", "stdlib": "stdlib", "app": "app", "shim": "shim"}
    components = tuple(
        Component(part, kinds.get(part, "package"), size, size * 3, 10)
        for part, size in parts.items()
    )
    total = sum(parts.values())
    limits = (Limit("gen2 upload", limit, total),) if limit else ()
    return Report(
        bundle=BundleSummary("0" * 64, total, total * 3, 10 * len(parts)),
        components=components,
        runtime={},
        function={"name": name},
        limits=limits,
    )


BASE = {"runtime": 14_500_000, "stdlib": 6_700_000, "flask": 220_000, "app": 841, "shim": 48_700}


def _entry(
    name: str,
    head: dict[str, int] | None = None,
    *,
    base: dict[str, int] | None = BASE,
    threshold: Threshold = EVERY_BYTE,
    limit: int | None = 100_000_000,
    base_from: str = "built",
) -> FunctionEntry:
    now = _report(name, head or BASE, limit=limit)
    then = _report(name, base, limit=limit) if base is not None else None
    comparison = compare(now, then, new_function=base is None, base_label=LABEL)
    return entry(comparison, threshold=threshold, base_from=base_from)


def _function_rows(body: str) -> list[str]:
    """The rows of the table of functions (the folded tables below have rows too)."""
    lines = body.splitlines()
    if "| function | zipped | change | limit |" not in lines:
        return []
    start = lines.index("| function | zipped | change | limit |") + 2
    return lines[start : lines.index("", start)]


def _comment(*entries: FunctionEntry, minimum: str = "") -> Combined:
    return Combined("ci/build", tuple(entries), SHA, LABEL, minimum)


def test_one_row_per_changed_function_and_one_line_for_the_rest() -> None:
    changed = _entry("hello", {**BASE, "flask": 232_300})
    body = combined.render(_comment(changed, _entry("billing"), _entry("search")))
    lines = body.splitlines()
    assert lines[0] == combined.marker("ci/build")
    assert lines[3] == (
        "**3 functions, 64.4 MB zipped** · +12.3 KB (+0.0%) against "
        "`main` (1a2b3c4) · 1 of 3 changed · all within their limits"
    )
    assert _function_rows(body) == ["| `hello` | 21.5 MB | +12.3 KB (+0.1%) | ✅ 21% of 100.0 MB |"]
    assert "2 unchanged: `billing`, `search`" in lines
    assert "<details><summary><code>hello</code>: +12.3 KB (+0.1%), 1 component</summary>" in body
    assert "| `flask` | package | 232.3 KB | +12.3 KB (+5.6%) |" in body


def test_a_change_under_the_minimum_counts_as_unchanged() -> None:
    small = {**BASE, "flask": 220_400}
    assert _entry("hello", small).state == "changed"
    for minimum in ("1KB", "0.01%"):
        quiet = _entry("hello", small, threshold=parse_threshold(minimum))
        assert quiet.state == "unchanged" and not quiet.noted
    comment = _comment(_entry("hello", small, threshold=parse_threshold("1KB")), minimum="1.0 KB")
    assert not comment.changed
    body = combined.render(comment)
    assert "no function changed against `main` (1a2b3c4)" in body.splitlines()[3]
    assert "a change under 1.0 KB counts as unchanged" in body


@pytest.mark.parametrize(
    ("text", "bytes_", "percent"),
    [
        ("", 0, None),
        ("0", 0, None),
        ("1KB", 1000, None),
        ("2KiB", 2048, None),
        ("0.5%", 0, 0.5),
        (" 10 % ", 0, 10.0),
    ],
)
def test_minimum_change_is_bytes_or_a_share(text: str, bytes_: int, percent: float | None) -> None:
    assert parse_threshold(text) == Threshold(bytes_, percent)


@pytest.mark.parametrize("text", ["1 parsec", "-1KB", "150%", "%", "nan%", "1KB%"])
def test_a_minimum_that_is_neither_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="is not a"):
        parse_threshold(text)


def test_the_shims_change_is_said_once_and_counted_in_no_function() -> None:
    newer = {**BASE, "shim": 49_900}
    entries = [_entry(name, newer) for name in ("a", "b", "c")]
    assert all(e.state == "unchanged" and e.shim == 1_200 for e in entries)
    body = combined.render(_comment(*entries))
    assert body.count("The shim") == 1
    assert "changed by +1.2 KB in every function" in body
    assert "no function changed" in body.splitlines()[3]
    both = _entry("a", {**newer, "flask": 230_000})
    assert both.change == 10_000  # the function's own change, the shim's left out
    assert "`shim`" not in both.details


def test_new_functions_and_functions_over_their_limit_lead_the_table() -> None:
    body = combined.render(
        _comment(
            _entry("big", {**BASE, "flask": 300_000}),
            _entry("fresh", base=None),
            _entry("over", {**BASE, "flask": 230_000}, limit=20_000_000),
        )
    )
    rows = _function_rows(body)
    assert [r.split("`")[1] for r in rows] == ["over", "fresh", "big"]
    assert rows[0].endswith("| ❌ 1.5 MB over 20.0 MB |")
    assert rows[1] == "| `fresh` | 21.5 MB | 🆕 new | ✅ 21% of 100.0 MB |"
    assert "❌ 1 over its limit" in body.splitlines()[3]


def test_two_hundred_functions_fit_with_every_row_and_details_go_first() -> None:
    parts = {**BASE, **{f"package-with-a-long-name-{n}": 1000 + n for n in range(40)}}
    grown = {k: v + 5_000 if k.startswith("package") else v for k, v in parts.items()}
    entries = [_entry(f"function-number-{n:03d}", grown, base=parts) for n in range(200)]
    body = combined.render(_comment(*entries))
    assert len(body) <= COMMENT_LIMIT
    assert len(_function_rows(body)) == 200
    assert "component tables of" in body and "are left out here" in body
    back = {e.name: e for e in combined.parse(body).entries}
    assert set(back) == {e.name for e in entries}
    assert all(back[e.name].change == e.change for e in entries)


def test_one_of_twenty_changed_is_one_row_under_6000_characters() -> None:
    entries = [_entry(f"fn-{n:02d}") for n in range(19)]
    entries.append(_entry("fn-19", {**BASE, "flask": 240_000, "app": 2_000}))
    body = combined.render(_comment(*entries))
    assert len(body) < 6000
    assert [r.split("`")[1] for r in _function_rows(body)] == ["fn-19"]
    assert "19 unchanged: " in body


def test_a_comment_read_back_gives_the_same_comment() -> None:
    comment = _comment(
        _entry("hello", {**BASE, "flask": 232_300}),
        _entry("billing"),
        _entry("fresh", base=None, base_from=""),
        minimum="1.0 KB",
    )
    body = combined.render(comment)
    back = combined.parse(body)
    assert back.sha == SHA and back.base_label == LABEL and back.minimum == "1.0 KB"
    assert combined.render(back) == body


def test_jobs_sharing_a_comment_each_put_their_own_rows_into_it() -> None:
    first = combined.parse(combined.render(_comment(_entry("a", {**BASE, "flask": 1}))))
    second = _comment(_entry("b", {**BASE, "flask": 2}))
    merged = combined.merge(first, second)
    assert [e.name for e in merged.entries] == ["a", "b"]
    assert merged.entries[0].details  # a's folded table, carried over from the comment
    again = combined.merge(merged, _comment(_entry("a")))  # a, measured again: unchanged
    assert [(e.name, e.state) for e in again.entries] == [("a", "unchanged"), ("b", "changed")]
    pushed = Combined("ci/build", (_entry("b"),), "cd" * 20, LABEL)
    assert [e.name for e in combined.merge(again, pushed).entries] == ["b"]  # a new commit


def _with_data(body: str, change: object) -> str:
    """``body`` with its data line's first row changed by ``change``."""
    lines = body.splitlines()
    [at] = [n for n, line in enumerate(lines) if line.startswith("<!-- pyfn-data: ")]
    data = json.loads(base64.b64decode(lines[at][len("<!-- pyfn-data: ") : -4]))
    change(data)  # type: ignore[operator]
    raw = base64.b64encode(json.dumps(data).encode()).decode()
    lines[at] = f"<!-- pyfn-data: {raw} -->"
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["f"][0].__setitem__(0, "a<script>"),
        lambda d: d["f"][0].__setitem__(0, "x" * 64),
        lambda d: d["f"][0].__setitem__(1, -5),
        lambda d: d["f"][0].__setitem__(1, "12"),
        lambda d: d["f"][0].__setitem__(5, "splendid"),
        lambda d: d["f"][0].__setitem__(6, ["gen2 upload -->", 1, 2]),
        lambda d: d["f"].append(list(d["f"][0])),
        lambda d: d.__setitem__("v", 2),
        lambda d: d.__setitem__("base", "`main` <img src=x>"),
        lambda d: d.__setitem__("sha", "not a sha"),
    ],
)
def test_a_comment_read_back_is_checked_field_by_field(change: object) -> None:
    body = combined.render(_comment(_entry("hello", {**BASE, "flask": 232_300})))
    with pytest.raises(NotCombined):
        combined.parse(_with_data(body, change))


def test_a_package_name_cannot_close_a_hidden_line() -> None:
    hostile = {**BASE, "evil --> <!-- pyfn-details-end -->": 5_000}
    body = combined.render(_comment(_entry("hello", hostile)))
    assert body.count("<!-- pyfn-details-end -->") == 1
    back = combined.parse(body)
    assert combined.render(back) == body


def test_keys_are_markers_of_their_own() -> None:
    assert combined.marker("ci/build") != combined.marker("ci/build-2")
    long_a, long_b = "k" * 70 + "a", "k" * 70 + "b"
    assert combined.marker(long_a) != combined.marker(long_b)
    assert all(combined.is_marker(combined.marker(k)) for k in ("x", "ci/build", long_a, "é"))


def test_a_runtime_notice_is_said_once_and_kept_when_read_back() -> None:
    said = 'nodejs22 is decommissioned on 2027-10-31; set node_runtime = "nodejs24"'
    report = _report("hello", {**BASE, "flask": 232_300})
    report = Report(
        report.bundle, report.components, {"notice": said}, report.function, limits=report.limits
    )
    comparison = compare(report, _report("hello", BASE), base_label=LABEL)
    noted = entry(comparison, threshold=EVERY_BYTE)
    body = combined.render(_comment(noted, _entry("billing")))
    assert f"> ⚠️ {said} (`hello`)" in body.splitlines()
    assert combined.render(combined.parse(body)) == body
    alone = combined.render(_comment(noted))
    assert f"> ⚠️ {said}" in alone.splitlines()  # every function's: no names
    hostile = _with_data(alone, lambda d: d.__setitem__("n", ["<img src=x onerror=alert(1)>"]))
    with pytest.raises(NotCombined):
        combined.parse(hostile)


# --- previews ---------------------------------------------------------------------------

URL = "https://asia-northeast1-demo-proj.cloudfunctions.net/hello-pr-42"
BUNDLE = "c0ffee" + "0" * 58


def _previewed(*lines: PreviewLine) -> Combined:
    comment = _comment(_entry("hello"), _entry("events"))
    return Combined(comment.key, comment.entries, comment.sha, comment.base_label, previews=lines)


LIVE = PreviewLine("hello", name="hello-pr-42", url=URL, sha256=BUNDLE)


def test_a_preview_is_one_line_with_its_url_and_bundle_and_how_to_call_it() -> None:
    skipped = PreviewLine("events", state="skipped", reason="event")
    comment = _previewed(LIVE, skipped)
    body = combined.render(comment)
    assert comment.changed  # no function changed, and yet a preview is news
    [line] = [line for line in body.splitlines() if line.startswith("- `hello`")]
    assert URL in line and BUNDLE in line and "hello-pr-42" in line and "private" in line
    assert "gcloud auth print-identity-token" in body
    assert "- `events`: no preview: an event function's preview" in body
    public = combined.render(_previewed(PreviewLine(**{**LIVE.__dict__, "public": True})))
    assert "print-identity-token" not in public and "anyone may call it" in public
    back = combined.parse(body)
    assert back.previews == (LIVE, skipped)
    assert combined.render(back) == body


def test_deleted_previews_are_named_once() -> None:
    gone = PreviewLine("hello", name="hello-pr-42", state="deleted")
    body = combined.render(_previewed(gone))
    assert "Deleted as the pull request closed: `hello-pr-42`" in body
    assert URL not in body and "print-identity-token" not in body


def test_jobs_sharing_a_comment_keep_each_others_previews() -> None:
    first = combined.parse(combined.render(_previewed(LIVE)))
    other = PreviewLine("beta", name="beta-pr-42", url=URL.replace("hello", "beta"), sha256=BUNDLE)
    merged = combined.merge(first, _previewed(other))
    assert [p.function for p in merged.previews] == ["beta", "hello"]


def test_a_url_that_is_not_a_plain_https_url_is_never_drawn() -> None:
    hostile = PreviewLine(
        "hello", name="hello-pr-42", url="https://x.io/<img src=y>", sha256=BUNDLE
    )
    assert hostile.url == ""
    assert "<img" not in combined.render(_previewed(hostile))


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["p"][0].__setitem__(2, "running"),
        lambda d: d["p"][0].__setitem__(3, "javascript:alert(1)"),
        lambda d: d["p"][0].__setitem__(3, "https://x.io/a b"),
        lambda d: d["p"][0].__setitem__(4, "not a sha"),
        lambda d: d["p"][0].__setitem__(5, "yes"),
        lambda d: d["p"][0].__setitem__(6, "because"),
        lambda d: d["p"][0].__setitem__(1, "Hello-PR"),
        lambda d: d["p"].append(list(d["p"][0])),
        lambda d: d.__setitem__("p", {"hello": 1}),
    ],
)
def test_previews_read_back_are_checked_field_by_field(change: object) -> None:
    body = combined.render(_previewed(LIVE))
    with pytest.raises(NotCombined):
        combined.parse(_with_data(body, change))


def test_speed_lines_are_drawn_read_back_and_merged() -> None:
    comment = _comment(_entry("hello"), _entry("events"))
    lines = SpeedLines("hello", ("greet: GET /  p50 1.1 ms vs 15.9 ms native: 14× faster",))
    measured = Combined(
        comment.key,
        comment.entries,
        comment.sha,
        comment.base_label,
        speed=(lines,),
        speed_note="2 CPUs, 8 clients",
    )
    assert measured.changed  # no size changed: the speed, asked for, is news
    body = combined.render(measured)
    assert "#### Speed against the native Python runtime" in body
    assert "- `hello` greet: GET /  p50 1.1 ms vs 15.9 ms native: 14× faster" in body
    back = combined.parse(body)
    assert back.speed == (lines,) and back.speed_note == "2 CPUs, 8 clients"
    other = SpeedLines("events", ("e: GET /e  p50 1 ms vs 1 ms native: about as fast",))
    merged = combined.merge(
        back,
        Combined(comment.key, comment.entries, comment.sha, comment.base_label, speed=(other,)),
    )
    assert [g.function for g in merged.speed] == ["events", "hello"]


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["s"][0][1].append("<img src=x>"),
        lambda d: d["s"][0].__setitem__(0, "a b"),
        lambda d: d["s"].append(list(d["s"][0])),
        lambda d: d.__setitem__("sn", "x\ny"),
    ],
)
def test_speed_lines_read_back_are_checked(change: object) -> None:
    comment = _comment(_entry("hello"))
    body = combined.render(
        Combined(
            comment.key,
            comment.entries,
            comment.sha,
            speed=(SpeedLines("hello", ("a: 2× faster",)),),
            speed_note="n",
        )
    )
    with pytest.raises(NotCombined):
        combined.parse(_with_data(body, change))
