"""The rows of the job's comment on their own: each written to the hidden data line and
read back as it was, and every field of a row read back checked before it is used."""

from __future__ import annotations

import pytest

from pyfn_action.report import fields
from pyfn_action.report.entries import FunctionEntry, entry_data, read_entry
from pyfn_action.report.fields import MAX_FUNCTIONS, NotCombined
from pyfn_action.report.previews import (
    PreviewLine,
    preview_data,
    preview_section,
    read_preview,
)
from pyfn_action.report.speed import SpeedLines, read_speed, speed_data, speed_section

URL = "https://hello-pr-42-abc-ew.a.run.app"
ROW = FunctionEntry(
    name="hello",
    zipped=24_700_000,
    base=24_690_000,
    change=10_000,
    shim=-12,
    state="changed",
    limit=("gen2 upload", 24_700_000, 104_857_600),
    over=False,
    base_from="cache",
    details="| `flask` | 1 KB |",
    notice="Node.js 20 is deprecated",
)


def test_a_text_field_is_text_of_its_length_and_characters_and_never_markup() -> None:
    assert fields.text(None, 5) == ""
    assert fields.text("hello", 5, r"[a-z]+") == "hello"
    for value, most, pattern in [
        ("hello!", 5, None),
        (7, 5, None),
        ("Hello", 5, r"[a-z]+"),
        ("<b>", 5, None),
        ("a\nb", 5, None),
    ]:
        with pytest.raises(NotCombined):
            fields.text(value, most, pattern)


@pytest.mark.parametrize("value", [True, 1.0, "1", None, 2**53 + 1])
def test_a_size_is_a_whole_number_a_float_holds_exactly(value: object) -> None:
    with pytest.raises(NotCombined):
        fields.integer(value)


def test_a_count_is_never_negative_and_a_list_never_too_long() -> None:
    assert fields.integer(-3) == -3
    with pytest.raises(NotCombined):
        fields.count(-3)
    assert fields.listed([1, 2], "rows") == [1, 2]
    for value in ([0] * (MAX_FUNCTIONS + 1), {"a": 1}, "ab"):
        with pytest.raises(NotCombined, match="its rows"):
            fields.listed(value, "rows")


def test_a_function_row_reads_back_as_it_was_written() -> None:
    notices = ["something else", ROW.notice]
    row = entry_data(ROW, notices)
    assert row[-1] == 1  # the notice, by its place in the list
    assert read_entry(row, {"hello": ROW.details}, notices) == ROW
    quiet = FunctionEntry(
        name="quiet",
        zipped=10,
        base=None,
        change=0,
        shim=0,
        state="new",
        limit=None,
        over=False,
    )
    assert read_entry(entry_data(quiet, []), {}, []) == quiet


@pytest.mark.parametrize(
    ("at", "value"),
    [
        (0, "he llo"),  # a name of other characters
        (1, -1),  # a negative size
        (5, "grown"),  # an unknown state
        (6, ["gen2 upload", 1]),  # a limit of two parts
        (7, 1),  # over: not true or false
        (8, "elsewhere"),  # an unknown base
        (9, 5),  # a notice there is not
    ],
)
def test_a_function_row_read_back_is_refused_field_by_field(at: int, value: object) -> None:
    notices = [ROW.notice]
    row = entry_data(ROW, notices)
    row[at] = value
    with pytest.raises(NotCombined):
        read_entry(row, {}, notices)
    with pytest.raises(NotCombined):
        read_entry(row[:-1], {}, notices)


def test_a_preview_reads_back_as_it_was_written_and_its_section_says_it() -> None:
    live = PreviewLine(function="hello", name="hello-pr-42", url=URL, sha256="ab" * 32)
    skipped = PreviewLine(function="events", state="skipped", reason="event")
    for line in (live, skipped):
        assert read_preview(preview_data(line)) == line
    section = preview_section([skipped, live])
    assert section[0] == "#### Previews"
    assert section[2].startswith("- `events`: no preview: an event function's")
    assert section[3] == f"- `hello`: {URL} · `hello-pr-42` runs bundle `{'ab' * 32}` · private"
    assert "print-identity-token" in section[-2]  # how to call a private one
    assert preview_section([]) == []


def test_a_preview_never_carries_another_url_and_a_bad_row_is_refused() -> None:
    assert PreviewLine(function="hello", url="javascript:alert(1)").url == ""
    good = preview_data(PreviewLine(function="hello", name="hello-pr-42", url=URL))
    for at, value in [(2, "running"), (5, "yes"), (6, "because"), (3, "http://x.test")]:
        row = list(good)
        row[at] = value
        with pytest.raises(NotCombined):
            read_preview(row)
    with pytest.raises(NotCombined):
        read_preview(good[:6])


def test_speed_lines_read_back_as_they_were_written_and_are_drawn_by_name() -> None:
    hello = SpeedLines(function="hello", lines=("greet: GET /  14× faster",))
    assert read_speed(speed_data(hello)) == hello
    other = SpeedLines(function="alpha", lines=("a: 2× faster",))
    drawn = speed_section([hello, other], "2 CPUs")
    assert drawn.index("- `alpha` a: 2× faster") < drawn.index("- `hello` greet: GET /  14× faster")
    assert "_2 CPUs._" in drawn
    assert speed_section([], "2 CPUs") == []
    for row in (["hello"], ["", ["a"]], ["hello", "a"], ["hello", ["<b>"]]):
        with pytest.raises(NotCombined):
            read_speed(row)
