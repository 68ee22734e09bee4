"""What a private key or credentials look like: PEM and other armored text, DER
structures, Google credentials in JSON, and base64 text that may hold any of them."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

from pyfn_action.secrets.names import short

# A BEGIN line ends its line (a real newline, or an escaped one inside a string) and a
# key's body follows: base64 or an armor header, or the end of the file. A library that
# names the marker (in quotes, a comment, an example with "<key bytes>") is not a key.
PEM = re.compile(
    rb"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[ \t]*"
    rb"(?:(?:\r?\n|\\r\\n|\\n)(?:[ \t\r\n]|\\r|\\n)*(?:[A-Za-z0-9+/=]|\Z)"
    rb"|[ \t]+[A-Za-z0-9+/=]{40})"
)
SSH2 = re.compile(rb"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----")
PUTTY = re.compile(rb"(?m)^PuTTY-User-Key-File-\d+: ")
PEM_SPAN = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S)
# base64 on one line (a .env value), or wrapped in lines of one width (`base64`, MIME).
# Found in a translation of the text to a small alphabet, with bytes.find: a regular
# expression over character classes reads a site-packages tree thirty times slower.
_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_MASK = bytes(
    ord("A")
    if c in _B64_CHARS
    else ord("=")
    if c == ord("=")
    else ord("N")
    if c == ord("\n")
    else ord("S")
    if c in b" \t\r"
    else ord(".")
    for c in range(256)
)
_RUN_END = re.compile(rb"[^A]")
_NEXT_LINE = re.compile(rb"S*NS*")
_B64_MIN_LINE = 80  # a key's base64 on one line is longer
_B64_WRAP = (40, 128)  # the widths base64 is wrapped at (64 for PEM, 76 for MIME)
JSON_MARKERS = ((b"service_account", b"private_key"), (b"refresh_token", b"client_secret"))
_TYPE = re.compile(rb"""["']type["']\s*:\s*["'](authorized_user|service_account)["']""")
_LOOSE_REFRESH = re.compile(rb"""["']refresh_token["']\s*:\s*["'][^"'\s]{10,}["']""")
_LOOSE_SECRET = re.compile(rb"""["']client_secret["']\s*:\s*["'][^"'\s]{6,}["']""")

PKCS12_SUFFIXES = (".p12", ".pfx")
_P7_DATA = bytes.fromhex("06092a864886f70d010701")
_P7_SIGNED = bytes.fromhex("06092a864886f70d010702")
_KEY_ALGORITHMS = {  # PKCS#8 AlgorithmIdentifier OIDs of private keys
    bytes.fromhex("2a864886f70d010101"),  # rsaEncryption
    bytes.fromhex("2a864886f70d01010a"),  # RSASSA-PSS
    bytes.fromhex("2a8648ce3d0201"),  # ecPublicKey
    bytes.fromhex("2a8648ce380401"),  # DSA
    bytes.fromhex("2a864886f70d010301"),  # dhKeyAgreement
    bytes.fromhex("2b6570"),  # Ed25519
    bytes.fromhex("2b6571"),  # Ed448
    bytes.fromhex("2b656e"),  # X25519
    bytes.fromhex("2b656f"),  # X448
}
_PBE_PREFIXES = (
    bytes.fromhex("2a864886f70d01050d"),  # PBES2
    bytes.fromhex("2a864886f70d010c01"),  # PKCS#12 PBE schemes
    bytes.fromhex("2a864886f70d0105"),  # PKCS#5 PBES1
)


def _der(data: bytes, pos: int) -> tuple[int, int | None, int] | None:
    """(tag, length or None when indefinite, where the content starts) of a DER header."""
    if pos + 2 > len(data):
        return None
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first < 0x80:
        return tag, first, pos
    if first == 0x80:
        return tag, None, pos
    count = first & 0x7F
    if count > 4 or pos + count > len(data):
        return None
    return tag, int.from_bytes(data[pos : pos + count], "big"), pos + count


def der_key(data: bytes) -> str | None:
    """What private key or key store a DER (or BER) structure at offset 0 is, if any."""
    if data[:4] in (b"\xfe\xed\xfe\xed", b"\xce\xce\xce\xce"):
        return "Java key store"
    outer = _der(data, 0)
    if outer is None or outer[0] != 0x30:
        return None
    pos = outer[2]
    first = _der(data, pos)
    if first is None:
        return None
    if first[0] == 0x02 and first[1] == 1 and first[2] < len(data):  # version INTEGER
        version = data[first[2]]
        after = first[2] + 1
        second = _der(data, after)
        if second is None:
            return None
        if version == 3 and second[0] == 0x30:
            oid = data[second[2] : second[2] + len(_P7_DATA)]
            if oid in (_P7_DATA, _P7_SIGNED):
                return "PKCS#12 key store"
        if version in (0, 1) and second[0] == 0x30:  # PrivateKeyInfo / OneAsymmetricKey
            algorithm = _der(data, second[2])
            if algorithm is not None and algorithm[0] == 0x06 and algorithm[1] is not None:
                oid = data[algorithm[2] : algorithm[2] + algorithm[1]]
                if oid in _KEY_ALGORITHMS:
                    return "DER private key (PKCS#8)"
        if version == 0 and second[0] == 0x02 and (second[1] or 0) >= 64:  # RSAPrivateKey
            exponent = _der(data, second[2] + (second[1] or 0))
            if exponent is not None and exponent[0] == 0x02 and (exponent[1] or 0) <= 8:
                return "DER RSA private key"
        if version == 1 and second[0] == 0x04 and 16 <= (second[1] or 0) <= 72:  # SEC1
            end = second[2] + (second[1] or 0)
            if end == len(data) or data[end : end + 1] in (b"\xa0", b"\xa1"):
                return "DER EC private key"
        return None
    if first[0] == 0x30:  # EncryptedPrivateKeyInfo: SEQUENCE { AlgorithmIdentifier, OCTET STRING }
        algorithm = _der(data, first[2])
        if algorithm is not None and algorithm[0] == 0x06 and algorithm[1] is not None:
            oid = data[algorithm[2] : algorithm[2] + algorithm[1]]
            if oid.startswith(_PBE_PREFIXES) and first[1] is not None:
                encrypted = _der(data, first[2] + first[1])
                if encrypted is not None and encrypted[0] == 0x04:
                    return "encrypted DER private key (PKCS#8)"
    return None


