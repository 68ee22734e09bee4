"""Private keys and credentials in files: the one scanner behind ``pyfn build`` and the
``pyfn-no-credentials`` hook.

What it finds, in a file's bytes:

- PEM private keys (``-----BEGIN … PRIVATE KEY-----`` followed by a key's body, not a
  mere mention of the marker, as libraries make), PGP private key blocks, SSH2 and
  PuTTY private keys, also in UTF-16 and UTF-32 text;
- DER private keys (PKCS#8, encrypted PKCS#8, PKCS#1 RSA, SEC1 EC), PKCS#12 stores (by
  their structure: a SEQUENCE holding version 3 and PKCS#7 data, whatever the file's
  name; and any file named ``.p12``/``.pfx``), Java key stores;
- Google credentials in JSON: service-account keys, ``authorized_user`` files (what
  ``gcloud auth application-default login`` writes: a refresh token and a client
  secret), any object holding both a refresh token and a client secret;
- the same inside base64 text (a ``.env`` line, wrapped or not), zip archives (wheels,
  jars, eggs; Deflate64 too), tarballs and gzip/bzip2/xz streams, nested.

Archives are read member by member: a member that cannot be read (encrypted, damaged,
compressed with a method Python lacks) is reported and the next one is read. The work
is bounded (:class:`Limits`); whatever a limit kept from being read is reported as
:class:`Unscanned`, never passed over in silence. Messages name the file, the member and
the kind of key, never the key.
"""

from __future__ import annotations

import base64
import binascii
import bz2
import io
import json
import lzma
import os
import re
import stat
import struct
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zipfile_deflate64  # its deflate64 module reads Deflate64; never used to write

from pyfn_action.sizes import format_size

ADVICE = (
    "use the function's runtime service account (Application Default Credentials) "
    "or Secret Manager instead of shipping a key"
)
MAX_FILE_BYTES = 50_000_000


@dataclass(frozen=True)
class Limits:
    """How much one file may cost to scan, all the archives inside it together."""

    file_bytes: int = MAX_FILE_BYTES  # a file, member or stream read at most
    depth: int = 8  # archives (and encodings) inside one another
    total_bytes: int = 250_000_000  # bytes unpacked (inflated, decoded) for one file
    members: int = 20_000  # archive members for one file
    encoded: int = 10_000  # base64 strings decoded for one file
    notes: int = 20  # lines about what could not be scanned, for one file (then a count)


LIMITS = Limits()


@dataclass(frozen=True)
class Finding:
    """A key or credentials, where they are (``path!member!member``), never their value."""

    where: str
    what: str
    lineno: int | None = None  # the line (of ``where``) where it begins, when known

    def line(self) -> str:
        return f"{self.where}: {self.what}; {ADVICE}."


@dataclass(frozen=True)
class Unscanned:
    """Something that could not be scanned, and why: it may hold a key nobody looked for."""

    where: str
    why: str

    def line(self) -> str:
        return f"{self.where}: not scanned for keys: {self.why}."


@dataclass(frozen=True)
class Scan:
    findings: tuple[Finding, ...] = ()
    unscanned: tuple[Unscanned, ...] = ()


# --- entry points ------------------------------------------------------------------------


def scan_file(path: Path, where: str | None = None, limits: Limits = LIMITS) -> Scan:
    """Scan a file (``where`` names it in messages; its path by default).

    Only a regular file is read: a FIFO, socket or device is passed over, without
    waiting for a writer. A file larger than ``limits.file_bytes`` is reported, not read.
    """
    shown = shown_name(str(path) if where is None else where)
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is passed over below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return Scan(unscanned=(Unscanned(shown, f"cannot be read ({_reason(exc)})"),))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return Scan()
        if info.st_size > limits.file_bytes:
            return Scan(unscanned=(Unscanned(shown, _too_large(info.st_size, limits)),))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limits.file_bytes + 1)
    except OSError as exc:
        return Scan(unscanned=(Unscanned(shown, f"cannot be read ({_reason(exc)})"),))
    finally:
        os.close(fd)
    if len(data) > limits.file_bytes:  # it grew while we read it
        return Scan(unscanned=(Unscanned(shown, _too_large(len(data), limits)),))
    return _Scanner(limits).run(shown, data)


def scan_content(where: str, data: bytes, limits: Limits = LIMITS) -> Scan:
    """Scan one file's content, given as bytes; ``where`` names it in messages."""
    shown = shown_name(where)
    if len(data) > limits.file_bytes:
        return Scan(unscanned=(Unscanned(shown, _too_large(len(data), limits)),))
    return _Scanner(limits).run(shown, data)


