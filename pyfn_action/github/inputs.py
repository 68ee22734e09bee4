"""The Action's inputs: read from ``INPUT_<NAME>``, checked, and mapped to pyfn's settings.

The runner names an input ``INPUT_`` + its name in upper case, spaces turned to
``_`` and hyphens kept (``INPUT_GITHUB-TOKEN``); ``action.yml`` sets exactly
those. An input overrides the function's ``pyfn.toml`` as a command-line flag
does, and ``PYFN_*`` variables keep their place below the inputs. Every error
names the input it is about.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyfn_action.config import BENCH_KEYS, DEPLOY_KEYS, KEYS, Key, apply_keys, read_file_config
from pyfn_action.errors import ConfigError, SourceError
from pyfn_action.report.entries import Threshold, parse_threshold
from pyfn_action.toml import tomllib

# Inputs that are pyfn settings: input name → configuration key.
BUILD_INPUTS = {
    "runtime": "runtime",
    "gen": "gen",
    "budget": "budget",
    "name": "name",
    "entry-point": "entry_point",
    "signature": "signature",
}
DEPLOY_INPUTS = {
    "project": "project",
    "region": "region",
    "bucket": "bucket",
    "env-vars": "env_vars",
    "secrets": "secrets",
    "memory": "memory",
    "function-timeout": "function_timeout",
}
ACTION_INPUTS = (
    "source",
    "working-directory",
    "deploy",
    "comment",
    "comment-mode",
    "comment-key",
    "minimum-change",
    "github-token",
    "base-report",
    "config",
    "cache",
    "preview",
    "preview-max-instances",
    "allow-unauthenticated",
    "bench",
    "min-speedup",
    "bench-duration",
)
COMMENT_MODES = ("combined", "per-function", "off")
SINGLE_SOURCE_INPUTS = ("name", "entry-point", "base-report")
BOOLEAN_INPUTS = {
    "deploy": False,
    "comment": True,
    "cache": True,
    "preview": False,
    "allow-unauthenticated": False,
    "bench": False,
}
MAX_PREVIEW_INSTANCES = 1000
# Inputs whose values may be secrets: masked before they are parsed, never echoed.
SECRET_INPUTS = ("env-vars", "secrets", "github-token", "config")
MIN_MASK_LENGTH = 3  # a shorter mask would hide every such string in the log
# YAML 1.2's core schema, as the runner's toolkit reads a boolean input (getBooleanInput)
TRUE, FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")


def env_name(name: str) -> str:
    """``github-token`` → ``INPUT_GITHUB-TOKEN``, as the runner names it."""
    return "INPUT_" + name.replace(" ", "_").upper()


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Every value of the inputs that may hold secrets, as the runner should mask them:
    the whole input, each line, each comma-separated item and whatever follows each of
    its ``=`` (quotes stripped too); found before anything parses them. Longest first."""
    found: set[str] = set()
    for name in SECRET_INPUTS:
        text = read(env, name)
        found.add(text)
        for line in text.splitlines():
            for item in (line, *line.split(",")):
                found.add(item)
                while "=" in item:
                    item = item.partition("=")[2]
                    found.update((item, item.strip(" '\"")))
    pieces = {p.strip() for p in found}
    return sorted((p for p in pieces if len(p) >= MIN_MASK_LENGTH), key=lambda p: (-len(p), p))


def read(env: Mapping[str, str], name: str) -> str:
    """An input's value, trimmed as the runner's toolkit trims it; '' when unset."""
    return env.get(env_name(name), "").strip()


@dataclass(frozen=True)
class Inputs:
    """The Action's inputs, checked."""

    workdir: Path
    sources: tuple[Path, ...]
    flags: Mapping[str, Any] = field(default_factory=dict)  # build keys, as flags
    deploy_flags: Mapping[str, Any] = field(default_factory=dict)
    deploy: bool = False
    comment_mode: str = "combined"  # combined | per-function | off
    comment_key: str = ""  # the combined comment's key ("": the workflow's and job's names)
    minimum: Threshold = field(default_factory=Threshold)
    cache: bool = True
    preview: bool = False  # deploy each function's preview on a pull request
    preview_max_instances: int = 1
    public: bool = False  # allow-unauthenticated: anyone may call the previews
    bench: bool = False  # measure each function against the native runtime
    min_speedup: float | None = None  # the workflow's verdict, over pyfn.toml's
    bench_duration: float = 3.0  # seconds a measure
    token: str = ""
    base_report: Path | None = None
    secrets: tuple[str, ...] = ()  # values to mask in the log

    @property
    def comment(self) -> bool:
        """Whether anything is posted on the pull request."""
        return self.comment_mode != "off"


