"""The base's sizes, read from the Actions cache instead of built again.

On a push to the default branch, the Action writes each function's ``report.json``
into one directory (:func:`save`), which ``actions/cache/save`` keeps under a key
naming the commit and the job (:func:`plan`). On a pull request into that branch,
``actions/cache/restore`` brings back the base commit's directory, if there is one,
and each function whose report is there (:func:`load`) needs no base build; the rest
are built at the base as before.

The job's part of the key is a digest of the inputs that decide what is built (the
sources, the working directory, runtime, generation, budget, name, entry point,
signature and the ``config`` lines), so a matrix job reads its own reports back, and a
pull request that changes them builds its base. Pull requests cannot write the
default branch's cache, so what is read was written by a push; it is still checked as
the ``base-report`` input is (the report format, the function's name), read as data
and never run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pyfn_action.errors import ReportError
from pyfn_action.fetch import replace_file
from pyfn_action.github.event import Event
from pyfn_action.github.inputs import env_name
from pyfn_action.report.model import REPORT_VERSION, Report
from pyfn_action.report.model import load as load_report

log = logging.getLogger(__name__)

PREFIX = f"pyfn-reports-v{REPORT_VERSION}"
# The inputs that decide what a job builds; a change to one is another job's reports.
JOB_INPUTS = (
    "source",
    "working-directory",
    "runtime",
    "gen",
    "budget",
    "name",
    "entry-point",
    "signature",
    "config",
)
INDEX = "index.json"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class Plan:
    """What the cache steps do in this run: the directory, and the key to save it
    under (a push to the default branch) or to restore (a pull request), if any."""

    path: Path
    save_key: str = ""
    restore_key: str = ""


def plan(env: Mapping[str, str], event: Event) -> Plan:
    """The cache steps' directory and keys for this run's event."""
    digest = hashlib.sha256()
    for name in JOB_INPUTS:
        digest.update(name.encode() + b"\0" + env.get(env_name(name), "").strip().encode() + b"\0")
    job = digest.hexdigest()[:16]
    temp = env.get("RUNNER_TEMP") or tempfile.gettempdir()
    path = Path(temp) / f"pyfn-reports-{job}"
    if event.pushed_to_default_branch and event.sha:
        return Plan(path, save_key=f"{PREFIX}-{event.sha}-{job}")
    if event.is_pull_request and event.base_sha:
        return Plan(path, restore_key=f"{PREFIX}-{event.base_sha}-{job}")
    return Plan(path)


def save(path: Path, sha: str, reports: Sequence[tuple[str, Path]]) -> None:
    """Each (function name, report.json) into ``path`` for the cache step, the index last:
    a directory without its index holds nothing :func:`load` reads."""
    path.mkdir(parents=True, exist_ok=True)
    (path / INDEX).unlink(missing_ok=True)
    names = []
    for name, report in reports:
        if not _NAME.match(name):
            continue
        replace_file(path / f"{name}.json", report.read_bytes())
        names.append(name)
    index = {"version": REPORT_VERSION, "sha": sha, "functions": sorted(names)}
    replace_file(path / INDEX, json.dumps(index, indent=2).encode() + b"\n")
    log.info("kept %d report(s) of %s for pull requests' bases", len(names), sha[:12])


def load(path: Path, sha: str, names: Sequence[str]) -> dict[str, Report]:
    """The reports of ``names`` that the restored directory holds for commit ``sha``,
    each checked; one that fails a check is said and left out (it is built instead)."""
    index = _index(path, sha)
    found: dict[str, Report] = {}
    for name in names:
        if name not in index or not _NAME.match(name):
            continue
        file = path / f"{name}.json"
        try:
            report = load_report(file)
        except ReportError as exc:
            log.warning(
                "the cached base report of %s is not usable (%s): building it", name, exc.what
            )
            continue
        if report.function_name != name:
            log.warning(
                "the cached base report %s is for %r, not %r: building it",
                file.name,
                report.function_name,
                name,
            )
            continue
        found[name] = report
    return found


def _index(path: Path, sha: str) -> set[str]:
    file = path / INDEX
    if not file.is_file():
        return set()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        log.warning("the cached base reports cannot be read (%s): building the base", exc)
        return set()
    if not isinstance(data, dict) or data.get("version") != REPORT_VERSION:
        log.info("the cached base reports are of another format: building the base")
        return set()
    if data.get("sha") != sha:
        log.warning(
            "the cached base reports are of %r, not of the base %s: building the base",
            str(data.get("sha"))[:40],
            sha[:12],
        )
        return set()
    listed = data.get("functions")
    return {n for n in listed if isinstance(n, str)} if isinstance(listed, list) else set()


def clear(path: Path) -> None:
    """Leave no earlier run's reports where this run's are written."""
    if path.is_dir():
        for child in path.iterdir():
            if child.is_file():
                os.unlink(child)
