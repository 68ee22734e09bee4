"""The release workflow's own checks, runnable anywhere (the tests run them too):

    python scripts/release.py check vX.Y.Z     # the tag, the version and the changelog agree
    python scripts/release.py notes vX.Y.Z     # the changelog's section for the release
    python scripts/release.py build DIR        # the sdist and the wheel, built and checked

``build`` uses uv (``uv build``) and checks what it made: one sdist and one pure
wheel of this version, named as PyPI expects, their metadata naming the version and
carrying README as the long description, the wheel holding the package's data (the
shim, the trim rules) and no tests. Each failure says what is wrong and exits 1.
"""

from __future__ import annotations

import email.parser
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pyfn_action import __version__  # noqa: E402 - the checkout's, not an installed one

SECTION = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\d{4}-\d{2}-\d{2}))?\s*$", re.M)
NEEDED_IN_WHEEL = (
    "pyfn_action/shim/index.js",
    "pyfn_action/shim/shim/pool.js",  # index.js's modules: package-data's shim/**/*
    "pyfn_action/shim/pyfn/worker.py",
    "pyfn_action/data/trim-site.txt",
    "pyfn_action/cli/__init__.py",
)


class ReleaseError(Exception):
    """What is wrong with the release, and what to do."""


def changelog_section(text: str, version: str) -> str:
    """The body of ``## [version] - date`` in a changelog; its date must be there."""
    found = [m for m in SECTION.finditer(text) if m.group("version") == version]
    if not found:
        raise ReleaseError(
            f"CHANGELOG.md has no section ## [{version}] - YYYY-MM-DD: "
            "rename [Unreleased] to it (CONTRIBUTING.md, Cutting a release)"
        )
    if not found[0].group("date"):
        raise ReleaseError(
            f"CHANGELOG.md's section [{version}] has no date: ## [{version}] - YYYY-MM-DD"
        )
    start = found[0].end()
    following = SECTION.search(text, start)
    return text[start : following.start() if following else len(text)].strip() + "\n"


def check(tag: str, changelog: str, version: str = __version__) -> None:
    """The tag names this version, and the changelog has its dated section."""
    if not re.fullmatch(r"v\d+\.\d+\.\d+", tag):
        raise ReleaseError(f"The tag {tag!r} is not vX.Y.Z")
    if tag != f"v{version}":
        raise ReleaseError(
            f"The tag {tag} is not the package's version {version}: set __version__ in "
            f"pyfn_action/__init__.py, or tag v{version}"
        )
    changelog_section(changelog, version)


def build(out: Path, version: str = __version__) -> list[Path]:
    """The sdist and the wheel of this checkout in ``out``, checked."""
    shutil.rmtree(out, ignore_errors=True)
    uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    with tempfile.TemporaryDirectory(prefix="pyfn-release-") as tmp:
        # A copy of the checkout's files (as git sees them): building writes build/
        # and *.egg-info beside the sources, never into the checkout.
        source = Path(tmp) / "source"
        listed = (
            subprocess.run(
                ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                cwd=ROOT,
                capture_output=True,
                check=True,
            )
            .stdout.decode()
            .split("\0")
        )
        for name in filter(None, listed):
            if (ROOT / name).is_file() and not name.startswith("tests/"):
                (source / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, source / name)
        # The sdist first, then the wheel from it: what PyPI's users build from is whole.
        subprocess.run([uv, "build", "--out-dir", str(out.resolve()), str(source)], check=True)
    made = sorted(p.name for p in out.iterdir() if p.suffix in (".whl", ".gz"))
    wanted = [f"pyfn_action-{version}-py3-none-any.whl", f"pyfn_action-{version}.tar.gz"]
    if made != wanted:
        raise ReleaseError(f"uv build made {made}, not {wanted}")
    wheel, sdist = (out / name for name in wanted)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"pyfn_action-{version}.dist-info/METADATA").decode()
    _check_metadata(metadata, version, "the wheel")
    missing = [n for n in NEEDED_IN_WHEEL if n not in names]
    if missing:
        raise ReleaseError(f"the wheel lacks {', '.join(missing)}: check package-data")
    if any(n.startswith("tests/") for n in names):
        raise ReleaseError("the wheel holds the tests")
    with tarfile.open(sdist) as archive:
        base = f"pyfn_action-{version}"
        inside = set(archive.getnames())
        member = archive.extractfile(f"{base}/PKG-INFO")
        assert member is not None
        _check_metadata(member.read().decode(), version, "the sdist")
    for needed in ("pyproject.toml", "README.md", "pyfn_action/__init__.py"):
        if f"{base}/{needed}" not in inside:
            raise ReleaseError(f"the sdist lacks {needed}")
    return [wheel, sdist]


def _check_metadata(text: str, version: str, what: str) -> None:
    message = email.parser.Parser().parsestr(text)
    if message["Name"] != "pyfn-action" or message["Version"] != version:
        raise ReleaseError(
            f"{what} says {message['Name']} {message['Version']}, not pyfn-action {version}"
        )
    if (
        message.get("Description-Content-Type") != "text/markdown"
        or len(message.get_payload() or "") < 1000
    ):
        raise ReleaseError(f"{what} does not carry README.md as its description")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("check", "notes", "build"):
        sys.stderr.write(__doc__)
        return 2
    command, value = argv
    try:
        changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        if command == "check":
            check(value, changelog)
            print(f"{value}: the tag, the package's version and the changelog agree")
        elif command == "notes":
            check(value, changelog)
            sys.stdout.write(changelog_section(changelog, value.removeprefix("v")))
        else:
            for path in build(Path(value)):
                print(f"built and checked {path}")
    except ReleaseError as exc:
        sys.stderr.write(f"release: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
