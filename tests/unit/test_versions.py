"""One version, said the same way everywhere: the package's, the hooks' `rev:`, pip's
`==`, the Action's major tag, and the changelog's sections."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyfn_action import __version__
from pyfn_action.toml import tomllib

REPO = Path(__file__).resolve().parents[2]
MAJOR = __version__.split(".")[0]


def _docs() -> list[Path]:
    return [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "examples").glob("*/README.md")),
    ]


def test_the_docs_name_this_version() -> None:
    named: dict[str, set[str]] = {"rev": set(), "pip": set(), "action": set()}
    for path in _docs():
        text = path.read_text(encoding="utf-8")
        named["rev"].update(re.findall(r"^\s*rev:\s*v(\d[^\s#]*)", text, re.M))
        named["pip"].update(re.findall(r"pyfn-action(?:\[\w+\])?==(\d[\w.]*)", text))
        named["action"].update(re.findall(r"pyfn-action/pyfn-action@v(\d[\w.]*)", text))
        assert "git+https://github.com/pyfn-action" not in text, path  # the package index's
    assert named == {"rev": {__version__}, "pip": {__version__}, "action": {MAJOR}}


@pytest.mark.parametrize("module", ["pyfn_action", "pyfn_action.cli"])
def test_pyfn_version_prints_it(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", module, "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"pyfn {__version__}"


def test_the_version_is_written_once() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in pyproject["project"] and pyproject["project"]["dynamic"] == ["version"]
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "pyfn_action.__version__"
    }


def test_the_changelog_keeps_a_changelog() -> None:
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    sections = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert sections, "no ## [X.Y.Z] - YYYY-MM-DD or ## [Unreleased] section"
    names = [name for name, _ in sections]
    assert names[0] in ("Unreleased", __version__)  # the newest first
    released = [(n, d) for n, d in sections if n != "Unreleased"]
    assert all(d for _, d in released), "a released section without its date"
    assert __version__ in names or names[0] == "Unreleased"
