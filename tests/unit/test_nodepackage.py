"""The Node.js Functions Framework a bundle declares: pinned in one place, locked, checked."""

from __future__ import annotations

import json
import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from pyfn_action.bundle.nodepackage import PACKAGE, declare, from_files, parse_spec, pinned
from pyfn_action.config import resolve
from pyfn_action.errors import BundleError, ConfigError
from pyfn_action.flows.nodeframework import Framework, runtime_mismatch

REPO = Path(__file__).resolve().parents[2]


def test_the_pinned_version_is_declared_and_locked_in_one_place() -> None:
    package = pinned()
    declared = json.loads(package.package_json)["dependencies"]
    lock = json.loads(package.lock)
    assert declared == {PACKAGE: package.version} and package.spec == package.version
    assert lock["packages"][""]["dependencies"] == declared  # npm ci needs them in sync
    assert lock["packages"][f"node_modules/{PACKAGE}"]["version"] == package.version
    # No registry's address in the lockfile: the platform's npm uses its own.
    assert not [k for k, v in lock["packages"].items() if "resolved" in v]


def test_the_docs_name_the_pinned_version() -> None:
    version = pinned().version
    assert f"the version pyfn pins ({version})" in (REPO / "docs" / "configuration.md").read_text()
    assert f"Functions Framework {version}" in (REPO / "docs" / "runtime-contract.md").read_text()


@pytest.mark.parametrize(
    ("spec", "parts"),
    [
        ("5.0.5", (PACKAGE, "5.0.5")),
        ("5.1.0-beta.1", (PACKAGE, "5.1.0-beta.1")),
        ("npm:@corp/functions-framework@5.0.5", ("@corp/functions-framework", "5.0.5")),
        ("npm:ff-mirror@4.0.1", ("ff-mirror", "4.0.1")),
    ],
)
def test_exact_versions_and_aliases_are_declarations(spec: str, parts: tuple[str, str]) -> None:
    assert parse_spec(spec) == parts


@pytest.mark.parametrize(
    "spec",
    [
        "^5.0.5",
        "~5.0.5",
        "5.x",
        "5",
        "latest",
        ">=5",
        "npm:@corp/ff@^5.0.5",
        "npm:@corp/ff",
        "git+https://example.invalid/ff.git",
        "file:../ff",
    ],
)
def test_ranges_tags_and_other_sources_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="exact version"):
        parse_spec(spec)
    with pytest.raises(ConfigError, match="node_framework"):
        resolve(REPO / "examples" / "hello", env={"PYFN_NODE_FRAMEWORK": spec}, flags={})


