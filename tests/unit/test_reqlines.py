"""deps.reqlines: a requirements file's lines as pip reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyfn_action.deps.reqlines import (
    lines_through_includes,
    logical_lines,
    pinned_hashes,
    requirement_text,
    source_options,
    split_option,
)


def test_continuations_are_joined_and_comments_dropped() -> None:
    text = "# a comment\nflask>=3 \\\n  ; python_version > '3' # why\n\nrequests\t# pinned later\n"
    assert logical_lines(text) == [(2, "flask>=3   ; python_version > '3'"), (5, "requests")]


def test_a_hash_sign_inside_a_word_is_not_a_comment() -> None:
    assert logical_lines("pkg @ https://host/p.whl#sha256=ab\n") == [
        (1, "pkg @ https://host/p.whl#sha256=ab")
    ]


def test_a_continuation_at_the_end_of_the_file_is_kept() -> None:
    assert logical_lines("flask \\") == [(1, "flask")]


def test_the_requirement_leaves_its_hashes_behind() -> None:
    assert requirement_text("click==8.1 --hash=sha256:ab --hash=sha256:cd") == "click==8.1"
    assert requirement_text("click==8.1; --hash=sha256:ab") == "click==8.1"


@pytest.mark.parametrize(
    ("line", "split"),
    [
        ("-f wheels", ("-f", "wheels")),
        ("--find-links=wheels", ("--find-links", "wheels")),
        ("--no-index", ("--no-index", "")),
        ("-r 'more reqs.txt'", ("-r", "more reqs.txt")),
    ],
)
def test_an_option_line_splits_into_option_and_value(line: str, split: tuple[str, str]) -> None:
    assert split_option(line) == split


def test_included_files_are_read_in_place_each_once(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("click\n-r top.txt\n")  # a circle: read once
    (tmp_path / "top.txt").write_text("flask\n-r base.txt\nrequests\n")
    lines = list(lines_through_includes(tmp_path / "top.txt"))
    assert lines == [
        (tmp_path / "top.txt", "flask"),
        (tmp_path / "base.txt", "click"),
        (tmp_path / "top.txt", "requests"),
    ]


def test_hashes_and_sources_are_read_through_includes(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "base.txt").write_text("--require-hashes\nclick==8.1 --hash=sha256:AB\n")
    (tmp_path / "top.txt").write_text(
        "-c base.txt\n--index-url https://index.example/simple\n-f wheels\n--no-index\n"
    )
    assert pinned_hashes(tmp_path / "top.txt") == ({"click": {"ab"}}, True)
    assert source_options(tmp_path / "top.txt") == [
        "--index-url",
        "https://index.example/simple",
        "--find-links",
        str(tmp_path / "wheels"),
        "--no-index",
    ]
