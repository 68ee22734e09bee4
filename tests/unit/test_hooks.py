from __future__ import annotations

import io
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from pyfn_action.hooks import no_credentials, oversized_files

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
    [
        (100, "1KB", []),
        (12_400_000, "10MB", ["{p} (12.4 MB) exceeds 10.0 MB."]),
        (2_000, "1KiB", ["{p} (2.0 KB) exceeds 1.0 KB."]),
    ],
)
def test_size_lines(tmp_path: Path, capsys, size: int, limit: str, expected: list[str]) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "blob.bin"
    path.write_bytes(b"\0" * size)
    code = oversized_files.main([str(path), f"--max-size={limit}"])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [e.format(p=path) for e in expected]
    assert code == (1 if expected else 0)


def test_every_given_file_is_checked_not_only_added_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tiny, at_limit, big = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    tiny.write_text("x")
    at_limit.write_bytes(b"z" * 1000)  # exactly 1 KB: not over it
    big.write_bytes(b"y" * 5000)
    for order in ([tiny, at_limit, big], [big, at_limit, tiny]):
        assert oversized_files.main([*map(str, order), "--max-size=1KB"]) == 1
        # one line, for the big file only: the exit code alone would not tell
        assert capsys.readouterr().out.splitlines() == [f"{big} (5.0 KB) exceeds 1.0 KB."]
    assert oversized_files.main([str(tiny), str(at_limit), "--max-size=1KB"]) == 0
    assert capsys.readouterr().out == ""


def test_archive_measured_uncompressed(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _zip(tmp_path / "data.zip", {"zeros.bin": b"\0" * 3_000_000})
    assert path.stat().st_size < 1_000_000
    assert oversized_files.main([str(path), "--max-size=1MB"]) == 1
    out = capsys.readouterr().out
    assert f"{path} (3.0 MB uncompressed) exceeds 1.0 MB." in out


def test_deflate64_archive_is_flagged(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "x.txt").write_text("hello " * 1000)
    archive = tmp_path / "d64.zip"
    subprocess.run(
        ["7z", "a", "-tzip", "-mm=Deflate64", str(archive), str(tmp_path / "x.txt")],
        check=True,
        capture_output=True,
    )
    assert oversized_files.main([str(archive)]) == 1
    out = capsys.readouterr().out
    assert "Deflate64, which Cloud Functions cannot extract" in out


def _zstd_member(path: Path, name: str) -> None:
    """Mark a Stored member as zstd (method 93) in its local header and the directory:
    what a zstd-writing zipper leaves; the hook reads the directory only."""
    _patch_member(path, name, method=93)


@pytest.mark.parametrize(
    ("method", "shown"),
    [(zipfile.ZIP_BZIP2, "bzip2"), (zipfile.ZIP_LZMA, "LZMA"), (93, "zstd")],
)
def test_bzip2_lzma_and_zstd_members_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], method: int, shown: str
) -> None:
    path = tmp_path / "vendor.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("deflated.txt", b"hello " * 100, zipfile.ZIP_DEFLATED)
        zf.writestr("stored.bin", b"raw", zipfile.ZIP_STORED)
        packed = zipfile.ZIP_STORED if method == 93 else method
        zf.writestr("data/packed.bin", b"packed " * 100, packed)
    if method == 93:
        _zstd_member(path, "data/packed.bin")
    with zipfile.ZipFile(path) as zf:
        assert [i.compress_type for i in zf.infolist()] == [
            zipfile.ZIP_DEFLATED,
            zipfile.ZIP_STORED,
            method,
        ]
    assert oversized_files.main([str(path), "--max-size=1MB"]) == 1
    # only that member, by name and method: Deflate and Stored are what the extractor takes
    assert capsys.readouterr().out.splitlines() == [
        f"{path}: data/packed.bin is compressed with {shown}, which Cloud Functions cannot "
        "extract; re-create the archive with Deflate."
    ]


def test_deflate_and_stored_members_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", b"hello " * 100, zipfile.ZIP_DEFLATED)
        zf.writestr("b.bin", b"raw", zipfile.ZIP_STORED)
    assert oversized_files.main([str(path)]) == 0
    assert capsys.readouterr().out == ""


