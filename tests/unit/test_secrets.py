"""The credentials scanner in the core (pyfn_action.secrets): what it finds, inside what,
within which limits, and what `pyfn build` does with it."""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from pyfn_action.bundle.entry import Entry
from pyfn_action.secrets import Limits, Scan, scan_content, scan_file

SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "demo",
    "private_key_id": "abc",
    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n"
    "-----END PRIVATE KEY-----\n",
    "client_email": "deployer@demo.iam.gserviceaccount.com",
}
KEY = json.dumps(SERVICE_ACCOUNT).encode()
REFRESH = "1//0gREFRESHtokenVALUEthatISnotREALatALL-abcdefghijklmnop"
SECRET = "GOCSPX-notARealClientSecret123"  # noqa: S105


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _whats(scan: Scan) -> list[tuple[str, str]]:
    return [(f.where, f.what) for f in scan.findings]


def _notes(scan: Scan) -> list[str]:
    return [u.line() for u in scan.unscanned]


# --- what is found --------------------------------------------------------------------


def test_clean_content_has_nothing() -> None:
    scan = scan_content("app/main.py", b"def hello(request):\n    return 'hi'\n")
    assert scan.findings == () and scan.unscanned == ()


def test_pem_line_number_and_no_secret_in_messages() -> None:
    data = b"a\nb\n-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIIrYSSNQFaA2Hwf1duRSxKtLYX5CB04fSeQ6\n"
    scan = scan_content("app/k.pem", data)
    assert [(f.what, f.lineno) for f in scan.findings] == [("PEM EC PRIVATE KEY", 3)]
    assert "MHcCAQ" not in scan.findings[0].line()


def test_gzip_of_a_key_file() -> None:
    scan = scan_content("app/sa.json.gz", gzip.compress(KEY))
    assert (
        "app/sa.json.gz!sa.json",
        "Google service-account key for deployer@demo.iam.gserviceaccount.com",
    ) in _whats(scan)


def test_zip_in_a_tarball_in_a_zip() -> None:
    inner = _zip({"k/sa.json": KEY})
    data = _zip({"dist/backup.tgz": _tar({"inner.whl": inner})})
    scan = scan_content("app/x.zip", data)
    assert any(w == "app/x.zip!dist/backup.tgz!inner.whl!k/sa.json" for w, _ in _whats(scan))


def _der_keys() -> dict[str, bytes]:
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    key = ec.generate_private_key(ec.SECP256R1())
    return {
        "pkcs8": key.private_bytes(s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption()),
        "sec1": key.private_bytes(
            s.Encoding.DER, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()
        ),
        "encrypted": key.private_bytes(
            s.Encoding.DER, s.PrivateFormat.PKCS8, s.BestAvailableEncryption(b"pw")
        ),
        "ed25519": ed25519.Ed25519PrivateKey.generate().private_bytes(
            s.Encoding.DER, s.PrivateFormat.PKCS8, s.NoEncryption()
        ),
    }


@pytest.mark.parametrize("kind", ["pkcs8", "sec1", "encrypted", "ed25519"])
def test_der_private_keys(kind: str) -> None:
    scan = scan_content("app/key.der", _der_keys()[kind])
    assert len(scan.findings) == 1
    assert "private key" in scan.findings[0].what


def test_der_public_key_and_certificate_pass() -> None:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "demo")])
    now = datetime.datetime(2024, 1, 1)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    for data in (public, cert.public_bytes(s.Encoding.DER), cert.public_bytes(s.Encoding.PEM)):
        assert scan_content("app/cert", data).findings == ()


def test_base64_pkcs12_in_an_environment_file() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import NoEncryption, pkcs12

    p12 = pkcs12.serialize_key_and_certificates(
        b"k", ec.generate_private_key(ec.SECP256R1()), None, None, NoEncryption()
    )
    data = b"# ci\nSIGNING_P12=" + base64.b64encode(p12) + b"\n"
    scan = scan_content("app/.env", data)
    assert [(f.what, f.lineno) for f in scan.findings] == [
        ("PKCS#12 key store (base64-encoded)", 2)
    ]


