""".pyfnignore decides your own files as git does: each case asked of the real git.

`git check-ignore --no-index` answers for a fresh repository whose .gitignore holds
the rules; pyfn answers for a function whose .pyfnignore holds the same bytes.
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from support.gitcheck import git_available, git_ignored, git_ignored_in_dirs

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.trim import plan_trim, user_rules


@pytest.fixture(autouse=True)
def _git_is_there() -> None:
    """The answers come from the real git: without it these tests fail, never skip."""
    if not git_available():
        pytest.fail("git is not on PATH: these tests compare pyfn with git (CI installs it)")


def pyfn_ignored(src: Path, rules: bytes, files: list[str]) -> dict[str, bool]:
    """Whether pyfn leaves each file out of app/, with ``rules`` as the .pyfnignore."""
    src.mkdir(parents=True, exist_ok=True)
    (src / ".pyfnignore").write_bytes(rules)
    entries = [Entry(f"app/{name}", None, b"", False, "app", "app") for name in files]
    removed = {entry.arcname for entry in plan_trim(entries, user_rules(src), ()).removed}
    return {name: f"app/{name}" in removed for name in files}


# rule file, the files of the tree, and what git says of each (True: ignored)
CLASSES = [
    pytest.param(
        b"build/*\n",
        {"build/sub/y": True, "build/x": True, "b/build/z": False},
        id="a-directory-a-rule-matches-takes-its-contents",
    ),
    pytest.param(
        b"build/*\n!build/sub/y\n",
        {"build/sub/y": True, "build/x": True},
        id="nothing-comes-back-from-an-excluded-directory",
    ),
    pytest.param(
        b"d/**/\n", {"d/a": False, "d/b/c": True}, id="double-star-slash-matches-directories-only"
    ),
    pytest.param(
        b"d/\n", {"d": False, "x/d/a": True}, id="trailing-slash-matches-directories-only"
    ),
    pytest.param(b"/\n", {"a": False, "b/c": False}, id="a-lone-slash-matches-nothing"),
    pytest.param(b"//\n", {"a": False, "b/c": False}, id="a-double-slash-matches-nothing"),
    pytest.param(b"foo\\ \n", {"foo ": True, "foo": False}, id="an-escaped-trailing-space-stays"),
    pytest.param(b"foo  \n", {"foo": True, "foo ": False}, id="unescaped-trailing-spaces-go"),
    pytest.param(b"a\t\n", {"a": False, "a\t": True}, id="a-trailing-tab-stays"),
    pytest.param(b"\\\n*.log\n", {"a": False, "x.log": True}, id="a-lone-backslash-is-skipped"),
    pytest.param(b"!\n*.log\n", {"a": False, "x.log": True}, id="a-lone-bang-is-skipped"),
    pytest.param(
        b"x/a**/b\n", {"x/a/y/b": True, "x/ab/b": True, "x/c/b": False}, id="double-star-quirk"
    ),
    pytest.param(
        b"[abc\nz\n", {"[abc": False, "z": True}, id="an-unclosed-bracket-matches-nothing"
    ),
    pytest.param(b"\\#a\n\\!b\n", {"#a": True, "!b": True}, id="escaped-hash-and-bang"),
    pytest.param(b"*.log\r\n", {"x.log": True}, id="crlf-line-endings"),
    pytest.param(b"??\n", {"é": True, "ab": True, "abc": False}, id="a-question-mark-is-one-byte"),
]


@pytest.mark.parametrize(("rules", "expected"), CLASSES)
def test_pyfnignore_decides_as_git(tmp_path: Path, rules: bytes, expected: dict[str, bool]) -> None:
    files = list(expected)
    git = git_ignored(tmp_path / "git", rules, files)
    assert git == expected, "git itself answers otherwise: the table is wrong"
    assert pyfn_ignored(tmp_path / "fn", rules, files) == git


@pytest.mark.parametrize("line", ["/", "//", "!", "\\", "[abc", "a//"])
def test_a_line_git_cannot_use_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, line: str
) -> None:
    rules = f"*.log\n{line}\n".encode()
    assert pyfn_ignored(tmp_path / "fn", rules, ["a", "x.log"]) == {"a": False, "x.log": True}
    assert f".pyfnignore:2: {line!r} is not a rule git can use" in caplog.text


# --- a seeded, bounded fuzz test against git --------------------------------------------

NAMES = ["a", "b", "ab", "ba", "a.x", "b.x", ".a", "a b", "a ", "a\t", "!a", "#a", "[a]", "*"]
TOKENS = [
    *NAMES[:7],
    "*",
    "**",
    "?",
    "a*",
    "*b",
    "*.x",
    "a**",
    "**a",
    "[ab]",
    "[!a]",
    "[a-b]",
    "[[:alpha:]]",
    "a[[:space:]]*",
    "[]a]",
    "[!]a]",
    "[a-]",
    "\\!a",
    "\\#a",
    "a\\ ",
    "\\*",
    "[",
]
CASES = 300
ODD_LINES = ["/", "//", "!", "\\", "#a", "", "   ", "**", "**/", "/**", "a\\", "!/", "[[:x:]]"]


def _tree(rng: random.Random) -> list[str]:
    files: set[str] = set()
    dirs: set[str] = set()
    for _ in range(rng.randint(6, 24)):
        parts = [rng.choice(NAMES) for _ in range(rng.randint(1, 4))]
        path = "/".join(parts)
        above = {"/".join(parts[:i]) for i in range(1, len(parts))}
        if path in dirs or path in files or above & files:
            continue
        files.add(path)
        dirs |= above
    return sorted(files)


def _line(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return rng.choice(ODD_LINES)
    segments = [rng.choice(TOKENS) for _ in range(rng.choices([1, 2, 3], [5, 3, 2])[0])]
    line = "/".join(segments)
    if rng.random() < 0.3:
        line = "/" + line
    if rng.random() < 0.25:
        line += "/"
    if rng.random() < 0.3:
        line = "!" + line
    if rng.random() < 0.15:
        line += rng.choice([" ", "  ", "\\ ", "\t", " \t"])
    return line


def _rules(rng: random.Random) -> bytes:
    newline = "\r\n" if rng.random() < 0.1 else "\n"
    text = newline.join(_line(rng) for _ in range(rng.randint(1, 6))) + newline
    return text.encode()


def test_pyfnignore_against_git_fuzzed(tmp_path: Path) -> None:
    """Random trees and rule files, a fixed seed: every decision pyfn makes about your
    own files is git's. Bounded to a few thousand decisions, asked of git in one call
    (each case's rules the .gitignore of its own directory)."""
    rng = random.Random(20261201)
    started = time.monotonic()
    cases = [(_rules(rng), _tree(rng)) for _ in range(CASES)]
    answers = git_ignored_in_dirs(tmp_path / "git", cases)
    decisions = ignored = 0
    for number, ((rules, files), git) in enumerate(zip(cases, answers)):
        pyfn = pyfn_ignored(tmp_path / f"fn{number}", rules, files)
        wrong = [f"{f!r}: git {git[f]}, pyfn {pyfn[f]}" for f in files if git[f] != pyfn[f]]
        assert not wrong, f"rules {rules!r}:\n" + "\n".join(wrong)
        decisions += len(files)
        ignored += sum(git.values())
    assert decisions > 3000 and decisions / 5 < ignored < decisions * 4 / 5
    assert time.monotonic() - started < 20