def scan_bytes(where: str, data: bytes) -> list[Finding]:
    """The keys in one file's content, archives included (what could not be read aside)."""
    return list(scan_content(where, data).findings)


def shown_name(name: str) -> str:
    """A name as it may be printed on one line: bytes that are not UTF-8 as ``\\xNN``,
    control and format characters (newlines, escapes, bidi overrides) escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return shown_name(str(exc) or type(exc).__name__)


def _too_large(size: int, limits: Limits) -> str:
    return f"{format_size(size)} is over the {format_size(limits.file_bytes)} scan limit"


# --- what a key looks like -------------------------------------------------------------

# A BEGIN line ends its line (a real newline, or an escaped one inside a string) and a
# key's body follows: base64 or an armor header, or the end of the file. A library that
# names the marker (in quotes, a comment, an example with "<key bytes>") is not a key.
_PEM = re.compile(
    rb"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----[ \t]*"
    rb"(?:(?:\r?\n|\\r\\n|\\n)(?:[ \t\r\n]|\\r|\\n)*(?:[A-Za-z0-9+/=]|\Z)"
    rb"|[ \t]+[A-Za-z0-9+/=]{40})"
)
_SSH2 = re.compile(rb"---- BEGIN SSH2 ENCRYPTED PRIVATE KEY ----")
_PUTTY = re.compile(rb"(?m)^PuTTY-User-Key-File-\d+: ")
_PEM_SPAN = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----.*?(?:-----END [A-Z0-9 ]+-----|\Z)", re.S)
# base64 on one line (a .env value), or wrapped in lines of one width (`base64`, MIME).
# Found in a translation of the text to a small alphabet, with bytes.find: a regular
# expression over character classes reads a site-packages tree thirty times slower.
_B64_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/_-"
_MASK = bytes(
    ord("A") if c in _B64_CHARS
    else ord("=") if c == ord("=")
    else ord("N") if c == ord("\n")
    else ord("S") if c in b" \t\r"
    else ord(".")
    for c in range(256)
)  # fmt: skip
_RUN_END = re.compile(rb"[^A]")
_NEXT_LINE = re.compile(rb"S*NS*")
_B64_MIN_LINE = 80  # a key's base64 on one line is longer
_B64_WRAP = (40, 128)  # the widths base64 is wrapped at (64 for PEM, 76 for MIME)
_JSON_MARKERS = ((b"service_account", b"private_key"), (b"refresh_token", b"client_secret"))
_TYPE = re.compile(rb"""["']type["']\s*:\s*["'](authorized_user|service_account)["']""")
_LOOSE_REFRESH = re.compile(rb"""["']refresh_token["']\s*:\s*["'][^"'\s]{10,}["']""")
_LOOSE_SECRET = re.compile(rb"""["']client_secret["']\s*:\s*["'][^"'\s]{6,}["']""")

_PKCS12_SUFFIXES = (".p12", ".pfx")
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


def _der_key(data: bytes) -> str | None:
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


def _json_credentials(document: Any) -> list[str]:
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
                found.append(f"Google service-account key for {_short(str(account))}")
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


