"""The exception tree: every failure a user can meet has its own class.

Each message says what failed, why, and what to do next. The adapters (CLI,
Action entrypoint, hooks) turn a :class:`PyfnError` into text and its
``exit_code`` in one place; nothing below them prints or exits.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Finding:
    """A problem about one file of the function (and a line of it, where known).

    Adapters point at it: the Action writes it as an annotation on that line.
    """

    kind: str  # native | oversized | credentials | budget | requirements
    message: str
    file: Path | None = None
    line: int | None = None


class PyfnError(Exception):
    """Root of every error pyfn reports to a user."""

    exit_code = 1

    def __init__(
        self, what: str, *, why: str = "", fix: str = "", findings: Iterable[Finding] = ()
    ) -> None:
        self.what = what
        self.why = why
        self.fix = fix
        self.findings = tuple(findings)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return " ".join(_sentence(p) for p in (self.what, self.why, self.fix) if p)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


class ConfigError(PyfnError):
    """Configuration that cannot be used: unknown key, bad value, bad file."""

    exit_code = 2


class WrongCheckout(ConfigError):
    """A pull request event whose checked-out commit is not the pull request's."""


class TrimError(ConfigError):
    """A trim rule cannot be read, or would remove a file the bundle needs."""


class SourceError(PyfnError):
    """The function's source directory is missing or unusable."""

    exit_code = 3


class RuntimeFetchError(PyfnError):
    """A PyPy runtime could not be downloaded, verified or unpacked."""

    exit_code = 4


class ChecksumMismatch(RuntimeFetchError):
    """A download or archive does not have the SHA-256 it must have."""


class UnsafeArchive(RuntimeFetchError):
    """An archive holds entries that would land outside its own tree."""


class RequirementsError(PyfnError):
    """Requirements could not be resolved or installed for the target."""

    exit_code = 5


class NoCompatibleWheel(RequirementsError):
    """A requirement has no distribution the target PyPy can load."""

    def __init__(
        self,
        what: str,
        *,
        requirement: str = "",
        why: str = "",
        fix: str = "",
        findings: Iterable[Finding] = (),
    ) -> None:
        super().__init__(what, why=why, fix=fix, findings=findings)
        self.requirement = requirement  # the distribution's name


class BundleError(PyfnError):
    """The bundle could not be staged or written."""

    exit_code = 6


class PackError(PyfnError):
    """An installed PyPy could not be packed into a portable archive."""

    exit_code = 7


class ServeError(PyfnError):
    """A bundle cannot be served locally (no Node.js, no framework, bad bundle)."""

    exit_code = 8


class BudgetExceeded(PyfnError):
    """The bundle is larger than a platform limit or the user's budget.

    ``report`` describes the bundle that was refused (never written to disk), so
    an adapter can still show what is too large.
    """

    exit_code = 9

    def __init__(
        self,
        what: str,
        *,
        report: Any = None,
        why: str = "",
        fix: str = "",
        findings: Iterable[Finding] = (),
    ) -> None:
        super().__init__(what, why=why, fix=fix, findings=findings)
        self.report = report  # report.Report, or None where no report was made


class ReportError(PyfnError):
    """A report file that cannot be read or compared."""

    exit_code = 10


class BaseUnavailable(PyfnError):
    """git could not read or check out a commit the Action needs: the pull request's
    base (its size comparison is then left out, with a warning) or the checkout's own."""


class CredentialsFound(PyfnError):
    """The bundle would carry private keys."""

    exit_code = 11


class CloudError(PyfnError):
    """A call to Google Cloud failed: permission, quota, API not enabled, bad region."""

    exit_code = 12


class CloudCredentialsError(CloudError):
    """No usable Application Default Credentials."""

    exit_code = 13


class UploadError(CloudError):
    """The bundle could not be uploaded to the staging bucket, or not verified there."""

    exit_code = 14


class DeployError(CloudError):
    """Cloud Functions refused the function or its deployment failed."""

    exit_code = 15


class DeployTimeout(DeployError):
    """The deployment did not finish within the wait timeout."""

    exit_code = 16


class CommentError(PyfnError):
    """A pull-request comment could not be read or written.

    ``status`` is GitHub's answer, if there was one; ``forbidden`` says the token may
    not write (a fork's token: 401, 403, 404), which callers treat as "post it elsewhere".
    """

    exit_code = 17

    def __init__(
        self, what: str, *, status: int | None = None, why: str = "", fix: str = ""
    ) -> None:
        super().__init__(what, why=why, fix=fix)
        self.status = status

    @property
    def forbidden(self) -> bool:
        return self.status in (401, 403, 404)


class AnswersDiffer(PyfnError):
    """``pyfn bench``: the runtimes answered a declared request differently."""

    exit_code = 18

    def __init__(self, what: str, *, result: object, why: str = "", fix: str = "") -> None:
        super().__init__(what, why=why, fix=fix)
        self.result = result  # what was measured all the same (report.bench.BenchResult)


class SlowerThanNative(PyfnError):
    """``pyfn bench``: a request is below ``min_speedup``."""

    exit_code = 19

    def __init__(self, what: str, *, result: object, why: str = "", fix: str = "") -> None:
        super().__init__(what, why=why, fix=fix)
        self.result = result