def test_many_unsupported_members_three_lines_and_a_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "lib.jar"
    with zipfile.ZipFile(path, "w") as zf:
        for i, method in enumerate(
            [
                zipfile.ZIP_BZIP2,
                zipfile.ZIP_LZMA,
                zipfile.ZIP_STORED,
                zipfile.ZIP_BZIP2,
                zipfile.ZIP_LZMA,
            ]
        ):
            zf.writestr(f"m{i}", b"x" * 100, method)
    _zstd_member(path, "m2")
    assert oversized_files.main([str(path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" is compressed with ")[1].split(",")[0] for line in lines[:3]] == [
        "bzip2",
        "LZMA",
        "zstd",
    ]
    assert lines[3:] == [f"{path}: 2 more such members."]


def test_truncated_zip_is_reported(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = _zip(tmp_path / "good.zip", {"a": b"a" * 1000})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-30])
    assert oversized_files.main([str(cut)]) == 1
    assert "not a readable zip archive" in capsys.readouterr().out


def test_bad_max_size_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        oversized_files.main(["--max-size=lots"])
    assert info.value.code == 2


# --- pyfn-no-credentials ----------------------------------------------------------------


def test_service_account_key(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps(SERVICE_ACCOUNT))
    assert no_credentials.main([str(path)]) == 1
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
    assert no_credentials.main([str(path)]) == 1
    assert f"{path}: {what};" in capsys.readouterr().out