def test_the_setting_layers_like_every_key(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("def main(request):\n    return 'ok'\n")
    (tmp_path / "pyfn.toml").write_text('node_framework = "5.0.2"\n')
    assert resolve(tmp_path, env={}, flags={}).node_framework == "5.0.2"
    env = {"PYFN_NODE_FRAMEWORK": "5.0.1"}
    assert resolve(tmp_path, env=env, flags={}).node_framework == "5.0.1"
    flags = {"node_framework": "5.0.0"}
    assert resolve(tmp_path, env=env, flags=flags).node_framework == "5.0.0"


def _package_json(spec: str) -> bytes:
    return json.dumps({"name": "b", "dependencies": {PACKAGE: spec}}).encode()


def _lock(name: str, version: str) -> bytes:
    entry = {"version": version} if name == PACKAGE else {"name": name, "version": version}
    return json.dumps({"packages": {f"node_modules/{PACKAGE}": entry}}).encode()


def test_a_lockfile_must_install_what_package_json_declares() -> None:
    assert from_files(json.dumps({"name": "b"}).encode(), None, "b") is None  # nothing declared
    ok = from_files(_package_json("5.0.2"), _lock(PACKAGE, "5.0.2"), "b")
    assert ok is not None and (ok.name, ok.version) == (PACKAGE, "5.0.2")
    alias = from_files(_package_json("npm:@c/ff@5.0.2"), _lock("@c/ff", "5.0.2"), "b")
    assert alias is not None and alias.name == "@c/ff"
    with pytest.raises(BundleError, match="does not install"):
        from_files(_package_json("5.0.2"), _lock(PACKAGE, "5.0.5"), "b")
    with pytest.raises(BundleError, match=r"without a package-lock\.json"):
        from_files(_package_json("5.0.2"), None, "b")
    with pytest.raises(BundleError, match="does not pin"):
        from_files(_package_json("^5.0.2"), _lock(PACKAGE, "5.0.2"), "b")
    with pytest.raises(BundleError, match="does not lock"):
        from_files(_package_json("5.0.2"), b'{"packages": {}}', "b")


FAKE_NPM = """#!/bin/sh
# npm install --package-lock-only, standing in: counts its runs, locks FF_VERSION.
echo run >> "$NPM_RUNS"
[ -n "$NPM_FAIL" ] && { echo "npm error 404 No match for version" >&2; exit 1; }
printf '{"packages": {"node_modules/%s": {"version": "%s"}}}' \
  "@google-cloud/functions-framework" "$FF_VERSION" > package-lock.json
"""


def _fake_npm(tmp_path: Path, **extra: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    return {"PATH": f"{bin_dir}:/usr/bin:/bin", "NPM_RUNS": str(tmp_path / "runs"), **extra}


def test_the_pinned_declaration_needs_no_npm(tmp_path: Path) -> None:
    assert declare(None, tmp_path, {"PATH": str(tmp_path)}) == pinned()
    assert declare(pinned().spec, tmp_path, {"PATH": str(tmp_path)}) == pinned()


def test_another_version_is_locked_once_and_kept(tmp_path: Path) -> None:
    env = _fake_npm(tmp_path, FF_VERSION="5.0.2")
    first = declare("5.0.2", tmp_path / "cache", env)
    again = declare("5.0.2", tmp_path / "cache", env)
    assert first == again and first.version == "5.0.2"
    assert json.loads(first.package_json)["dependencies"] == {PACKAGE: "5.0.2"}
    assert json.loads(first.package_json)["main"] == "index.js"  # the shim's, otherwise
    assert (tmp_path / "runs").read_text().count("run") == 1


def test_a_version_npm_cannot_lock_leaves_nothing_behind(tmp_path: Path) -> None:
    env = _fake_npm(tmp_path, FF_VERSION="5.0.2", NPM_FAIL="1")
    with pytest.raises(BundleError, match="npm could not lock") as caught:
        declare("9.9.9", tmp_path / "cache", env)
    assert "No match for version" in caught.value.message
    assert not list((tmp_path / "cache").rglob("package-lock.json"))


def test_a_lock_of_another_version_is_refused(tmp_path: Path) -> None:
    env = _fake_npm(tmp_path, FF_VERSION="5.0.5")  # npm resolved something else
    with pytest.raises(BundleError, match="does not install"):
        declare("5.0.2", tmp_path / "cache", env)


def test_without_npm_another_version_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="no `npm` on PATH") as caught:
        declare("5.0.2", tmp_path, {"PATH": str(tmp_path)})
    assert "drop node_framework" in caught.value.message


def _node(tmp_path: Path, version: str) -> Framework:
    node = tmp_path / f"node-{version}"
    node.write_text(f"#!/bin/sh\necho v{version}\n")
    node.chmod(0o755)
    return Framework(tmp_path, str(node), pinned())


@pytest.mark.parametrize(
    ("local", "deployed", "gen", "on", "suggests"),
    [
        # The local Node.js is a runtime Cloud Functions still takes: deploying it is offered.
        ("22.3.0", "nodejs24", 2, date(2026, 12, 7), 'node_runtime = "nodejs22"'),
        # nodejs20 was decommissioned on 2026-10-30: never suggested after it.
        ("20.11.1", "nodejs22", 2, date(2026, 10, 29), None),  # deprecated: not offered either
        ("20.11.1", "nodejs24", 2, date(2026, 10, 30), None),
        ("20.11.1", "nodejs22", 1, date(2026, 12, 7), None),
        # nodejs24 is 2nd gen only.
        ("24.1.0", "nodejs22", 1, date(2026, 12, 7), None),
        ("24.1.0", "nodejs22", 2, date(2026, 12, 7), 'node_runtime = "nodejs24"'),
        # A Node.js the calendar does not know.
        ("23.0.0", "nodejs24", 2, date(2026, 12, 7), None),
        # nodejs22 decommissioned on 2027-10-31: suggested the day before, not on the day.
        ("22.3.0", "nodejs24", 2, date(2027, 4, 29), 'node_runtime = "nodejs22"'),
        ("22.3.0", "nodejs24", 2, date(2027, 10, 31), None),
    ],
)
def test_serve_warns_when_the_local_node_is_not_the_deploys(
    tmp_path: Path, local: str, deployed: str, gen: int, on: date, suggests: str | None
) -> None:
    env = {"PATH": "/usr/bin:/bin"}
    warning = runtime_mismatch(_node(tmp_path, local), deployed, gen, on, env)
    major = local.split(".")[0]
    assert f"the local Node.js is {major}, but the function is deployed on {deployed}" in warning
    assert f"Install Node.js {deployed.removeprefix('nodejs')}" in warning
    if suggests is None:
        assert "node_runtime" not in warning
    else:
        assert warning.endswith(f"or set {suggests} to deploy what you serve")


def test_serve_says_nothing_when_the_local_node_is_the_deploys(tmp_path: Path) -> None:
    env, on = {"PATH": "/usr/bin:/bin"}, date(2026, 12, 7)
    assert runtime_mismatch(_node(tmp_path, "22.3.0"), "nodejs22", 2, on, env) == ""
    missing = Framework(tmp_path, str(tmp_path / "none"), pinned())
    assert runtime_mismatch(missing, "nodejs22", 2, on, env) == ""


def test_the_real_node_is_read(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (CI installs it)")
    from pyfn_action.flows.nodeframework import node_major

    major = node_major(node, dict(os.environ))
    assert major is not None and major >= 18
    framework = Framework(tmp_path, node, pinned())
    assert runtime_mismatch(framework, f"nodejs{major}", 2, date(2026, 12, 7), {}) == ""