def test_java_key_store() -> None:
    data = b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x01" + b"\x00" * 64
    assert [f.what for f in scan_content("app/keystore", data).findings] == ["Java key store"]


def test_impersonated_credentials_carry_a_user_refresh_token() -> None:
    doc = {
        "type": "impersonated_service_account",
        "service_account_impersonation_url": "https://iamcredentials.googleapis.com/x",
        "source_credentials": {
            "type": "authorized_user",
            "client_id": "c",
            "client_secret": SECRET,
            "refresh_token": REFRESH,
        },
    }
    scan = scan_content("app/adc.json", json.dumps(doc).encode("utf-8-sig"))
    assert len(scan.findings) == 1
    assert scan.findings[0].what.startswith("Google user credentials")
    assert REFRESH not in scan.findings[0].line() and SECRET not in scan.findings[0].line()


def test_authorized_user_pasted_into_code() -> None:
    data = (
        "CREDS = {\n"
        f'    "type": "authorized_user", "client_id": "c", "client_secret": "{SECRET}",\n'
        f'    "refresh_token": "{REFRESH}",\n'
        "}\n"
    ).encode()
    scan = scan_content("app/settings.py", data)
    assert [f.what.split(" (")[0] for f in scan.findings] == ["Google user credentials"]


# --- limits: depth, bytes unpacked, members -------------------------------------------


def test_nesting_depth_is_bounded_and_said() -> None:
    data = KEY
    name = "sa.json"
    for level in range(12):
        data = _zip({name: data})
        name = f"l{level}.zip"
    scan = scan_content("app/deep.zip", data, Limits(depth=4))
    assert scan.findings == ()
    assert any("nested more than 4 archives deep" in n for n in _notes(scan))


def test_zip_bomb_stops_at_the_byte_budget() -> None:
    zeros = b"\0" * 2_000_000
    data = _zip({f"z{i}.bin": zeros for i in range(10)} | {"sa.json": KEY})
    assert len(data) < 100_000
    scan = scan_content("app/bomb.zip", data, Limits(total_bytes=5_000_000))
    assert any("more than 5.0 MB unpacked" in n for n in _notes(scan))
    assert len(scan.unscanned) == 1  # said once, not once per member


def test_a_key_in_a_tarball_after_the_byte_budget_is_spent_is_still_found() -> None:
    """Spent to the last byte is not over: what needs no unpacking is still read."""
    data = _tar({"a.gz": gzip.compress(b"\0" * 1_000_000), "sa.json": KEY}, mode="w")
    scan = scan_content("app/t.tar", data, Limits(total_bytes=1_000_000))
    assert ("app/t.tar!sa.json", "PEM PRIVATE KEY") in _whats(scan)  # the member was read
    assert scan.unscanned == ()


def test_base64_after_the_byte_budget_is_spent_is_said_not_scanned() -> None:
    first = base64.b64encode(b"x" * 120)  # 160 columns, decoding to the whole budget
    data = b"A=" + first + b";\nB=" + base64.b64encode(KEY) + b";\n"
    scan = scan_content("app/data.txt", data, Limits(total_bytes=120))
    assert scan.findings == ()
    assert _notes(scan) == [
        "app/data.txt: not scanned for keys: the scan stopped: more than 120 B unpacked from "
        "one file (a zip bomb?)."
    ]


def test_gzip_bomb_scans_a_prefix_and_says_so() -> None:
    data = gzip.compress(b"\0" * 3_000_000)
    scan = scan_content("app/z.gz", data, Limits(file_bytes=1_000_000))
    assert any("unpacks to more than the 1.0 MB scan limit" in n for n in _notes(scan))


def test_member_count_is_bounded() -> None:
    data = _zip({f"m{i}.txt": b"x" for i in range(50)})
    scan = scan_content("app/many.zip", data, Limits(members=10))
    assert any("more than 10 archive members" in n for n in _notes(scan))


