"""report.manifest: pyfn/manifest.json, written once with stable bytes and read back checked."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from pyfn_action.report.manifest import (
    PATH,
    FunctionInfo,
    Manifest,
    ManifestError,
    read_bundle,
    read_tree,
)


def _manifest(timeout: int | None = None) -> Manifest:
    return Manifest(
        pyfn_version="1.2.3",
        function=FunctionInfo("hello", "handler", "http", None, None, 2, timeout),
        runtime={"python_version": "3.11", "sha256": "ab" * 32},
        packages=({"name": "flask", "version": "3.1.0", "wheel": "flask-3.1.0-py3-none-any.whl"},),
    )


def test_bytes_are_sorted_json_with_a_final_newline() -> None:
    data = _manifest().to_bytes()
    assert data.endswith(b"}\n")
    parsed = json.loads(data)
    assert list(parsed) == sorted(parsed)
    assert list(parsed["function"]) == sorted(parsed["function"])
    assert "timeout" not in parsed["function"]  # absent, not null, when the shim has none
    assert json.loads(_manifest(timeout=60).to_bytes())["function"]["timeout"] == 60
    assert _manifest().to_bytes() == _manifest().to_bytes()


@pytest.mark.parametrize("timeout", [None, 540])
def test_round_trip(timeout: int | None) -> None:
    manifest = _manifest(timeout)
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest


def test_the_deployed_concurrency_is_recorded() -> None:
    function = replace(_manifest().function, concurrency=80)
    manifest = replace(_manifest(), function=function)
    assert json.loads(manifest.to_bytes())["function"]["concurrency"] == 80
    assert Manifest.from_bytes(manifest.to_bytes()) == manifest
    assert "concurrency" not in json.loads(_manifest().to_bytes())["function"]


def test_the_declared_node_framework_is_recorded() -> None:
    declared = replace(_manifest(), node_framework="npm:@corp/functions-framework@5.0.5")
    assert json.loads(declared.to_bytes())["node_framework"] == declared.node_framework
    assert Manifest.from_bytes(declared.to_bytes()) == declared
    assert "node_framework" not in json.loads(_manifest().to_bytes())  # an older bundle's
    assert Manifest.from_bytes(_manifest().to_bytes()).node_framework is None


def test_read_from_a_bundle_and_from_a_tree(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr(PATH, _manifest().to_bytes())
    assert read_bundle(bundle).function.name == "hello"
    (tmp_path / "tree" / "pyfn").mkdir(parents=True)
    (tmp_path / "tree" / PATH).write_bytes(_manifest().to_bytes())
    assert read_tree(tmp_path / "tree").function.entry_point == "handler"


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"pyfn_version": "1", "runtime": {}}',
        b'{"pyfn_version": "1", "runtime": {}, "function": {"name": "", "entry_point": "h",'
        b' "signature": "http", "gen": 2}}',
        b'{"pyfn_version": "1", "runtime": {}, "function": {"name": "f", "entry_point": "h",'
        b' "signature": "http", "gen": "two"}}',
        b'{"pyfn_version": "1", "runtime": {}, "function": {"name": "f", "entry_point": "h",'
        b' "signature": "http", "gen": 2}, "node_framework": 5}',
    ],
)
def test_incomplete_manifests_are_refused(data: bytes) -> None:
    with pytest.raises(ManifestError, match="not a complete manifest"):
        Manifest.from_bytes(data)


def test_a_zip_without_a_manifest_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "other.zip"
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("main.py", "")
    with pytest.raises(ManifestError, match=r"no pyfn/manifest\.json"):
        read_bundle(bundle)
    with pytest.raises(ManifestError, match=r"no pyfn/manifest\.json"):
        read_tree(tmp_path)
