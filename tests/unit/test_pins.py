"""Every action that pyfn's steps, its workflows and its documented examples use is
pinned by full commit SHA, with its version in a comment, the same commit for the same
version everywhere; Dependabot is told to keep them (and the Python dependencies)
current."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)
PINNED = re.compile(r"^([\w.-]+/[\w.-]+(?:/[\w./-]+)?)@([0-9a-f]{40})$")
VERSION = re.compile(r"^\s*#\s*(v\d+\.\d+\.\d+)\s*$")
OURS = ("./", "pyfn-action/pyfn-action@")  # this action itself: its own tags are the point


def _files() -> list[Path]:
    files = [REPO / "action.yml", REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    files += sorted((REPO / ".github" / "workflows").glob("*.yml"))
    files += sorted((REPO / "examples").glob("*/README.md"))
    return files


def test_every_action_used_is_pinned_by_commit_with_its_version() -> None:
    seen: dict[tuple[str, str], str] = {}
    found = 0
    for path in _files():
        for ref, rest in USES.findall(path.read_text(encoding="utf-8")):
            if ref.startswith(OURS):
                continue
            found += 1
            where = f"{path.relative_to(REPO)}: uses: {ref}{rest}"
            pinned, version = PINNED.match(ref), VERSION.match(rest)
            assert pinned and version, f"not pinned by SHA with '# vX.Y.Z': {where}"
            name = pinned.group(1).split("/")[:2]
            key = ("/".join(name), version.group(1))
            assert seen.setdefault(key, pinned.group(2)) == pinned.group(2), (
                f"{key[0]} {key[1]} is pinned to two commits: {where}"
            )
    assert found >= 10  # action.yml's steps, the workflows and the README's examples


def test_dependabot_keeps_the_actions_and_the_python_dependencies_current() -> None:
    config = yaml.safe_load((REPO / ".github" / "dependabot.yml").read_text())
    ecosystems = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    # "/" holds action.yml (the action's own steps), .github/workflows and pyproject.toml
    assert {("github-actions", "/"), ("pip", "/")} <= ecosystems
