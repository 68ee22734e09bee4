"""A build of examples/hello is byte-for-byte the recorded one.

Refactoring must not change what a bundle holds: the same source, requirements and
runtime give the same bundle.zip, whose SHA-256 is recorded in
``recorded/hello.json`` next to the runtime archive it was built from (Debian's
pypy3, packed into the official layout). A change that alters bundles on purpose
(the shim, the manifest, the zip rules) re-records it, and says so in its commit.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, hermetic_env, pyfn

from pyfn_action.runtime.pack import PackResult

pytestmark = pytest.mark.e2e

RECORD = Path(__file__).parent / "recorded" / "hello.json"


def test_hello_bundle_is_byte_identical_to_the_recorded_build(
    tmp_path: Path, pypy_archive: PackResult, index_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = json.loads(RECORD.read_text())
    # A cold cache, so every step (extraction, install, bytecode) runs here; and the
    # archive named by a relative path, as the manifest records where it came from.
    monkeypatch.chdir(tmp_path)
    shutil.copy(pypy_archive.path, tmp_path / pypy_archive.path.name)
    out = tmp_path / "out"
    result = pyfn(
        [
            "build",
            str(REPO / "examples" / "hello"),
            "--out",
            str(out),
            "--pypy-archive",
            pypy_archive.path.name,
            "--pypy-sha256",
            pypy_archive.sha256,
            "--index-url",
            index_url,
        ],
        hermetic_env(tmp_path / "cache"),
    )
    assert result.code == 0, result.stderr
    built = {
        "runtime_archive_sha256": pypy_archive.sha256,
        "bundle_sha256": hashlib.sha256((out / "bundle.zip").read_bytes()).hexdigest(),
    }
    # The runtime is Debian's pypy3 packed by the tests: if the distribution ships a
    # new build, every bundle changes with it, and the record must be made again.
    assert built["runtime_archive_sha256"] == recorded["runtime_archive_sha256"], (
        f"the packed test runtime changed (Debian's pypy3 was updated): record again "
        f"with the values {json.dumps(built)} in {RECORD}"
    )
    assert built["bundle_sha256"] == recorded["bundle_sha256"], (
        f"examples/hello no longer builds the recorded bundle: {json.dumps(built)}"
    )
