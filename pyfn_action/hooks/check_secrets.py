"""pyfn-no-credentials: keys that must never ship inside a function.

Finds Google service-account key files (JSON with ``"type": "service_account"``
and a ``private_key``), PEM private keys, PKCS#12 key stores (``.p12``, ``.pfx``),
and the same inside zip archives. A finding says where and what, never the
secret itself, and what to use instead.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .archives import ArchiveError, is_zip, members

MAX_SCANNED_BYTES = 50_000_000
_PEM = re.compile(rb"-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY)-----")
_PKCS12_SUFFIXES = (".p12", ".pfx")
ADVICE = (
    "use the function's runtime service account (Application Default Credentials) "
    "or Secret Manager instead of shipping a key"
)


@dataclass(frozen=True)
class Finding:
    where: str  # path, or path!member for an archive member
    what: str
    lineno: int | None = None  # where a PEM key begins

    def line(self) -> str:
        return f"{self.where}: {self.what}; {ADVICE}."


def scan_bytes(where: str, data: bytes) -> list[Finding]:
    """Findings in one file's content (never echoing the key)."""
    findings = []
    name = where.lower()
    if name.endswith(_PKCS12_SUFFIXES):
        findings.append(Finding(where, "PKCS#12 key store"))
    match = _PEM.search(data)
    if match:
        lineno = data.count(b"\n", 0, match.start()) + 1
        findings.append(Finding(where, f"PEM {match.group(1).decode()}", lineno))
    if b"service_account" in data and b"private_key" in data:
        account = _service_account(data)
        if account is not None:
            findings.append(Finding(where, f"Google service-account key for {account}"))
    return findings


def _service_account(data: bytes) -> str | None:
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if (
        isinstance(document, dict)
        and document.get("type") == "service_account"
        and document.get("private_key")
    ):
        return str(document.get("client_email") or "an unnamed account")
    return None


def scan_path(path: Path) -> list[Finding]:
    """Findings in a file, and in its members when it is a zip archive."""
    if path.stat().st_size > MAX_SCANNED_BYTES:
        return []
    data = path.read_bytes()
    findings = scan_bytes(str(path), data)
    if is_zip(path):
        try:
            for member, content in members(path, MAX_SCANNED_BYTES):
                findings += scan_bytes(f"{path}!{member}", content)
        except ArchiveError:
            pass  # not a readable archive: its bytes were scanned above
    return findings


def scan_files(paths: Iterable[Path]) -> list[Finding]:
    findings: list[Finding] = []
    for path in paths:
        if path.is_file() and not path.is_symlink():
            findings += scan_path(path)
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyfn-check-secrets", description=__doc__)
    parser.add_argument("filenames", nargs="*")
    args = parser.parse_args(argv)
    findings = scan_files(Path(n) for n in args.filenames)
    for finding in findings:
        print(finding.line())
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