def json_credentials(document: Any) -> list[str]:
    """Credentials anywhere in a JSON document (nested ones too), by kind."""
    found: list[str] = []
    stack = [document]
    visited = 0
    while stack and visited < 100_000:
        node = stack.pop()
        visited += 1
        if isinstance(node, dict):
            kind = node.get("type")
            if kind in ("service_account", "gdch_service_account") and node.get("private_key"):
                account = node.get("client_email") or node.get("name") or "an unnamed account"
                found.append(f"Google service-account key for {short(str(account))}")
            elif _text(node.get("refresh_token")) and _text(node.get("client_secret")):
                if kind == "authorized_user":
                    found.append(
                        "Google user credentials (authorized_user: a refresh token and a "
                        "client secret)"
                    )
                else:
                    found.append("OAuth credentials (a refresh token and a client secret)")
            stack.extend(reversed(list(node.values())))
        elif isinstance(node, list):
            stack.extend(reversed(node))
    return found


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def loose_credentials(view: bytes) -> list[str]:
    """authorized_user credentials pasted into text that is not JSON (code, YAML)."""
    kind = _TYPE.search(view)
    if (
        kind
        and kind.group(1) == b"authorized_user"
        and _LOOSE_REFRESH.search(view)
        and _LOOSE_SECRET.search(view)
    ):
        return ["Google user credentials (authorized_user: a refresh token and a client secret)"]
    return []


def text_views(data: bytes) -> list[bytes]:
    """The data, and the data re-encoded as UTF-8 when it is UTF-16 or UTF-32 text."""
    views = [data]
    encoding = None
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        encoding = "utf-32"
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif len(data) >= 8 and b"\0" in data[:64]:
        sample = data[:4096]
        even, odd = sample[0::2], sample[1::2]
        if odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
            encoding = "utf-16-le"
        elif even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
            encoding = "utf-16-be"
    if encoding is not None:
        views.append(data.decode(encoding, "replace").encode("utf-8"))
    return views


def is_text(view: bytes) -> bool:
    """Whether ``view`` looks like text (no NUL byte near its start)."""
    return b"\0" not in view[:8192]


def line_of(data: bytes, offset: int) -> int:
    """The line number (from 1) of ``offset`` in ``data``."""
    return data.count(b"\n", 0, offset) + 1


def b64_runs(view: bytes) -> Iterator[tuple[int, bytes]]:
    """(offset, base64 text) of each run long enough to hold a key: one long line, or
    lines of one width and a shorter last one (yielded with and without it, in case it
    was the next line of the file rather than the end of the base64 text)."""
    masked = view.translate(_MASK)
    low, high = _B64_WRAP
    pos = 0
    while True:
        start = masked.find(b"A" * low, pos)
        if start < 0:
            return
        end = _run_end(masked, start)
        stop = end + _padding(masked, end)
        pos = stop
        if end - start >= _B64_MIN_LINE:
            yield start, view[start:stop]
        if end - start > high or stop != end:
            continue
        width = end - start
        lines = [view[start:end]]
        while True:
            gap = _NEXT_LINE.match(masked, end)
            if gap is None:
                break
            after = gap.end()
            after_end = _run_end(masked, after)
            after_stop = after_end + _padding(masked, after_end)
            if after_end - after == width and after_stop == after_end:
                lines.append(view[after:after_end])
                end = pos = after_end
                continue
            if after_end - after < width and after_stop > after:
                yield start, b"".join(lines) + view[after:after_stop]
            break
        if len(lines) > 1:
            yield start, b"".join(lines)


def _run_end(masked: bytes, start: int) -> int:
    match = _RUN_END.search(masked, start)
    return len(masked) if match is None else match.start()


def _padding(masked: bytes, at: int) -> int:
    return 2 if masked[at : at + 2] == b"==" else 1 if masked[at : at + 1] == b"=" else 0


def b64decode(run: bytes) -> bytes | None:
    """The bytes of a base64 run (standard or URL-safe alphabet), or None if it is not base64."""
    alphabet = b"-_" if (b"-" in run or b"_" in run) else b"+/"
    body = run.rstrip(b"=")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    padded = body + b"=" * (-len(body) % 4)
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None
