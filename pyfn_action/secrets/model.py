"""What a scan reports: keys found, what could not be read, and the limits it keeps to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

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
    """What scanning one file found, and what it could not read."""

    findings: tuple[Finding, ...] = ()
    unscanned: tuple[Unscanned, ...] = ()


def too_large(size: int, limits: Limits) -> str:
    """Why something of ``size`` bytes was not read."""
    return f"{format_size(size)} is over the {format_size(limits.file_bytes)} scan limit"


def iter_lines(scan: Scan) -> Iterator[str]:
    """The lines a hook prints: every key, then everything that could not be scanned."""
    for finding in scan.findings:
        yield finding.line()
    for unscanned in scan.unscanned:
        yield unscanned.line()