def _short(text: str, limit: int = 120) -> str:
    """A value from the file, as a message may show it: one line, not too long."""
    text = shown_name(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _loose_credentials(view: bytes) -> list[str]:
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


def _views(data: bytes) -> list[bytes]:
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


def _is_text(view: bytes) -> bool:
    return b"\0" not in view[:8192]


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# --- containers ---------------------------------------------------------------------------

# What the standard library's archive and compression readers raise on hostile or
# damaged data (zipfile alone can raise IndexError, KeyError, struct.error, OverflowError
# and more): at these calls, and only there, any of it means "cannot be read".
_DAMAGED = Exception

ZIP_METHOD_NAMES = {  # what a zip member's method number means
    9: "Deflate64",
    12: "bzip2",
    14: "LZMA",
    93: "zstd",
    95: "xz",
    98: "PPMd",
    99: "AES",
}
_UNREADABLE_MAGIC = {
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive, which pyfn cannot open",
    b"Rar!\x1a\x07": "a RAR archive, which pyfn cannot open",
    b"\x28\xb5\x2f\xfd": "zstd-compressed, which pyfn cannot open",
}
_STREAM_SUFFIXES = {
    ".gz": "",
    ".bz2": "",
    ".xz": "",
    ".tgz": ".tar",
    ".tbz2": ".tar",
    ".txz": ".tar",
}


def _stream_kind(data: bytes) -> str | None:
    if data.startswith(b"\x1f\x8b"):
        return "gzip"
    if data.startswith(b"BZh") and data[4:10] == b"1AY&SY":
        return "bzip2"
    if data.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return None


def _is_tar(data: bytes) -> bool:
    if len(data) < 512:
        return False
    if data[257:262] == b"ustar":
        return True
    try:
        stored = int(data[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    header = data[:512]
    return data[0] != 0 and stored == sum(header[:148]) + 256 + sum(header[156:])


def _inner_name(where: str) -> str:
    """What a compressed file holds, named as gzip names it: ``key.json.gz`` → ``key.json``."""
    last = where.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    for suffix, replacement in _STREAM_SUFFIXES.items():
        if last.lower().endswith(suffix) and len(last) > len(suffix):
            return last[: -len(suffix)] + replacement
    return "(decompressed)"


@dataclass
class _Scanner:
    limits: Limits
    bytes_left: int = 0
    members_left: int = 0
    encoded_left: int = 0
    notes_left: int = 0
    notes_dropped: int = 0
    findings: list[Finding] = field(default_factory=list)
    unscanned: list[Unscanned] = field(default_factory=list)
    _stopped: set[str] = field(default_factory=set)

    def run(self, where: str, data: bytes) -> Scan:
        self.bytes_left = self.limits.total_bytes
        self.members_left = self.limits.members
        self.encoded_left = self.limits.encoded
        self.notes_left = self.limits.notes
        self._blob(where, data, 0)
        if self.notes_dropped:
            self.unscanned.append(
                Unscanned(where, f"and {self.notes_dropped} more that could not be scanned")
            )
        seen: set[tuple[str, str]] = set()
        findings = []
        for finding in self.findings:
            if (finding.where, finding.what) not in seen:
                seen.add((finding.where, finding.what))
                findings.append(finding)
        return Scan(tuple(findings), tuple(self.unscanned))

    # -- bookkeeping

    def _note(self, where: str, why: str) -> None:
        if self.notes_left <= 0:
            self.notes_dropped += 1
            return
        self.notes_left -= 1
        self.unscanned.append(Unscanned(where, why))

    def _stop(self, where: str, limit: str, why: str) -> None:
        """Say once per limit that it stopped the scan (never counted against ``notes``)."""
        if limit not in self._stopped:
            self._stopped.add(limit)
            self.unscanned.append(Unscanned(where, why))

    def _room(self) -> int:
        return max(0, min(self.limits.file_bytes, self.bytes_left))

    def _spend(self, where: str, count: int) -> bool:
        self.bytes_left -= count
        if self.bytes_left < 0:
            self._out_of_bytes(where)
            return False
        return True

    def _out_of_bytes(self, where: str) -> None:
        self._stop(
            where,
            "bytes",
            f"the scan stopped: more than {format_size(self.limits.total_bytes)} unpacked "
            "from one file (a zip bomb?)",
        )

    def _take_member(self, where: str) -> bool:
        self.members_left -= 1
        if self.members_left < 0:
            self._stop(
                where,
                "members",
                f"the scan stopped: more than {self.limits.members} archive members in one file",
            )
            return False
        return True

    # -- one blob of bytes: a file, a member, a decoded string

    def _blob(self, where: str, data: bytes, depth: int, *, via: str = "") -> None:
        here = len(self.findings)
        self._keys(where, data, depth, named=not via)
        if via:  # found inside an encoding of ``where``: say so, once
            for index in range(here, len(self.findings)):
                finding = self.findings[index]
                if finding.where == where and not finding.what.endswith(f" ({via})"):
                    self.findings[index] = Finding(where, f"{finding.what} ({via})", finding.lineno)
        self._containers(where, data, depth)

    def _keys(self, where: str, data: bytes, depth: int, *, named: bool) -> None:
        if named and where.lower().endswith(_PKCS12_SUFFIXES):  # a file's or member's name
            self.findings.append(Finding(where, "PKCS#12 key store"))
        der = _der_key(data)
        if der is not None:
            self.findings.append(Finding(where, der))
        for view in _views(data):
            self._text_keys(where, view, depth)

    def _text_keys(self, where: str, view: bytes, depth: int) -> None:
        match = _PEM.search(view)
        if match:
            label = _short(match.group(1).decode("ascii"))
            what = "PGP private key block" if label.startswith("PGP ") else f"PEM {label}"
            self.findings.append(Finding(where, what, _line_of(view, match.start())))
        for marker, pattern, what in (
            (b"---- BEGIN SSH2", _SSH2, "SSH2 private key"),
            (b"PuTTY-User-Key-File-", _PUTTY, "PuTTY private key"),
        ):
            other = pattern.search(view) if marker in view else None
            if other:
                self.findings.append(Finding(where, what, _line_of(view, other.start())))
        if any(one in view and two in view for one, two in _JSON_MARKERS):
            kinds = None
            try:
                kinds = _json_credentials(json.loads(view.decode("utf-8-sig")))
            except (UnicodeDecodeError, ValueError, RecursionError):
                kinds = _loose_credentials(view)
            self.findings += [Finding(where, kind) for kind in kinds]
        if _is_text(view) and depth < self.limits.depth:
            self._base64(where, view, depth)

    def _base64(self, where: str, view: bytes, depth: int) -> None:
        armored = [m.span() for m in _PEM_SPAN.finditer(view)] if b"-----BEGIN" in view else []
        for offset, run in _b64_runs(view):
            if any(start <= offset < end for start, end in armored):
                continue  # a PEM body: judged by its header
            decoded = _b64decode(run)
            if decoded is None or len(decoded) < 32:
                continue
            self.encoded_left -= 1
            if self.encoded_left < 0:
                self._stop(
                    where,
                    "encoded",
                    f"the scan stopped: more than {self.limits.encoded} base64 strings decoded "
                    "in one file",
                )
                return
            if self.bytes_left <= 0 or not self._spend(where, len(decoded)):
                return
            here = len(self.findings)
            self._blob(where, decoded, depth + 1, via="base64-encoded")
            if len(self.findings) > here:  # the line of the base64 text, counted only now
                line = _line_of(view, offset)
                self.findings[here:] = [
                    Finding(f.where, f.what, line) if f.where == where else f
                    for f in self.findings[here:]
                ]

    def _containers(self, where: str, data: bytes, depth: int) -> None:
        kind = None
        if data.startswith((b"PK\x03\x04", b"PK\x05\x06")) or b"PK\x05\x06" in data[-65_557:]:
            kind = "zip"
        elif _stream_kind(data) is not None:
            kind = "stream"
        elif _is_tar(data):
            kind = "tar"
        else:
            for magic, why in _UNREADABLE_MAGIC.items():
                if data.startswith(magic):
                    self._note(where, why)
            return
        if depth >= self.limits.depth:
            self._note(where, f"archives nested more than {self.limits.depth} archives deep")
            return
        if self.bytes_left <= 0 or self.members_left <= 0:
            return  # a limit stopped the scan, and said so
        if kind == "zip":
            self._zip(where, data, depth)
        elif kind == "stream":
            self._stream(where, data, depth)
        else:
            self._tar(where, data, depth)

    # -- zip

    def _zip(self, where: str, data: bytes, depth: int) -> None:
        declared = _zip_directory(data)
        if declared is not None:
            # Refused before zipfile reads a directory of millions of entries into memory.
            entries, directory_size = declared
            if entries > self.members_left or directory_size > 256 * self.members_left:
                self.members_left = 0
                self._take_member(where)
                return
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except _DAMAGED as exc:
            if data.startswith(b"PK\x03\x04"):
                self._note(
                    where,
                    f"not a readable zip archive ({_reason(exc)}); its members were read "
                    "from their local headers",
                )
                self._local_headers(where, data, depth)
            return
        with archive:
            for info in archive.infolist():
                if info.filename.endswith("/"):
                    continue
                name = f"{where}!{shown_name(info.filename)}"
                if not self._take_member(name):
                    return
                self._zip_member(data, info, name, depth)
                if self.bytes_left <= 0:
                    return

    def _zip_member(self, data: bytes, info: zipfile.ZipInfo, name: str, depth: int) -> None:
        if info.flag_bits & 0x41:  # traditional or strong encryption
            self._note(name, "encrypted, so it cannot be read")
            return
        if info.file_size > self.limits.file_bytes:
            self._note(name, _too_large(info.file_size, self.limits))
            return
        method = info.compress_type
        if method not in _ZIP_READERS:
            known = ZIP_METHOD_NAMES.get(method, f"method {method}")
            self._note(name, f"compressed with {known}, which cannot be read")
            return
        room = self._room()
        try:
            raw = _raw_member(data, info)
            content = _ZIP_READERS[method](raw, info, room + 1)
        except _DAMAGED as exc:
            self._note(name, f"cannot be read ({_reason(exc)})")
            return
        if len(content) > room:
            if room < self.limits.file_bytes:
                self._out_of_bytes(name)
            else:  # its declared size was smaller
                limit = format_size(self.limits.file_bytes)
                self._note(name, f"unpacks to more than the {limit} scan limit")
            return
        if not self._spend(name, len(content)):
            return
        if len(content) != info.file_size or zlib.crc32(content) != info.CRC:
            self._note(name, "damaged: its CRC-32 does not match (scanned as read)")
        self._blob(name, content, depth + 1)

    def _local_headers(self, where: str, data: bytes, depth: int) -> None:
        """Members of a zip whose central directory is gone, from their local headers."""
        pos = 0
        while True:
            pos = data.find(b"PK\x03\x04", pos)
            if pos < 0 or pos + 30 > len(data):
                return
            _, _, flags, method, _, _, _, size, _, name_len, extra_len = struct.unpack_from(
                "<4sHHHHHLLLHH", data, pos
            )
            raw_name = data[pos + 30 : pos + 30 + name_len]
            start = pos + 30 + name_len + extra_len
            pos = start if size in (0, 0xFFFFFFFF) else start + size
            text = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
            if text.endswith("/"):
                continue
            name = f"{where}!{shown_name(text)}"
            if not self._take_member(name):
                return
            if flags & 0x1:
                self._note(name, "encrypted, so it cannot be read")
                continue
            room = self._room()
            if method == zipfile.ZIP_STORED and size not in (0, 0xFFFFFFFF):
                content = data[start : start + min(size, room + 1)]
            elif method == zipfile.ZIP_DEFLATED:
                inflater = zlib.decompressobj(-15)
                end = len(data) if size in (0, 0xFFFFFFFF) else start + size
                try:
                    content = inflater.decompress(data[start:end], room + 1)
                except zlib.error as exc:
                    self._note(name, f"cannot be read ({_reason(exc)})")
                    continue
                if not self._spend(name, len(content)):
                    return
            else:
                method_name = ZIP_METHOD_NAMES.get(method, f"method {method}")
                self._note(name, f"cannot be read from a damaged archive ({method_name})")
                continue
            if len(content) > room:
                self._note(name, _too_large(len(content), self.limits))
                continue
            self._blob(name, content, depth + 1)

    # -- gzip, bzip2, xz; tar

    def _stream(self, where: str, data: bytes, depth: int) -> None:
        kind = _stream_kind(data)
        assert kind is not None
        room = self._room()
        content, problem = _decompress(kind, data, room)
        if not self._spend(where, len(content)):
            return
        if problem == "too large":
            if room < self.limits.file_bytes:
                self._out_of_bytes(where)
            else:
                limit = format_size(self.limits.file_bytes)
                self._note(
                    where,
                    f"unpacks to more than the {limit} scan limit: only its first {limit} "
                    "were scanned",
                )
        elif problem:
            self._note(
                where, f"damaged {kind} data ({problem}); what could be unpacked was scanned"
            )
        if _is_tar(content):
            self._tar(where, content, depth)
        else:
            self._blob(f"{where}!{_inner_name(where)}", content, depth + 1)

    def _tar(self, where: str, data: bytes, depth: int) -> None:
        try:
            archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115
        except _DAMAGED as exc:
            self._note(where, f"not a readable tar archive ({_reason(exc)})")
            return
        with archive:
            while True:
                try:
                    info = archive.next()
                except _DAMAGED as exc:
                    self._note(where, f"damaged tar archive ({_reason(exc)}); members after "
                                      "the damage were not scanned")  # fmt: skip
                    return
                if info is None:
                    return
                if not info.isreg():
                    continue
                name = f"{where}!{shown_name(info.name)}"
                if not self._take_member(name):
                    return
                if info.size > self.limits.file_bytes:
                    self._note(name, _too_large(info.size, self.limits))
                    continue
                try:
                    member = archive.extractfile(info)
                    content = member.read() if member is not None else b""
                except _DAMAGED as exc:
                    self._note(name, f"cannot be read ({_reason(exc)})")
                    continue
                self._blob(name, content, depth + 1)
                if self.bytes_left <= 0:
                    return


def _raw_member(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """A member's compressed bytes, found through its local header."""
    at = info.header_offset
    if at < 0 or data[at : at + 4] != b"PK\x03\x04":
        raise ValueError("its local header is missing")
    name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
    start = at + 30 + name_len + extra_len
    raw = data[start : start + info.compress_size]
    if len(raw) < info.compress_size:
        raise ValueError("the archive ends inside it")
    return raw


def _read_stored(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    return raw[:room]


def _read_deflated(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    return zlib.decompressobj(-15).decompress(raw, room)


def _read_bzip2(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    return bz2.BZ2Decompressor().decompress(raw, max_length=room)


def _read_lzma(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    # The zip form: version (2 bytes), size of the properties (2), properties, stream;
    # as the .lzma ("alone") form: properties (5), uncompressed size (8), stream.
    (props_len,) = struct.unpack_from("<H", raw, 2)
    props = raw[4 : 4 + props_len]
    if props_len != 5 or len(props) != 5:
        raise ValueError("unusual LZMA properties")
    alone = props + info.file_size.to_bytes(8, "little") + raw[4 + props_len :]
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    return decompressor.decompress(alone, max_length=room)


def _read_deflate64(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    # No output bound in its API: fed a little at a time, and stopped past ``room``.
    inflater = zipfile_deflate64.deflate64.Deflate64()
    out = bytearray()
    for at in range(0, len(raw), 4096):
        out += inflater.decompress(raw[at : at + 4096])
        if len(out) >= room or inflater.eof:
            break
    return bytes(out[:room])


_ZIP_READERS = {
    zipfile.ZIP_STORED: _read_stored,
    zipfile.ZIP_DEFLATED: _read_deflated,
    zipfile.ZIP_BZIP2: _read_bzip2,
    zipfile.ZIP_LZMA: _read_lzma,
    9: _read_deflate64,
}


def _zip_directory(data: bytes) -> tuple[int, int] | None:
    """(entries, central directory size) from the end record, before zipfile reads them."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    _, _, _, _, entries, size, _, _ = struct.unpack_from("<4sHHHHLLH", data, at)
    if entries == 0xFFFF or size == 0xFFFFFFFF:
        return None  # zip64: zipfile reads the real counts; the byte budget still holds
    if size and (size > at or data[at - size : at - size + 4] != b"PK\x01\x02"):
        return None  # not an end record: bytes that look like one
    return entries, size


def _b64_runs(view: bytes) -> Iterator[tuple[int, bytes]]:
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


def _b64decode(run: bytes) -> bytes | None:
    alphabet = b"-_" if (b"-" in run or b"_" in run) else b"+/"
    body = run.rstrip(b"=")
    body = body[: len(body) - len(body) % 4] if len(body) % 4 == 1 else body
    padded = body + b"=" * (-len(body) % 4)
    try:
        return base64.b64decode(padded, altchars=alphabet, validate=True)
    except (binascii.Error, ValueError):
        return None


def _decompress(kind: str, data: bytes, limit: int) -> tuple[bytes, str]:
    """At most ``limit`` + 1 bytes of a (multi-member) gzip, bzip2 or xz stream, and what
    went wrong: "" when nothing did, "too large", or the error."""
    out = bytearray()
    rest = data
    while rest:
        try:
            chunk, rest, finished = _one_stream(kind, rest, limit + 1 - len(out))
        except _DAMAGED as exc:
            return bytes(out), _reason(exc)
        out += chunk
        if len(out) > limit:
            return bytes(out[:limit]), "too large"
        if not finished:
            return bytes(out), "truncated"
        rest = rest.lstrip(b"\0")  # padding after the last member
        if rest and _stream_kind(rest) != kind:
            break  # trailing bytes that are not another member: ignored, as gzip does
    return bytes(out), ""


def _one_stream(kind: str, data: bytes, room: int) -> tuple[bytes, bytes, bool]:
    """(output up to ``room`` bytes, input after this stream, whether it ended)."""
    if kind == "gzip":
        inflater = zlib.decompressobj(31)
        chunk = inflater.decompress(data, room)
        return chunk, inflater.unused_data, inflater.eof
    decompressor: Any = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
    chunk = decompressor.decompress(data, max_length=room)
    return chunk, decompressor.unused_data, decompressor.eof


def iter_lines(scan: Scan) -> Iterator[str]:
    """The lines a hook prints: every key, then everything that could not be scanned."""
    for finding in scan.findings:
        yield finding.line()
    for unscanned in scan.unscanned:
        yield unscanned.line()