def parse(env: Mapping[str, str], *, cwd: Path) -> Inputs:
    """Every input, checked before anything is built, uploaded or deployed."""
    workdir = _workdir(read(env, "working-directory"), env, cwd)
    flags: dict[str, Any] = {}
    deploy_flags: dict[str, Any] = {}
    _apply_config(read(env, "config"), flags, deploy_flags)
    for name, key in BUILD_INPUTS.items():
        _take(env, name, KEYS[key], flags)
    for name, key in DEPLOY_INPUTS.items():
        _take(env, name, DEPLOY_KEYS[key], deploy_flags)
    sources = _sources(read(env, "source") or ".", workdir)
    if len(sources) > 1:
        for name in SINGLE_SOURCE_INPUTS:
            if read(env, name):
                raise ConfigError(
                    f"The input {name!r} applies to one function, and source names {len(sources)}",
                    fix=f"Set {name.replace('-', '_')} in each function's pyfn.toml instead",
                )
    base_report = read(env, "base-report")
    token = read(env, "github-token")
    masked = [token] if token else []
    masked += [v for _, v in deploy_flags.get("env_vars") or () if len(v) >= MIN_MASK_LENGTH]
    deploy, preview = _flag(env, "deploy"), _flag(env, "preview")
    if deploy and preview:
        raise ConfigError(
            "deploy and preview are both true",
            why="a step deploys the function itself (on a push) or its preview (on a pull "
            "request), never both",
            fix="Deploy in a job that runs on push, preview in one that runs on pull_request",
        )
    return Inputs(
        workdir=workdir,
        sources=sources,
        flags=flags,
        deploy_flags=deploy_flags,
        deploy=deploy,
        preview=preview,
        preview_max_instances=_count(env, "preview-max-instances", default=1),
        public=_flag(env, "allow-unauthenticated"),
        bench=_flag(env, "bench"),
        min_speedup=_ratio(env, "min-speedup"),
        bench_duration=_seconds(env, "bench-duration", default=3.0),
        comment_mode=_comment_mode(env),
        comment_key=read(env, "comment-key"),
        minimum=_minimum(env),
        cache=_flag(env, "cache"),
        token=token,
        base_report=(workdir / base_report) if base_report else None,
        secrets=tuple(masked),
    )


def _comment_mode(env: Mapping[str, str]) -> str:
    """``comment-mode``; ``comment: false`` (the older switch) turns it off."""
    mode = read(env, "comment-mode") or "combined"
    if mode not in COMMENT_MODES:
        raise _invalid("comment-mode", mode, " or ".join(COMMENT_MODES))
    return mode if _flag(env, "comment") else "off"


def _minimum(env: Mapping[str, str]) -> Threshold:
    value = read(env, "minimum-change")
    try:
        return parse_threshold(value)
    except ValueError as exc:
        raise _invalid(
            "minimum-change", value, "a size (1KB, 500) or a share (0.5%)", str(exc)
        ) from None


def _ratio(env: Mapping[str, str], name: str) -> float | None:
    value = read(env, name)
    if not value:
        return None
    try:
        return BENCH_KEYS["min_speedup"].parse(value)  # type: ignore[no-any-return]
    except ValueError as exc:
        raise _invalid(name, value, "a ratio such as 1.5", str(exc)) from None


def _seconds(env: Mapping[str, str], name: str, *, default: float) -> float:
    value = read(env, name)
    if not value:
        return default
    try:
        seconds = float(value.removesuffix("s"))
    except ValueError:
        seconds = -1.0
    if not 0.1 <= seconds <= 60:
        raise _invalid(name, value, "seconds from 0.1 to 60, e.g. 3")
    return seconds


def _count(env: Mapping[str, str], name: str, *, default: int) -> int:
    value = read(env, name)
    if not value:
        return default
    if not value.isdigit() or not 1 <= int(value) <= MAX_PREVIEW_INSTANCES:
        raise _invalid(name, value, f"a whole number from 1 to {MAX_PREVIEW_INSTANCES}")
    return int(value)


def _flag(env: Mapping[str, str], name: str) -> bool:
    """A boolean input, read as the runner's toolkit reads one: anything but
    true/false (in YAML's three spellings) is an error, never a silent default."""
    value = read(env, name)
    if not value:
        return BOOLEAN_INPUTS[name]
    if value in TRUE or value in FALSE:
        return value in TRUE
    raise _invalid(name, value, "true or false")


def _take(env: Mapping[str, str], name: str, key: Key, into: dict[str, Any]) -> None:
    value = read(env, name)
    if not value:
        return
    raw: Any = value
    if key.kind == "table" and "\n" in value:
        # One KEY=VALUE a line: a value may then hold commas.
        raw = dict(_pair(name, line) for line in value.splitlines() if line.strip())
    try:
        into[key.name] = key.parse(raw)
    except ValueError as exc:
        if name in SECRET_INPUTS:  # the parser's message may quote a value
            raise _invalid(name, value, key.help, _no_values(value)) from None
        raise _invalid(name, value, key.help, str(exc)) from None


