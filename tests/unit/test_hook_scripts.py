"""The hooks as installed commands: each console script named as its hook's id, and
the scripts' earlier names (pyfn-check-size, -secrets, -wheels), kept as aliases, run
the same hooks with the same answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ALIASES = {
    "pyfn-check-size": "pyfn-oversized-files",
    "pyfn-check-secrets": "pyfn-no-credentials",
    "pyfn-check-wheels": "pyfn-native-wheels",
}
KEY = {
    "type": "service_account",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n",
    "client_email": "ci@demo.iam.gserviceaccount.com",
}


def _script(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[test]' again")
    return found


def _run(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYFN_"))}
    return subprocess.run(
        [_script(name), *args],
        env={**env, "PIP_CONFIG_FILE": os.devnull},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["pyfn-oversized-files", "pyfn-check-size"])
def test_oversized_files(tmp_path: Path, name: str) -> None:
    big = tmp_path / "model.bin"
    big.write_bytes(b"\0" * 2_000)
    result = _run(name, str(big), "--max-size=1KB")
    assert (result.returncode, result.stdout) == (1, f"{big} (2.0 KB) exceeds 1.0 KB.\n")
    assert _run(name, str(big), "--max-size=1MB").returncode == 0


@pytest.mark.parametrize("name", ["pyfn-no-credentials", "pyfn-check-secrets"])
def test_no_credentials(tmp_path: Path, name: str) -> None:
    key = tmp_path / "credentials.json"
    key.write_text(json.dumps(KEY))
    result = _run(name, str(key))
    assert result.returncode == 1, result.stderr
    assert f"{key}: Google service-account key for ci@demo.iam.gserviceaccount.com" in (
        result.stdout
    )
    assert "MIIEvQ" not in result.stdout


@pytest.mark.parametrize("name", ["pyfn-native-wheels", "pyfn-check-wheels"])
def test_native_wheels(tmp_path: Path, name: str) -> None:
    wheel = tmp_path / "vendored-1.0-cp38-abi3-manylinux_2_17_x86_64.whl"
    wheel.write_bytes(b"")  # judged by its name's tags
    cache = tmp_path / "cache"
    result = _run(name, str(wheel), "--no-index", "--cache-dir", str(cache))
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"{wheel}: tags cp38-abi3 (manylinux_x86_64): PyPy cannot load it\n"


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
def test_an_alias_is_the_hook_under_its_ids_name(alias: str, name: str) -> None:
    """Whichever name runs it, a hook's help and usage name it by its id."""
    by_alias, by_name = _run(alias, "--help"), _run(name, "--help")
    assert by_alias.returncode == by_name.returncode == 0
    assert by_alias.stdout == by_name.stdout
    assert by_name.stdout.startswith(f"usage: {name} ")
