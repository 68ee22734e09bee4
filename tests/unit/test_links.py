"""Every relative link in README, CONTRIBUTING, CHANGELOG, docs/ and the examples'
READMEs leads to a file that exists, and to a heading that exists in it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def _documents() -> list[Path]:
    return [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        REPO / "CHANGELOG.md",
        *sorted((REPO / "docs").glob("*.md")),
        *sorted((REPO / "examples").glob("*/README.md")),
    ]


def anchors(path: Path) -> set[str]:
    """The anchors GitHub gives the headings of ``path`` (lower case, punctuation
    dropped, spaces to hyphens, ``-1``, ``-2`` … for repeats)."""
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", FENCE.sub("", path.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        found.add(slug if n == 0 else f"{slug}-{n}")
    return found


def test_every_relative_link_and_anchor_resolves() -> None:
    broken = []
    checked = 0
    for doc in _documents():
        for target in LINK.findall(FENCE.sub("", doc.read_text(encoding="utf-8"))):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: …
                continue
            checked += 1
            file, _, anchor = target.partition("#")
            dest = (doc.parent / file).resolve() if file else doc
            where = f"{doc.relative_to(REPO)}: ({target})"
            if not dest.exists():
                broken.append(f"{where}: no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                broken.append(f"{where}: no such heading")
    assert checked > 30
    assert broken == []


def test_anchors_are_made_as_github_makes_them(tmp_path: Path) -> None:
    doc = tmp_path / "d.md"
    doc.write_text(
        "# The GitHub Action\n## `pyfn comment`\n## Cold builds: uv against pip\n"
        "## Notes\n## Notes\n```\n# not a heading\n```\n"
    )
    assert anchors(doc) == {
        "the-github-action",
        "pyfn-comment",
        "cold-builds-uv-against-pip",
        "notes",
        "notes-1",
    }


def test_the_readme_is_a_front_page() -> None:
    """README is also the package index's page: short, and the rest one link away."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 350
    for heading in (
        "## Measured",
        "## The GitHub Action",
        "## pre-commit hooks",
        "## The two commands",
        "## Documentation",
    ):
        assert f"\n{heading}\n" in text, heading