def test_declared_huge_member_is_not_unpacked() -> None:
    data = _zip({"big.bin": b"\0" * 2_000_000})
    scan = scan_content("app/big.zip", data, Limits(file_bytes=1_000_000))
    assert _notes(scan) == [
        "app/big.zip!big.bin: not scanned for keys: 2.0 MB is over the 1.0 MB scan limit."
    ]


def test_damaged_gzip_is_reported() -> None:
    data = gzip.compress(KEY)[:-20] + b"garbage!" * 3
    scan = scan_content("app/x.gz", data)
    assert scan.unscanned


# --- files that are not ordinary --------------------------------------------------------


def test_fifo_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert scan_file(fifo) == Scan()  # returns at once: nothing to read, nothing waits


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "k.pem"
    path.write_text("x")
    real_open = os.open

    def deny(file, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", deny)
    assert [u.line() for u in scan_file(path).unscanned] == [
        f"{path}: not scanned for keys: cannot be read (Permission denied)."
    ]


# --- the build: one scanner, archives included -----------------------------------------


def _entries(tmp_path: Path, files: dict[str, bytes]) -> list[Entry]:
    entries = []
    for name, data in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        entries.append(Entry(f"app/{name}", path, None, False, "app", "app"))
    return entries


def test_build_reports_what_it_could_not_scan(tmp_path: Path) -> None:
    from pyfn_action.bundle.checks import Locator, refuse_credentials

    data = _zip({"a.txt": b"a", "b.txt": b"b"})
    data = data.replace(b"PK\x03\x04", b"PK\x03\x04", 1)
    raw = bytearray(data)
    raw[6] |= 1  # the first member claims to be encrypted (local header) ...
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 1  # ... and in the central directory
    entries = _entries(tmp_path, {"data.zip": bytes(raw)})
    findings = refuse_credentials(entries, Locator(tmp_path, None, entries), allowed=False)
    assert [f.message for f in findings] == [
        "app/data.zip!a.txt: not scanned for keys: encrypted, so it cannot be read."
    ]
    assert findings[0].kind == "credentials" and findings[0].file == tmp_path / "data.zip"


def test_nested_bomb_reports_a_bounded_number_of_lines() -> None:
    leaves = _zip({f"leaf{i}.bin": b"\0" * 2_000_000 for i in range(16)})
    middle = _zip({f"m{i}.zip": leaves for i in range(16)})
    data = _zip({f"t{i}.zip": middle for i in range(16)})  # 4096 leaves over the limit
    scan = scan_content("app/42.zip", data, Limits(file_bytes=1_000_000))
    assert len(scan.unscanned) <= 21
    assert scan.unscanned[-1].line().endswith("more that could not be scanned.")


def test_many_base64_strings_are_bounded() -> None:
    run = base64.b64encode(b"x" * 120)  # 160 columns: not a wrapped block, 200 strings
    data = b"\n".join([run] * 200)
    scan = scan_content("app/data.txt", data, Limits(encoded=50))
    assert [u.line() for u in scan.unscanned] == [
        "app/data.txt: not scanned for keys: the scan stopped: more than 50 base64 strings "
        "decoded in one file."
    ]


def test_pkcs12_by_name_inside_an_archive() -> None:
    scan = scan_content("app/certs.zip", _zip({"client.pfx": b"\x30\x82\x01\x00opaque"}))
    assert _whats(scan) == [("app/certs.zip!client.pfx", "PKCS#12 key store")]


def test_unpadded_urlsafe_base64() -> None:
    data = b"KEY=" + base64.urlsafe_b64encode(KEY).rstrip(b"=") + b"\n"
    assert (
        "Google service-account key for deployer@demo.iam.gserviceaccount.com (base64-encoded)"
        in [f.what for f in scan_content("app/.env", data).findings]
    )


@pytest.mark.parametrize(
    "data", [b"\x30\x03\x02\x01", b"\x30\x80\x02\x01\x03", b"\x30\x82\xff\xff\x02\x01\x00\x30"]
)
def test_truncated_der_is_not_a_crash(data: bytes) -> None:
    assert scan_content("app/x.der", data).findings == ()
