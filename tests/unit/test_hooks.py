from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from pyfn_action.hooks import check_secrets, check_size

SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "demo",
    "private_key_id": "abc",
    "private_key": (
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n"
    ),
    "client_email": "deployer@demo.iam.gserviceaccount.com",
}


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# --- pyfn-oversized-files -------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "limit", "expected"),
    [(100, "1KB", []), (12_400_000, "10MB", ["{p} (12.4 MB) exceeds 10.0 MB."]),
     (2_000, "1KiB", ["{p} (2.0 KB) exceeds 1.0 KB."])],
)  # fmt: skip
def test_size_lines(tmp_path: Path, capsys, size: int, limit: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\0" * size)
    code = check_size.main([str(path), f"--max-size={limit}"])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [e.format(p=path) for e in expected]
    assert code == (1 if expected else 0)


def test_every_given_file_is_checked_not_only_added_ones(tmp_path: Path) -> None:
    small, big = tmp_path / "a.txt", tmp_path / "b.txt"
    small.write_text("x")
    big.write_bytes(b"y" * 5000)
    assert check_size.main([str(small), str(big), "--max-size=1KB"]) == 1


def test_archive_measured_uncompressed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _zip(tmp_path / "data.zip", {"zeros.bin": b"\0" * 3_000_000})
    assert path.stat().st_size < 1_000_000
    assert check_size.main([str(path), "--max-size=1MB"]) == 1
    out = capsys.readouterr().out
    assert f"{path} (3.0 MB uncompressed) exceeds 1.0 MB." in out


def test_deflate64_archive_is_flagged(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.txt").write_text("hello " * 1000)
    archive = tmp_path / "d64.zip"
    subprocess.run(["7z", "a", "-tzip", "-mm=Deflate64", str(archive), str(tmp_path / "x.txt")],
                   check=True, capture_output=True)  # fmt: skip
    assert check_size.main([str(archive)]) == 1
    out = capsys.readouterr().out
    assert "Deflate64, which Cloud Functions cannot extract" in out


def test_truncated_zip_is_reported(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = _zip(tmp_path / "good.zip", {"a": b"a" * 1000})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-30])
    assert check_size.main([str(cut)]) == 1
    assert "not a readable zip archive" in capsys.readouterr().out


def test_bad_max_size_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        check_size.main(["--max-size=lots"])
    assert info.value.code == 2


# --- pyfn-no-credentials ----------------------------------------------------------------


def test_service_account_key(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(SERVICE_ACCOUNT))
    assert check_secrets.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}: Google service-account key for deployer@demo.iam.gserviceaccount.com" in out
    assert "Secret Manager" in out and "runtime service account" in out
    assert "MIIEvQ" not in out  # the secret itself is never echoed


@pytest.mark.parametrize(
    ("name", "content", "what"),
    [
        ("id_rsa", b"-----BEGIN RSA PRIVATE KEY-----\nabc\n", "PEM RSA PRIVATE KEY"),
        ("key.pem", b"junk\n-----BEGIN OPENSSH PRIVATE KEY-----\n", "PEM OPENSSH PRIVATE KEY"),
        ("store.p12", b"\x30\x82\x01\x00binary", "PKCS#12 key store"),
    ],
)
def test_other_keys(tmp_path: Path, capsys, name: str, content: bytes, what: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(content)
    assert check_secrets.main([str(path)]) == 1
    assert f"{path}: {what};" in capsys.readouterr().out


def test_keys_inside_archives(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _zip(tmp_path / "bundle.zip", {"app/creds.json": json.dumps(SERVICE_ACCOUNT).encode()})
    assert check_secrets.main([str(path)]) == 1
    assert f"{path}!app/creds.json: Google service-account key" in capsys.readouterr().out


def test_keys_inside_deflate64_archives(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "sa.json"
    key.write_text(json.dumps(SERVICE_ACCOUNT))
    archive = tmp_path / "d64.zip"
    subprocess.run(["7z", "a", "-tzip", "-mm=Deflate64", str(archive), str(key)],
                   check=True, capture_output=True)  # fmt: skip
    key.unlink()
    assert check_secrets.main([str(archive)]) == 1
    assert "d64.zip!sa.json: Google service-account key" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [b"\xff\xfe\x00binary \x80\x81 not utf-8", b'{"type": "service_account"}',
     b"# a comment about -----BEGIN PUBLIC KEY-----\n", b""],
)  # fmt: skip
def test_clean_files_pass(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    assert check_secrets.main([str(path)]) == 0
