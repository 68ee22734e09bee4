"""The release workflow's checks (scripts/release.py), run here as the workflow runs
them: the tag against the version and the changelog, the notes, and a dry run of the
build up to the publish step."""

from __future__ import annotations

import importlib.util
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from support.servers import index_routes, serve

from pyfn_action import __version__

REPO = Path(__file__).resolve().parents[2]
HOOKHOUSE = REPO / "tests" / ".hookhouse"


@pytest.fixture(scope="module")
def release() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release", REPO / "scripts" / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHANGELOG = f"""# Changelog

## [Unreleased]

## [{__version__}] - 2027-01-15

### Added

- The first release.

## [0.9.0] - 2026-11-01

- Older.
"""


def test_the_tag_the_version_and_the_changelog_must_agree(release: ModuleType) -> None:
    release.check(f"v{__version__}", CHANGELOG)
    with pytest.raises(release.ReleaseError, match="is not the package's version"):
        release.check("v9.9.9", CHANGELOG)
    with pytest.raises(release.ReleaseError, match=r"is not vX\.Y\.Z"):
        release.check("latest", CHANGELOG)
    undated = CHANGELOG.replace(f"[{__version__}] - 2027-01-15", f"[{__version__}]")
    with pytest.raises(release.ReleaseError, match="has no date"):
        release.check(f"v{__version__}", undated)
    with pytest.raises(release.ReleaseError, match="has no section"):
        release.check(f"v{__version__}", "# Changelog\n\n## [Unreleased]\n")


def test_the_notes_are_the_changelogs_section(release: ModuleType) -> None:
    notes = release.changelog_section(CHANGELOG, __version__)
    assert notes == "### Added\n\n- The first release.\n"


@pytest.fixture
def build_index() -> Iterator[str]:
    """pyfn's build backend on loopback: what `uv build` installs to build."""
    if not any(HOOKHOUSE.glob("setuptools-*.whl")):
        pytest.fail("tests/.hookhouse has no setuptools: run `python tests/prepare.py` (CI does)")
    with serve(index_routes(HOOKHOUSE)) as base:
        yield f"{base}/simple/"


def test_a_dry_run_builds_and_checks_what_would_be_published(
    release: ModuleType, build_index: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith(("UV_", "PIP_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("UV_DEFAULT_INDEX", build_index)
    monkeypatch.setenv("UV_NO_CONFIG", "1")
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    wheel, sdist = release.build(tmp_path / "dist")
    assert sdist.name == f"pyfn_action-{__version__}.tar.gz"
    with zipfile.ZipFile(wheel) as archive:
        assert "pyfn_action/shim/index.js" in archive.namelist()


def test_the_workflow_publishes_by_trusted_publishing_only() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "release.yml").read_text())
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    assert jobs["publish"]["permissions"] == {"id-token": "write"}
    assert "with" not in jobs["publish"]["steps"][-1]  # no password, no token input
    assert jobs["publish"]["needs"] == "build" and jobs["build"]["needs"] == "test"
    assert all("contents" in job["permissions"] for name, job in jobs.items() if name != "publish")
