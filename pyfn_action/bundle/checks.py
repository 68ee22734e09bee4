"""The trimmed bundle inspected before it is zipped: private keys refused, native code
judged, and each problem pointed at the function's own file and line.

A bundle entry comes from the function's source (``app/x`` is the source's ``x``) or
from a distribution (a file under ``site/`` is the requirements line that names it):
:class:`Locator` says which, so that an adapter can annotate that line (a
:class:`~pyfn_action.errors.Finding`). The problems that do not stop the build are
collected here, once, in :class:`Inspection`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pyfn_action import secrets
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.native import NativeReport, inspect_entries
from pyfn_action.deps.reqfile import Requirements
from pyfn_action.errors import CredentialsFound, Finding
from pyfn_action.runtime.targets import Target

log = logging.getLogger(__name__)


class Locator:
    """Which file of the function a bundle entry comes from, and on which line."""

    def __init__(
        self, root: Path, requirements: Requirements | None, entries: Sequence[Entry]
    ) -> None:
        self.root = root
        self.requirements = requirements
        self.component = {e.arcname: e.component for e in entries}

    def __call__(self, arcname: str) -> tuple[Path | None, int | None]:
        if arcname.startswith("app/"):
            return self.root / arcname.removeprefix("app/"), None
        if arcname.startswith("site/") and self.requirements is not None:
            return self.requirements.where(self.component.get(arcname, ""))
        return None, None


@dataclass(frozen=True)
class Inspection:
    """What the inspection found: the native code's report, and every finding to show."""

    native: NativeReport
    findings: tuple[Finding, ...]  # problems that did not stop the build


def inspect(
    entries: Sequence[Entry],
    where: Locator,
    target: Target,
    cache_dir: Path,
    *,
    allow_credentials: bool,
) -> Inspection:
    """Refuse private keys (unless allowed), then judge every shared object for ``target``."""
    findings = refuse_credentials(entries, where, allowed=allow_credentials)
    native = inspect_entries(entries, target, cache_dir)
    for problem in native.problems:
        log.warning("native code: %s %s", problem.path, problem.problem)
        file, line = where(problem.path)
        findings.append(
            Finding(
                kind="native", message=f"{problem.path} {problem.problem}", file=file, line=line
            )
        )
    return Inspection(native=native, findings=tuple(findings))


def refuse_credentials(entries: Sequence[Entry], where: Locator, *, allowed: bool) -> list[Finding]:
    """No private key leaves in a bundle unless the user says so (allow_credentials).

    Every file from ``app/`` and ``site/`` goes through the scanner of
    pyfn-no-credentials (:mod:`pyfn_action.secrets`), archives inside it included.
    Allowed, each key found is returned as a finding to show; else the build stops.
    What could not be scanned (too large, encrypted, damaged, a limit reached) is
    logged and returned as a finding too; it does not stop the build.
    """
    keys: list[secrets.Finding] = []
    located: list[Finding] = []
    unscanned: list[Finding] = []
    for entry in entries:
        if not entry.arcname.startswith(("app/", "site/")):
            continue
        if entry.source is not None:
            scan = secrets.scan_file(entry.source, entry.arcname)
        else:
            scan = secrets.scan_content(entry.arcname, entry.read())
        file, line = where(entry.arcname)
        for found in scan.findings:
            keys.append(found)
            log.warning("%s", found.line() if allowed else f"{found.where}: {found.what}")
            # A line of a member of an archive is not a line of the archive.
            own = found.lineno if found.where == secrets.shown_name(entry.arcname) else None
            located.append(
                Finding(
                    kind="credentials",
                    message=f"{found.where}: {found.what}",
                    file=file,
                    line=own if line is None else line,
                )
            )
        for note in scan.unscanned:
            log.warning("%s", note.line())
            unscanned.append(Finding(kind="credentials", message=note.line(), file=file, line=line))
    if keys and not allowed:
        listed = "; ".join(f"{f.where} ({f.what})" for f in keys[:10])
        more = f" and {len(keys) - 10} more" if len(keys) > 10 else ""
        raise CredentialsFound(
            f"The bundle would carry private keys: {listed}{more}",
            why="anyone who can read the function's source could use them",
            fix="Delete them (or list them in .pyfnignore) and use the function's runtime "
            "service account or Secret Manager; set allow_credentials = true only if "
            "shipping them is intended",
            findings=[*located, *unscanned],
        )
    return [*located, *unscanned]