def test_pfx_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a real PKCS#12 store named .pfx: one line, nothing of the store shown
    real = tmp_path / "client.pfx"
    real.write_bytes(_pkcs12())
    assert no_credentials.main([str(real)]) == 1
    out = capsys.readouterr().out
    assert out.splitlines() == [f"{real}: PKCS#12 key store; {no_credentials.ADVICE}."]
    # "any .p12/.pfx": by its name alone, whatever is inside (here PEM-armoured text)
    named = tmp_path / "LEGACY.PFX"
    named.write_bytes(b"-----BEGIN PKCS12-----\nbm90IGRlcg==\n-----END PKCS12-----\n")
    assert no_credentials.main([str(named)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{named}: PKCS#12 key store; {no_credentials.ADVICE}."
    ]
    # inside an archive, by the member's name
    archive = _zip(tmp_path / "certs.zip", {"certs/client.pfx": b"opaque", "readme": b"hi"})
    assert no_credentials.main([str(archive)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{archive}!certs/client.pfx: PKCS#12 key store; {no_credentials.ADVICE}."
    ]


def test_keys_inside_archives(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _zip(tmp_path / "bundle.zip", {"app/creds.json": json.dumps(SERVICE_ACCOUNT).encode()})
    assert no_credentials.main([str(path)]) == 1
    assert f"{path}!app/creds.json: Google service-account key" in capsys.readouterr().out


def test_keys_inside_deflate64_archives(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    key = tmp_path / "sa.json"
    key.write_text(json.dumps(SERVICE_ACCOUNT))
    archive = tmp_path / "d64.zip"
    subprocess.run(
        ["7z", "a", "-tzip", "-mm=Deflate64", str(archive), str(key)],
        check=True,
        capture_output=True,
    )
    key.unlink()
    assert no_credentials.main([str(archive)]) == 1
    assert "d64.zip!sa.json: Google service-account key" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00binary \x80\x81 not utf-8",
        b'{"type": "service_account"}',
        b"# a comment about -----BEGIN PUBLIC KEY-----\n",
        b"",
    ],
)
def test_clean_files_pass(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    assert no_credentials.main([str(path)]) == 0


# --- pyfn-no-credentials: what the scanner missed, and archives it could not read -----

AUTHORIZED_USER = {  # what `gcloud auth application-default login` writes (values made up)
    "account": "",
    "client_id": "764086051850-6qr4p6gpi6hn506pt8ejuq83di341hur.apps.googleusercontent.com",
    "client_secret": "d-FL95Q19q7MQmFpd7hHD0Ty",
    "quota_project_id": "demo",
    "refresh_token": "1//0gdemoREFRESHtokenVALUEthatISnotREAL-abcdefghijklmnopqrstuvwxyz",
    "type": "authorized_user",
    "universe_domain": "googleapis.com",
}
PGP_KEY = (
    b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n"
    b"lQOYBGV3cm8BCADGp0bUMnLJ7tO3mFq8Y0w2Jq1mJ0XoIhQ2pQ6V7m0u3rQ4nY3f\n"
    b"=Ab12\n-----END PGP PRIVATE KEY BLOCK-----\n"
)
PEM_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgWf7Yc0aJ3lC0u9Ys\n"
    "-----END PRIVATE KEY-----\n"
)


def _secrets(capsys, *paths: Path) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = no_credentials.main([str(p) for p in paths])
    return code, capsys.readouterr().out


def _key_json() -> bytes:
    return json.dumps(SERVICE_ACCOUNT).encode()


def test_key_two_zips_deep(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    inner = _zip(tmp_path / "inner.zip", {"deep/creds.json": _key_json()})
    middle = _zip(tmp_path / "middle.zip", {"inner.zip": inner.read_bytes()})
    outer = _zip(tmp_path / "outer.zip", {"vendor/middle.zip": middle.read_bytes()})
    code, out = _secrets(capsys, outer)
    assert code == 1
    assert f"{outer}!vendor/middle.zip!inner.zip!deep/creds.json: Google service-account" in out


@pytest.mark.parametrize("mode", ["w:gz", "w:bz2", "w:xz", "w"])
def test_key_in_a_tarball(tmp_path: Path, capsys, mode: str) -> None:  # type: ignore[no-untyped-def]
    import io
    import tarfile

    path = tmp_path / "backup.tar.gz"
    with tarfile.open(path, mode) as tar:
        data = _key_json()
        info = tarfile.TarInfo("etc/sa.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}!etc/sa.json: Google service-account key" in out


def test_base64_service_account_in_dotenv(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import base64

    path = tmp_path / ".env"
    encoded = base64.b64encode(_key_json()).decode()
    path.write_text(f"DEBUG=1\nGOOGLE_CREDENTIALS={encoded}\nPORT=8080\n")
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}: Google service-account key for deployer@demo.iam.gserviceaccount.com" in out
    assert "base64" in out
    assert encoded[:40] not in out and "MIIEvQ" not in out


def test_base64_wrapped_over_lines(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import base64

    path = tmp_path / "creds.b64"
    path.write_bytes(base64.encodebytes(_key_json()))  # 76 columns, as `base64` writes it
    code, out = _secrets(capsys, path)
    assert code == 1
    assert "Google service-account key" in out


def _pkcs12() -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    key = ec.generate_private_key(ec.SECP256R1())
    return pkcs12.serialize_key_and_certificates(
        b"demo", key, None, None, BestAvailableEncryption(b"changeit")
    )


@pytest.mark.parametrize("name", ["keystore", "client.bin", "cert.crt"])
def test_pkcs12_without_its_suffix(tmp_path: Path, capsys, name: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(_pkcs12())
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}: PKCS#12 key store;" in out


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_pem(tmp_path: Path, capsys, encoding: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "key.pem"
    path.write_bytes(("# deploy key\n" + PEM_KEY).encode(encoding))
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}: PEM PRIVATE KEY;" in out


def test_pgp_private_key_block(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "signing.asc"
    path.write_bytes(PGP_KEY)
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}: PGP private key block;" in out
    assert "lQOYBG" not in out


def test_authorized_user_credentials(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "application_default_credentials.json"
    path.write_text(json.dumps(AUTHORIZED_USER, indent=2))
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}: Google user credentials" in out
    assert "refresh token" in out
    assert AUTHORIZED_USER["refresh_token"] not in out
    assert AUTHORIZED_USER["client_secret"] not in out


def _stored_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_bad_crc_hides_nothing_after_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _stored_zip(
        tmp_path / "data.zip",
        {"a.txt": b"first", "b.txt": b"hello world", "c/creds.json": _key_json()},
    )
    path.write_bytes(path.read_bytes().replace(b"hello world", b"HELLO WORLD"))
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}!c/creds.json: Google service-account key" in out
    assert f"{path}!b.txt:" in out and "CRC" in out


def test_encrypted_member_is_reported_not_a_traceback(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "b.txt").write_text("hidden")
    (tmp_path / "sa.json").write_bytes(_key_json())
    archive = tmp_path / "enc.zip"
    subprocess.run(
        ["7z", "a", "-tzip", "-pS3cret", str(archive), str(tmp_path / "b.txt")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["7z", "a", "-tzip", str(archive), str(tmp_path / "sa.json")],
        check=True,
        capture_output=True,
    )
    code, out = _secrets(capsys, archive)
    assert code == 1
    assert f"{archive}!b.txt: not scanned for keys: encrypted" in out
    assert f"{archive}!sa.json: Google service-account key" in out


def test_unsupported_method_hides_nothing_after_it(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _stored_zip(tmp_path / "z.zip", {"a.bin": b"zstd data", "sa.json": _key_json()})
    _patch_member(path, "a.bin", method=93)
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}!a.bin: not scanned for keys: compressed with zstd" in out
    assert f"{path}!sa.json: Google service-account key" in out


def test_truncated_zip_members_read_from_local_headers(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = _zip(tmp_path / "good.zip", {"a.txt": b"a" * 100, "sa.json": _key_json()})
    cut = tmp_path / "cut.zip"
    cut.write_bytes(good.read_bytes()[:-60])  # the central directory is gone
    code, out = _secrets(capsys, cut)
    assert code == 1
    assert f"{cut}: not scanned for keys: not a readable zip archive" in out
    assert f"{cut}!sa.json: Google service-account key" in out


def test_large_files_are_said_to_be_skipped(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "model.bin"
    with path.open("wb") as fh:
        fh.truncate(50_000_001)
    code, out = _secrets(capsys, path)
    assert code == 1
    assert f"{path}: not scanned for keys: 50.0 MB is over the 50.0 MB scan limit" in out


# The limits against zip bombs docs/hooks.md names, at their defaults (nothing here passes
# limits of its own): 8 archives deep, 250 MB unpacked, 20,000 members per file. Each is
# held at its edge: the limit itself passes, one more is said and fails the hook.


def _nested(path: Path, archives: int) -> Path:
    data, name = _key_json(), "sa.json"
    for level in range(archives):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr(name, data)
        data, name = buf.getvalue(), f"l{level}.zip"
    path.write_bytes(data)
    return path


def test_a_key_eight_archives_deep_is_found(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _nested(tmp_path / "deep.zip", 8)
    code, out = _secrets(capsys, path)
    assert code == 1
    inner = "!".join(f"l{level}.zip" for level in reversed(range(7)))
    assert f"{path}!{inner}!sa.json: Google service-account key" in out
    assert "not scanned" not in out


def test_archives_nine_deep_are_said_not_scanned(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _nested(tmp_path / "deep.zip", 9)
    code, out = _secrets(capsys, path)
    assert code == 1
    inner = "!".join(f"l{level}.zip" for level in reversed(range(8)))
    assert out.splitlines() == [
        f"{path}!{inner}: not scanned for keys: archives nested more than 8 archives deep."
    ]


def _zeros(path: Path, sizes: list[int], last: dict[str, bytes] | None = None) -> Path:
    """Members of zeros (each within the 50 MB a member may have), deflated to little."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for n, size in enumerate(sizes):
            zf.writestr(f"z{n}.bin", bytes(size))
        for name, data in (last or {}).items():
            zf.writestr(name, data)
    assert path.stat().st_size < 1_000_000
    return path


def test_250_mb_unpacked_from_one_file_are_scanned(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _zeros(tmp_path / "full.zip", [50_000_000] * 5)  # 250,000,000 bytes
    assert _secrets(capsys, path) == (0, "")


def test_a_member_after_250_mb_unpacked_is_said_not_scanned(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # One byte more than 250 MB, then a key: neither is read, and the hook says so (once).
    path = _zeros(tmp_path / "bomb.zip", [50_000_000] * 5 + [1], {"sa.json": _key_json()})
    code, out = _secrets(capsys, path)
    assert code == 1
    assert out.splitlines() == [
        f"{path}!z5.bin: not scanned for keys: the scan stopped: more than 250.0 MB unpacked "
        "from one file (a zip bomb?)."
    ]


def _members(path: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for n in range(count):
            zf.writestr(f"m{n}.txt", b"x")
    return path


def test_20000_members_are_scanned(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert _secrets(capsys, _members(tmp_path / "many.zip", 20_000)) == (0, "")


def test_20001_members_stop_the_scan(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _members(tmp_path / "many.zip", 20_001)
    code, out = _secrets(capsys, path)
    assert code == 1
    assert out.splitlines() == [
        f"{path}: not scanned for keys: the scan stopped: more than 20000 archive members in "
        "one file."
    ]


def test_an_archive_as_the_20000th_member_is_said_not_scanned(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("sa.json", _key_json())
    path = _members(tmp_path / "many.zip", 19_999)
    with zipfile.ZipFile(path, "a", zipfile.ZIP_STORED) as zf:
        zf.writestr("inner.zip", inner.getvalue())  # member 20,000; its own is the 20,001st
    code, out = _secrets(capsys, path)
    assert code == 1
    assert out.splitlines() == [
        f"{path}!inner.zip: not scanned for keys: the scan stopped: more than 20000 archive "
        "members in one file."
    ]


def test_hostile_member_names_stay_on_one_line(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = _zip(tmp_path / "n.zip", {"evil\nname\x1b[31m.json": _key_json()})
    code, out = _secrets(capsys, path)
    assert code == 1
    assert "\x1b" not in out
    assert all(line.startswith(f"{path}!evil\\nname") for line in out.splitlines())
    assert "evil\\nname\\x1b[31m.json: Google service-account key" in out


def test_undecodable_file_name(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import os

    path = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.pem"))
    path.write_text(PEM_KEY)
    code, out = _secrets(capsys, path)
    assert code == 1
    assert "caf\\xe9.pem: PEM PRIVATE KEY" in out


@pytest.mark.parametrize(
    "content",
    [
        # libraries name the markers without carrying a key (google-auth, cryptography)
        b'_PKCS1_MARKER = ("-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----")\n',
        b'_SK_START = b"-----BEGIN OPENSSH PRIVATE KEY-----"\n',
        b'# "-----BEGIN PRIVATE KEY-----...",\n',
        b'"private_key": "-----BEGIN EC PRIVATE KEY-----\\n<key bytes>\\n-----END EC PRIVATE KEY'
        b'-----\\n"',
        b"Example: -----BEGIN RSA PRIVATE KEY----- -----END RSA PRIVATE KEY----- @InputOnly",
        json.dumps({"type": "authorized_user", "client_id": "x"}).encode(),
        b"x = '" + b"A" * 400 + b"'\n",  # a long base64 run that decodes to nothing
        b"MIIB" + b"\0" * 100,
    ],
)
def test_markers_without_keys_pass(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "lib.py"
    path.write_bytes(content)
    assert no_credentials.main([str(path)]) == 0


def _patch_member(path: Path, name: str, *, method: int | None = None, flags: int = 0) -> None:
    """Rewrite a member's method or add flag bits, in its local header and the directory."""
    import struct

    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        start = zf.start_dir  # type: ignore[attr-defined]
    local = info.header_offset
    central = data.index(b"PK\x01\x02", start)
    while data[central + 46 : central + 46 + len(name)] != name.encode():
        central = data.index(b"PK\x01\x02", central + 4)
    for flag_at, method_at in ((local + 6, local + 8), (central + 8, central + 10)):
        old = struct.unpack_from("<H", data, flag_at)[0]
        struct.pack_into("<H", data, flag_at, old | flags)
        if method is not None:
            struct.pack_into("<H", data, method_at, method)
    path.write_bytes(bytes(data))
