"""The functions of an Action run: each source's settings resolved as the command resolves
them, checked where a pull request's files decide them, and what became of each.

A function's files come from the pull request: its name must be a plain directory
name, and a path its config file sets (``out``, ``cache_dir``) must stay inside the
working directory.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyfn_action.cloud.auth import project_from_env
from pyfn_action.config import (
    Config,
    DeploySettings,
    env_config,
    read_file_config,
    resolve,
    resolve_deploy,
)
from pyfn_action.errors import ConfigError, Finding, PyfnError
from pyfn_action.github.inputs import Inputs

if TYPE_CHECKING:
    from pyfn_action.flows.jobs import DeployInputs
    from pyfn_action.flows.previews import Preview, PreviewTarget
    from pyfn_action.report import compare as sizereport
    from pyfn_action.report.bench import BenchResult
    from pyfn_action.report.model import Report

_DIRECTORY = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass
class Function:
    """One function of this run, and what became of it."""

    source: Path
    config: Config
    settings: DeploySettings
    prepared: DeployInputs | None = None
    report: Report | None = None  # also for a bundle refused by its budget
    bundle: Path | None = None
    report_path: Path | None = None
    url: str | None = None
    error: PyfnError | None = None
    comparison: sizereport.Comparison | None = None
    base_from: str = ""  # cache | built | report: where its base report came from
    comment_path: Path | None = None
    findings: list[Finding] = field(default_factory=list)
    checked_out: bool = False  # the repository decides its out, so it was checked
    preview_target: PreviewTarget | None = None  # its preview is deployed (prepared)
    preview: Preview | None = None  # the preview deployed
    no_preview: str = ""  # why it has none (report.previews.NO_PREVIEW's keys)
    speed: BenchResult | None = None  # against the native runtime (bench: true)
    base_speed: BenchResult | None = None  # the same, at the base

    @property
    def name(self) -> str:
        return self.config.name


def resolve_functions(inputs: Inputs, env: Mapping[str, str]) -> list[Function]:
    """Each source's settings, resolved as the command resolves them; names unique.

    A function's files come from the pull request: its name must be a plain
    directory name (one source or several), and a path its config file sets
    (``out``, ``cache_dir``) must stay inside the working directory.
    """
    functions = []
    for source in inputs.sources:
        config = resolve(source, env=env, flags=inputs.flags)
        settings = resolve_deploy(source, env=env, flags=inputs.deploy_flags)
        _directory_name(config.name)
        untrusted = _file_paths(source, env, inputs.flags)
        for key in untrusted:
            _inside(key, getattr(config, key), inputs.workdir)
        functions.append(Function(source, config, settings, checked_out="out" in untrusted))
    several = len(functions) > 1
    for function in functions:
        out = function.config.out
        if out == Path("dist") and several:
            out = out / function.name
        if function.checked_out:  # dist/NAME too: the repository may hold it as a link
            _inside("out", out, inputs.workdir)
        if not out.is_absolute():
            out = inputs.workdir / out
        function.config = dataclasses.replace(function.config, out=out, dry_run=False)
    _unique("name", [f.name for f in functions], "Give each function its own name in pyfn.toml")
    _unique("out", [str(f.config.out) for f in functions], "Give each function its own out")
    return functions


def _file_paths(source: Path, env: Mapping[str, str], flags: Mapping[str, Any]) -> list[str]:
    """The path keys whose value the repository decides: set in the function's config
    file, or ``out``'s default ``dist``, which the repository may hold as a link (the
    workflow's inputs and ``PYFN_*`` variables are the workflow author's, and trusted)."""
    table, _ = read_file_config(source)
    overridden = {*env_config(env), *(k for k, v in flags.items() if v is not None)}
    return [k for k in _PATH_KEYS if (k in table or k == "out") and k not in overridden]


_PATH_KEYS = ("out", "cache_dir")


def _inside(key: str, value: Path | None, workdir: Path) -> None:
    if value is None:
        return
    root = workdir.resolve()
    relative = not value.is_absolute() and ".." not in value.parts
    if relative and (root / value).resolve().is_relative_to(root):
        return
    raise ConfigError(
        f"{key} = {str(value)!r} leads out of the working directory",
        why="the files of a pull request never choose where the Action writes",
        fix=f"Set {key} to a directory inside the repository, or set it with the input "
        "'config' (the workflow's own)",
    )


def _directory_name(name: str) -> str:
    """A function's name as one directory below ``dist`` (names come from files a pull
    request may change: never a path)."""
    if not _DIRECTORY.match(name) or name.strip(".") == "":
        raise ConfigError(
            f"The function name {name!r} cannot name its output directory",
            why="each function is built into dist/NAME when there are several, so a name "
            "is never a path",
            fix="Use letters, digits, '-', '_' and '.' in the name",
        )
    return name


def _unique(what: str, values: list[str], fix: str) -> None:
    seen = {v for v in values if values.count(v) > 1}
    if seen:
        raise ConfigError(
            f"Several functions have the same {what}: {', '.join(sorted(seen))}", fix=fix
        )


def require_deploy_settings(settings: DeploySettings, env: Mapping[str, str], what: str) -> None:
    _require(
        settings.project or project_from_env(env),
        "project",
        what,
        "; google-github-actions/auth's project_id also sets it",
    )
    _require(settings.region, "region", what)
    _require(settings.bucket, "bucket", what)


def _require(value: str | None, name: str, what: str, more: str = "") -> None:
    if not value:
        raise ConfigError(
            f"{what} is true but no {name} is given",
            fix=f"Set the input {name!r} (or {name} in the function's pyfn.toml){more}",
        )