def _pair(name: str, line: str) -> tuple[str, str]:
    key, sep, value = line.strip().partition("=")
    if not sep or not key.strip():
        raise _invalid(name, line, "KEY=VALUE, one a line", "a line is not KEY=VALUE")
    return key.strip(), value


def _no_values(text: str) -> str:
    """What is wrong with a secret-bearing input, naming keys only."""
    items = [i.strip() for line in text.splitlines() for i in line.split(",") if i.strip()]
    bad = [n for n, item in enumerate(items, 1) if "=" not in item or not item.split("=")[0]]
    if bad:
        return f"item {bad[0]} of {len(items)} is not KEY=VALUE (values are not shown)"
    return "it is not KEY=VALUE,… (values are not shown)"


def _invalid(name: str, value: str, expected: str, why: str = "") -> ConfigError:
    if name in SECRET_INPUTS:
        what = f"Invalid value for the input {name!r}"
    else:
        shown = value if len(value) <= 80 else value[:77] + "..."
        what = f"Invalid value for the input {name!r}: {shown!r}"
    return ConfigError(what, why=why, fix=f"Set {name} to {expected}")


def _apply_config(text: str, flags: dict[str, Any], deploy_flags: dict[str, Any]) -> None:
    """The ``config`` input: TOML lines with ``pyfn.toml``'s keys, checked as flags are."""
    if not text:
        return
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            "The input 'config' is not valid TOML",
            why=str(exc),
            fix='Write one setting a line, as in pyfn.toml: arch = "aarch64"',
        ) from None
    covered = {key: name for name, key in {**BUILD_INPUTS, **DEPLOY_INPUTS}.items()}
    for key in table:
        if key in covered:
            raise ConfigError(
                f"{key} is set in the input 'config'",
                why=f"it has an input of its own, {covered[key]!r}",
                fix=f"Use the input {covered[key]!r} instead",
            )
    apply_keys(table, "the input 'config'", flags, KEYS)
    apply_keys(table, "the input 'config'", deploy_flags, DEPLOY_KEYS)


def _workdir(value: str, env: Mapping[str, str], cwd: Path) -> Path:
    workspace = Path(env.get("GITHUB_WORKSPACE") or cwd)
    path = (workspace / value) if value else cwd
    if not path.is_dir():
        raise ConfigError(
            f"The input 'working-directory' names {value!r}, which is not a directory",
            fix="Give a directory of the repository, relative to its root",
        )
    return path


def _sources(text: str, workdir: Path) -> tuple[Path, ...]:
    """Each line a directory or a glob, relative to ``workdir``; each must hold a function."""
    found: list[Path] = []
    for line in (part.strip() for part in text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if glob.has_magic(line):
            try:
                dirs = sorted(p for p in workdir.glob(line) if p.is_dir())
            except (ValueError, NotImplementedError) as exc:
                raise SourceError(
                    f"The input 'source' pattern {line!r} cannot be used",
                    why=str(exc),
                    fix="Use a relative pattern",
                ) from None
            functions = [d for d in dirs if _holds_function(d)]
            if not functions:
                raise SourceError(
                    f"The input 'source' pattern {line!r} matches no function directory",
                    why=f"{len(dirs)} directories matched, none with main.py or pyfn.toml",
                    fix="List the function directories, one per line, relative to "
                    "the working directory",
                )
            found += functions
            continue
        path = workdir / line
        if not path.is_dir():
            what = "does not exist" if not path.exists() else "is not a directory"
            raise SourceError(
                f"The input 'source' names {line!r}, which {what}",
                fix="Give the function's directory, relative to the working directory",
            )
        if not _holds_function(path):
            raise SourceError(
                f"The input 'source' names {line!r}, which holds no function",
                why="it has no main.py and no pyfn.toml",
                fix="Point source at the directory with your function's main.py",
            )
        found.append(path)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    for path in unique:
        if not path.is_relative_to(workdir.resolve()):
            raise SourceError(
                f"The input 'source' leads to {path}, outside the working directory",
                why="a link in the repository points out of it; pyfn never builds from there",
                fix="Name directories inside the repository",
            )
    if not unique:
        raise SourceError("The input 'source' is empty", fix="Name a function directory")
    return tuple(unique)


def _holds_function(path: Path) -> bool:
    if (path / "main.py").is_file() or (path / "pyfn.toml").is_file():
        return True
    try:
        _, origin = read_file_config(path)
    except ConfigError:
        return True  # a broken config file: the build says what is wrong with it
    return origin is not None
