"""The Action's lock (requirements/, written by `bash scripts/lock.sh`) matches
pyproject.toml: every dependency pinned, for every Python the Action may run on, at a
version its specifier admits, and every pin with the SHA-256 of its files; uv's own
lock is the same uv. (The composite tests install exactly this lock, hash-checked.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pyfn_action.toml import tomllib

REPO = Path(__file__).resolve().parents[2]
LOCKS = REPO / "requirements"
PYTHONS = ["3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"]


def _pins(path: Path) -> list[tuple[Requirement, list[str]]]:
    """Each pin of a lock (a requirement with its marker) and its hashes."""
    text = re.sub(r"\s*#.*$", "", path.read_text(), flags=re.M)
    pins = []
    for entry in re.split(r"\n(?=\S)", text.replace("\\\n", " ").strip()):
        spec, *hashes = entry.split("--hash=")
        pins.append((Requirement(spec.strip()), [h.strip() for h in hashes]))
    return pins


def _environment(python: str, machine: str) -> dict[str, str]:
    env = default_environment()
    env.update(
        python_full_version=python,
        python_version=python.rsplit(".", 1)[0],
        implementation_name="cpython",
        platform_python_implementation="CPython",
        sys_platform="linux",
        platform_system="Linux",
        os_name="posix",
        platform_machine=machine,
    )
    return env


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
@pytest.mark.parametrize("python", PYTHONS)
def test_every_dependency_is_pinned_at_a_version_it_admits(python: str, machine: str) -> None:
    env = _environment(python, machine)
    pinned: dict[str, str] = {}
    for requirement, hashes in _pins(LOCKS / "action.txt"):
        if requirement.marker is None or requirement.marker.evaluate(env):
            [version] = [s.version for s in requirement.specifier if s.operator == "=="]
            name = canonicalize_name(requirement.name)
            assert name not in pinned, f"{name} pinned twice for Python {python}"
            pinned[name] = version
            assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in [*project["dependencies"], *project["optional-dependencies"]["deploy"]]:
        wanted = Requirement(line)
        if wanted.marker is not None and not wanted.marker.evaluate(env):
            continue
        name = canonicalize_name(wanted.name)
        assert name in pinned, (
            f"{name} is not in the lock for Python {python}: bash scripts/lock.sh"
        )
        assert wanted.specifier.contains(pinned[name], prereleases=True), (
            f"the lock pins {name}=={pinned[name]}, which {line!r} does not admit: "
            "bash scripts/lock.sh"
        )


def test_the_hooks_never_install_googles_client_libraries() -> None:
    """pre-commit installs the package with its dependencies, not its extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith("google")]
    assert all(d.startswith("google") for d in project["optional-dependencies"]["deploy"])


def test_uv_is_locked_alone_as_it_is_among_the_rest() -> None:
    [(uv, hashes)] = _pins(LOCKS / "uv.txt")
    among = {str(r.specifier): h for r, h in _pins(LOCKS / "action.txt") if r.name == "uv"}
    assert among == {str(uv.specifier): hashes}
