""".gcloudignore means what it means to gcloud, and without one gcloud's default applies.

The tables are gcloud's own published examples (`gcloud topic gcloudignore`) and
the default `gcloud functions deploy` uses for a directory with no .gcloudignore.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.stage import app_entries
from pyfn_action.bundle.trim import gcloud_default, plan_trim, render_plan, user_rules


def _source(tmp_path: Path, files: dict[str, str]) -> Path:
    src = tmp_path / "fn"
    for name, text in files.items():
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_text(text)
    return src


def _left_out(src: Path, names: list[str]) -> dict[str, bool]:
    entries = [Entry(f"app/{name}", None, b"", False, "app", "app") for name in names]
    removed = {entry.arcname for entry in plan_trim(entries, user_rules(src), ()).removed}
    return {name: f"app/{name}" in removed for name in names}


# `gcloud topic gcloudignore`, EXAMPLES and SYNTAX: the rules, then each file and
# whether gcloud leaves it out (True) or uploads it.
PUBLISHED = [
    pytest.param(
        "/node_modules/\n*~\n",
        {
            "node_modules/x.js": True,
            "lib/node_modules/y.js": False,
            "notes~": True,
            "a/b~": True,
            "main.py": False,
        },
        id="node_modules-and-backups",
    ),
    pytest.param(
        "foo\n/bar\n", {"foo": True, "x/foo": True, "bar": True, "x/bar": False}, id="foo-and-/bar"
    ),
    pytest.param(
        "foo*\n*bar\nbaz*qux\n",
        {"foo.txt": True, "xbar": True, "baz-qux": True, "xfoo": False, "barx": False},
        id="starts-and-ends",
    ),
    pytest.param(
        "foo*\n!foo\n\\!bar\n",
        {"foo": False, "foo1": True, "!bar": True, "bar": False},
        id="re-include-foo-and-ignore-!bar",
    ),
    pytest.param(
        "foo/\n**/baz\nqux/**\n",
        {
            "foo/x": True,
            "a/foo": False,
            "baz": True,
            "a/baz": True,
            "qux/x": True,
            "qux/a/b": True,
            "quxx": False,
        },
        id="directories-and-double-stars",
    ),
    pytest.param(
        ".gcloudignore\n.git\n.gitignore\n#!include:.gitignore\n",
        {".gitignore": True, ".git/config": True, "x.log": True, "main.py": False},
        id="the-example-for-a-git-directory",
    ),
]


@pytest.mark.parametrize(("rules", "expected"), PUBLISHED)
def test_gcloudignore_decides_as_gcloud_documents(
    tmp_path: Path, rules: str, expected: dict[str, bool]
) -> None:
    src = _source(tmp_path, {".gcloudignore": rules, ".gitignore": "*.log\n"})
    assert _left_out(src, list(expected)) == expected


# --- no .gcloudignore: gcloud's default -------------------------------------------------

GIT_IGNORED = {
    "main.py": "print('hi')\n",
    ".gitignore": ".env\nsecrets/\n",
    ".env": "GREETING=hello\n",
    "secrets/motd.txt": "not a credential\n",
    "sub/.gitignore": "*.tmp\n",
    "sub/keep.txt": "kept\n",
}


def test_without_gcloudignore_a_git_ignored_env_is_not_bundled(tmp_path: Path) -> None:
    src = _source(tmp_path, GIT_IGNORED)
    entries, _ = app_entries(src)
    plan = plan_trim(entries, user_rules(src), ())
    kept = {entry.arcname for entry in plan.kept}
    assert kept == {"app/main.py", "app/sub/keep.txt"}
    by_rule = {effect.rule.where: (effect.rule.text, effect.files) for effect in plan.effects}
    assert by_rule == {
        "gcloud's default:7": (".gitignore", 2),  # any file named .gitignore
        ".gitignore:1": (".env", 1),
        ".gitignore:2": ("secrets/", 1),
    }
    table = render_plan(plan)
    assert "gcloud's default:7" in table and ".gitignore:2" in table


def test_without_git_files_everything_is_bundled_as_gcloud_uploads_it(tmp_path: Path) -> None:
    files = {k: v for k, v in GIT_IGNORED.items() if k != ".gitignore"}
    src = _source(tmp_path, files)
    entries, _ = app_entries(src)
    kept = {entry.arcname for entry in plan_trim(entries, user_rules(src), ()).kept}
    assert {"app/.env", "app/secrets/motd.txt", "app/sub/.gitignore"} <= kept
    assert "gcloud would upload every file" in (gcloud_default(src) or "")


@pytest.mark.parametrize("trigger", [".git", "node_modules"])
def test_a_git_directory_or_node_modules_brings_the_default_without_gitignore_rules(
    tmp_path: Path, trigger: str
) -> None:
    src = _source(tmp_path, {"main.py": "", ".env": "A=1\n", "a/.gitignore": "x\n"})
    (src / trigger).mkdir()
    assert _left_out(src, [".env", "a/.gitignore", "a/node_modules/m.js", "a/.git"]) == {
        ".env": False,
        "a/.gitignore": True,
        "a/node_modules/m.js": True,
        "a/.git": True,
    }
    note = gcloud_default(src) or ""
    assert f"gcloud's default for a directory with {trigger}" in note
    assert "rules of .gitignore" not in note


def test_the_build_says_which_default_it_used(tmp_path: Path) -> None:
    src = _source(tmp_path, GIT_IGNORED)
    (src / ".git").mkdir()
    assert gcloud_default(src) == (
        "no .gcloudignore: using gcloud's default for a directory with .git and .gitignore "
        "(.gcloudignore, .git, .gitignore, node_modules, then the rules of .gitignore), "
        "as `gcloud functions deploy` would"
    )


def test_a_gcloudignore_replaces_the_default(tmp_path: Path) -> None:
    src = _source(tmp_path, {**GIT_IGNORED, ".gcloudignore": "*.tmp\n"})
    assert gcloud_default(src) is None
    assert _left_out(src, [".env", ".gitignore", "x.tmp"]) == {
        ".env": False,
        ".gitignore": False,
        "x.tmp": True,
    }


def test_pyfnignore_comes_after_the_default(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src = _source(tmp_path, {**GIT_IGNORED, ".pyfnignore": "!.env\n"})
    with caplog.at_level(logging.WARNING):
        assert _left_out(src, [".env", "secrets/motd.txt"]) == {
            ".env": False,
            "secrets/motd.txt": True,
        }
    assert not caplog.records
