"""The hooks as users run them: the real pre-commit, `try-repo` on this checkout,
inside a temporary git repository. Installing the hooks uses tests/.hookhouse
and no package index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO
from support.wheels import make_wheel

pytestmark = pytest.mark.e2e

HOOKHOUSE = REPO / "tests" / ".hookhouse"


@pytest.fixture(scope="module")
def precommit_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not any(HOOKHOUSE.glob("*.whl")):
        pytest.fail("tests/.hookhouse is empty: run `python tests/prepare.py` (CI does)")
    exe = shutil.which("pre-commit", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("pre-commit is not installed: pip install -e '.[test]'")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "PYFN_"))}
    env.update(
        PRE_COMMIT_HOME=str(tmp_path_factory.mktemp("pre-commit-home")),
        PIP_NO_INDEX="1",
        PIP_FIND_LINKS=str(HOOKHOUSE),
        PIP_CONFIG_FILE=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.invalid",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.invalid",
        PRE_COMMIT_EXE=exe,
    )
    return env


def _repo(tmp_path: Path, files: dict[str, bytes]) -> Path:
    repo = tmp_path / "user-repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for name, data in files.items():
        path = repo / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    return repo


def _try_repo(repo: Path, hook: str, env: dict[str, str], *args: str) -> tuple[int, str]:
    result = subprocess.run(
        [env["PRE_COMMIT_EXE"], "try-repo", str(REPO), hook, "--all-files", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, result.stdout + result.stderr


def test_oversized_files(tmp_path: Path, precommit_env: dict[str, str]) -> None:
    # try-repo runs a hook with its default arguments: --max-size=10MB
    repo = _repo(tmp_path, {"small.txt": b"ok", "data/model.bin": b"\0" * 10_500_000})
    code, out = _try_repo(repo, "pyfn-oversized-files", precommit_env)
    assert code == 1, out
    assert "data/model.bin (10.5 MB) exceeds 10.0 MB." in out
    assert "small.txt" not in out
    subprocess.run(["git", "rm", "-q", "--cached", "data/model.bin"], cwd=repo, check=True)
    (repo / "data" / "model.bin").unlink()
    code, out = _try_repo(repo, "pyfn-oversized-files", precommit_env)
    assert code == 0, out
    assert "Passed" in out


def test_no_credentials(tmp_path: Path, precommit_env: dict[str, str]) -> None:
    key = {
        "type": "service_account",
        "private_key": "-----BEGIN PRIVATE KEY-----\nx",
        "client_email": "ci@demo.iam.gserviceaccount.com",
    }
    files = {"main.py": b"print('hi')\n", "credentials.json": json.dumps(key).encode()}
    repo = _repo(tmp_path, files)
    code, out = _try_repo(repo, "pyfn-no-credentials", precommit_env)
    assert code == 1, out
    assert "credentials.json: Google service-account key for ci@demo.iam.gserviceaccount.com" in out
    assert "-----BEGIN" not in out
    (repo / "credentials.json").unlink()
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    code, out = _try_repo(repo, "pyfn-no-credentials", precommit_env)
    assert code == 0, out


def test_native_wheels_on_vendored_binaries(tmp_path: Path, precommit_env: dict[str, str]) -> None:
    source = next(Path("/usr/lib/pypy3.9").glob("_sqlite3_cffi.pypy39-pp73-*.so"), None)
    if source is None:
        pytest.fail("Debian's pypy3 is not installed (CI installs it)")
    data = source.read_bytes()
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    wheel = make_wheel(wheels, "nextonly", "1.0", "pp311-pypy311_pp80-manylinux_2_28_x86_64")
    repo = _repo(
        tmp_path,
        {
            "vendor/_fast.cpython-311-x86_64-linux-gnu.so": data,
            "vendor/_next.pypy311-pp80-x86_64-linux-gnu.so": data,
            f"vendor/{wheel.name}": wheel.read_bytes(),
            "vendor/README.md": b"binaries",
        },
    )
    code, out = _try_repo(repo, "pyfn-native-wheels", precommit_env)
    assert code == 1, out
    assert "_fast.cpython-311-x86_64-linux-gnu.so: a CPython extension" in out
    pp80 = (
        "built for PyPy 8.0 (tag pp80), which pyfn cannot target yet: PyPy 8.0 needs glibc "
        "2.28 and a runtime pyfn does not bundle; use a pp73 wheel (PyPy 7.3) or the sdist"
    )
    assert f"vendor/_next.pypy311-pp80-x86_64-linux-gnu.so: {pp80}" in out
    assert f"vendor/{wheel.name}: {pp80}" in out
    subprocess.run(["git", "rm", "-q", "-r", "--cached", "vendor"], cwd=repo, check=True)
    shutil.rmtree(repo / "vendor")
    (repo / "vendor").mkdir()
    (repo / "vendor" / "_ok.pypy311-pp73-x86_64-linux-gnu.so").write_bytes(data)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    code, out = _try_repo(repo, "pyfn-native-wheels", precommit_env)
    assert code == 0, out


def test_no_credentials_inside_archives_and_encodings(
    tmp_path: Path, precommit_env: dict[str, str]
) -> None:
    import base64
    import io
    import zipfile

    key = json.dumps(
        {
            "type": "service_account",
            "private_key": "-----BEGIN PRIVATE KEY-----\nx",
            "client_email": "ci@demo.iam.gserviceaccount.com",
        }
    ).encode()

    def zipped(members: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return buf.getvalue()

    encrypted = tmp_path / "enc.zip"
    (tmp_path / "b.txt").write_text("hidden")
    subprocess.run(
        ["7z", "a", "-tzip", "-pS3cret", str(encrypted), str(tmp_path / "b.txt")],
        check=True,
        capture_output=True,
    )
    files = {
        "main.py": b"print('hi')\n",
        "vendor/libs.zip": zipped({"inner.zip": zipped({"sa.json": key})}),
        ".env": b"CREDS=" + base64.b64encode(key) + b"\n",
        "keys/deploy.pem": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n".encode("utf-16"),
        "data/enc.zip": encrypted.read_bytes(),
    }
    repo = _repo(tmp_path, files)
    code, out = _try_repo(repo, "pyfn-no-credentials", precommit_env)
    assert code == 1, out
    assert "Traceback" not in out
    assert "vendor/libs.zip!inner.zip!sa.json: Google service-account key" in out
    assert ".env: Google service-account key for ci@demo.iam.gserviceaccount.com (base64" in out
    assert "keys/deploy.pem: PEM RSA PRIVATE KEY;" in out
    assert "data/enc.zip!b.txt: not scanned for keys: encrypted" in out
    assert "main.py" not in out
