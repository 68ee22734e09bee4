"""Errors and findings in the runner's language: annotations on the files they name.

A finding that did not stop the build is a warning (native code is an error, as
the job would fail on the platform); an error names the function it stopped, and
the exception's type titles it. A file is named only inside the repository, as
annotations can show it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from pyfn_action.errors import Finding, PyfnError
from pyfn_action.github.workflow import Runner

log = logging.getLogger("pyfn_action")

TITLES = {
    "native": "pyfn: native code",
    "oversized": "pyfn: oversized file",
    "credentials": "pyfn: credentials",
    "budget": "pyfn: size budget",
    "requirements": "pyfn: requirements",
}


def report_error(
    runner: Runner, exc: PyfnError, env: Mapping[str, str], *, function: str = ""
) -> None:
    """``exc`` as an error annotation (its findings each as one of their own), prefixed
    with the ``function`` it stopped; its traceback in the debug log."""
    for finding in exc.findings:
        annotate(runner, finding, env, error=True)
    prefix = f"{function}: " if function else ""
    runner.error(prefix + exc.message, title=f"pyfn: {type(exc).__name__}")
    if log.isEnabledFor(logging.DEBUG):
        log.debug("traceback", exc_info=exc)


def annotate(runner: Runner, finding: Finding, env: Mapping[str, str], *, error: bool) -> None:
    """``finding`` as an error or a warning, on its file and line where it names one."""
    file = _workspace_path(finding.file, env) if finding.file is not None else None
    say = runner.error if error else runner.warning
    say(
        finding.message,
        file=file,
        line=finding.line if file else None,
        title=TITLES.get(finding.kind, "pyfn"),
    )


def _workspace_path(path: Path, env: Mapping[str, str]) -> str | None:
    """``path`` relative to the repository, as annotations name files; else ``None``."""
    workspace = Path(env.get("GITHUB_WORKSPACE") or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(workspace).as_posix()
    except (ValueError, OSError):
        return None
