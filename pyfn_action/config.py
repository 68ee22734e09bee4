"""Configuration: one precedence, written once.

built-in defaults → ``pyfn.toml`` (or ``[tool.pyfn]`` in ``pyproject.toml``)
→ ``PYFN_*`` environment → command-line flags.

Every key has the same name in the file, ``PYFN_<KEY>`` in the environment and
``--<key>`` on the command line (underscores become dashes). Unknown keys in a
file are an error that suggests the closest known key.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfn_action.errors import ConfigError, SourceError
from pyfn_action.fetch import redact_url
from pyfn_action.sizes import parse_size
from pyfn_action.toml import tomllib

SIGNATURES = ("http", "cloudevent", "script")
RUNTIMES = ("pypy3.11", "pypy3.10")
ARCHES = ("x86_64", "aarch64")
STDIN_KINDS = ("headers", "body", "query", "request")


@dataclass(frozen=True)
class Budget:
    """A user's own size budget, in bytes; ``None`` means no budget."""

    compressed: int | None = None
    uncompressed: int | None = None


@dataclass(frozen=True)
class Config:
    """Everything a build needs to know, after precedence has been applied."""

    source: Path
    name: str
    entry_point: str
    signature: str = "http"
    runtime: str = "pypy3.11"
    pypy_version: str | None = None
    arch: str = "x86_64"
    gen: int = 2
    budget: Budget = Budget()
    requirements: str = "requirements.txt"
    script: str | None = None
    stdin: str = "body"
    out: Path = Path("dist")
    pypy_archive: str | None = None
    pypy_sha256: str | None = None
    pypy_mirror: str | None = None
    cache_dir: Path | None = None
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    dry_run: bool = False
    refresh: bool = False
    allow_credentials: bool = False
    json: bool = False
    debug: bool = False


# --- value parsers: raise ValueError with a human reason ----------------------
# Each also takes its own result unchanged, so settings parsed once (an adapter
# judging its inputs) can be layered again as flags.


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    if any(not c.isprintable() for c in value.strip()):
        raise ValueError(f"{value!r} holds a control character")
    return value.strip()


def _number(value: Any, what: str) -> float:
    """A finite number from a TOML number or a string; never a boolean, inf or nan."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not {what}")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"{value!r} is not {what}") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = _str(value)
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return parse


def _gen(value: Any) -> int:
    text = str(value).strip()
    if text not in ("1", "2"):
        raise ValueError(f"{value!r} is not 1 or 2")
    return int(text)


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"{value!r} is not a boolean (true/false, 1/0)")


def _path(value: Any) -> Path:
    return value if isinstance(value, Path) else Path(_str(value)).expanduser()


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValueError(f"expected a list of strings, got {value!r}")


def _sha256(value: Any) -> str:
    text = _str(value).lower()
    if len(text) != 64 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"{value!r} is not a SHA-256 (64 hex digits)")
    return text


def _pypy_version(value: Any) -> str:
    text = _str(value)
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{value!r} is not a PyPy release such as 7.3.19")
    return text


def _identifier(value: Any) -> str:
    text = _str(value)
    if not text.isidentifier():
        raise ValueError(f"{text!r} is not a Python identifier")
    return text


def _budget(value: Any) -> Budget:
    if isinstance(value, Budget):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - {"compressed", "uncompressed"}
        if unknown:
            raise ValueError(
                f"unknown budget key(s) {', '.join(sorted(unknown))}; "
                "use compressed and uncompressed"
            )
        return Budget(
            compressed=_opt_size(value.get("compressed")),
            uncompressed=_opt_size(value.get("uncompressed")),
        )
    return Budget(compressed=parse_size(value))


def _opt_size(value: Any) -> int | None:
    return None if value is None else parse_size(value)


@dataclass(frozen=True)
class Key:
    """One configuration key: its parser and its one-line documentation."""

    name: str
    parse: Callable[[Any], Any]
    help: str
    env_name: str | None = None

    @property
    def env(self) -> str:
        return self.env_name or "PYFN_" + self.name.upper()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("name", _str, "function name (default: the source directory's name)"),
        Key("entry_point", _identifier, "Python function to serve (default: the name)"),
        Key("signature", _choice(SIGNATURES), "http, cloudevent or script"),
        Key("runtime", _choice(RUNTIMES), "PyPy line: pypy3.11 (default) or pypy3.10"),
        Key("pypy_version", _pypy_version, "exact PyPy release, e.g. 7.3.19 (default: newest)"),
        Key("arch", _choice(ARCHES), "target CPU: x86_64 (default) or aarch64"),
        Key("gen", _gen, "Cloud Functions generation: 2 (default) or 1"),
        Key("budget", _budget, "size budget: '95MB' (compressed) or a table"),
        Key("requirements", _str, "requirements file in the source (requirements.txt)"),
        Key("script", _str, "script mode: the script run per request"),
        Key("stdin", _choice(STDIN_KINDS), "script mode: headers, body, query or request"),
        Key("out", _path, "output directory (default: ./dist)"),
        Key("pypy_archive", _str, "a PyPy archive (path or URL) in the official layout"),
        Key("pypy_sha256", _sha256, "the SHA-256 of --pypy-archive"),
        Key("pypy_mirror", _str, "base URL that replaces the official PyPy download host"),
        Key("cache_dir", _path, "cache for runtimes and wheels (default: user cache)"),
        Key("index_url", _str, "package index for requirements (default: pip's)"),
        Key("extra_index_urls", _strings, "more package indexes"),
        Key("find_links", _strings, "local wheel directories or pages"),
        Key("dry_run", _bool, "print what trimming would remove, write nothing"),
        Key("refresh", _bool, "resolve requirements again even if they did not change"),
        Key("allow_credentials", _bool, "bundle files that look like private keys anyway"),
        Key("json", _bool, "print the report as JSON"),
        Key("debug", _bool, "show tracebacks and debug logs"),
    )
}


# --- deploy settings: read from the same file and environment, never bundled ------


MEMORY_UNITS = {"": 1, "mi": 1, "mib": 1, "m": 1, "mb": 1, "gi": 1024, "gib": 1024, "g": 1024,
                "gb": 1024}  # fmt: skip
INGRESS = ("all", "internal-only", "internal-and-gclb")
STORAGE_EVENTS = ("finalized", "deleted", "archived", "metadata-updated")


MAX_MEMORY_MIB = 32768  # the largest instance either generation offers


def _memory(value: Any) -> int:
    """``512Mi``, ``512MB``, ``1Gi``, ``2G`` or a number of MiB → MiB."""
    shape = "a memory size such as 256Mi, 512MB or 1Gi"
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{value!r} is not {shape}")
    text = str(value).strip().lower().replace(" ", "")
    number = text.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = text[len(number) :]
    if unit not in MEMORY_UNITS or not number:
        raise ValueError(f"{value!r} is not {shape}")
    mib = _number(number, shape) * MEMORY_UNITS[unit]
    if not 128 <= mib <= MAX_MEMORY_MIB or mib != int(mib):
        raise ValueError(
            f"{value!r} is below the 128 MiB minimum, above the 32 GiB maximum, or not a whole MiB"
        )
    return int(mib)


MAX_SECONDS = 86400  # a day: longer than any wait or timeout the platform has


def _seconds(value: Any) -> float:
    """``600``, ``90s``, ``10m``, ``1h`` → seconds (more than 0, at most a day)."""
    shape = "a duration such as 600, 90s or 10m"
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not {shape}")
    text = str(value).strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:])
    number = text[:-1] if scale else text
    seconds = _number(number, shape) * (scale or 1)
    if not 0 < seconds <= MAX_SECONDS:
        raise ValueError(f"{value!r} is not a duration of more than 0 s and at most a day")
    return seconds


def _whole_seconds(value: Any) -> int:
    seconds = _seconds(value)
    if seconds != int(seconds):
        raise ValueError(f"{value!r} is not a whole number of seconds")
    return int(seconds)


MAX_COUNT = 2**31 - 1  # the API's int32 fields


def _count(value: Any) -> int:
    text = str(value).strip()
    whole = not isinstance(value, bool) and isinstance(value, (int, str))
    if not (whole and text.isascii() and text.isdigit() and int(text) <= MAX_COUNT):
        raise ValueError(f"{value!r} is not a whole number from 0 to {MAX_COUNT}")
    return int(text)


def _cpu(value: Any) -> str:
    """vCPUs: a TOML number or a string such as ``"0.583"``, kept as text."""
    number = _number(value, "a number of vCPUs such as 0.583, 1 or 2")
    if number <= 0:
        raise ValueError(f"{value!r} is not a positive number of vCPUs")
    return str(value).strip() if isinstance(value, str) else f"{number:g}"


def _prefix(value: Any) -> str:
    """An object-name prefix in the bucket: ``pyfn`` or ``deploys/team-a``."""
    text = _str(value).strip("/") if value != "" else ""
    parts = text.split("/") if text else []
    if any(part in ("", ".", "..") for part in parts) or len(text) > 512:
        raise ValueError(f"{value!r} is not an object prefix such as pyfn or deploys/team-a")
    return text


def _table(value: Any) -> tuple[tuple[str, str], ...]:
    """A TOML table, or ``KEY=VALUE,KEY=VALUE`` text (repeatable on the command line)."""
    pairs: list[tuple[str, str]] = []
    if isinstance(value, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in value
    ):
        pairs = list(value)  # already parsed
    elif isinstance(value, Mapping):
        for k, v in value.items():
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                raise ValueError(f"the value of {k!r} must be a string, got {v!r}")
            pairs.append((str(k), str(v)))
    else:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
            raise ValueError(f"expected KEY=VALUE[,KEY=VALUE…] or a table, got {value!r}")
        for item in items:
            for part in filter(None, (p.strip() for p in item.split(","))):
                k, sep, v = part.partition("=")
                if not sep or not k.strip():
                    raise ValueError(f"{part!r} is not KEY=VALUE")
                pairs.append((k.strip(), v))
    seen: dict[str, str] = {}
    for k, v in pairs:
        seen[k] = v  # the last one given wins, as with repeated flags
    return tuple(sorted(seen.items()))


def _node_runtime(value: Any) -> str:
    text = _str(value)
    if not (text.startswith("nodejs") and text[6:].isdigit()):
        raise ValueError(f"{text!r} is not a Cloud Functions Node.js runtime such as nodejs22")
    return text


@dataclass(frozen=True)
class DeploySettings:
    """Where and how to deploy. Kept apart from :class:`Config`: none of it is bundled."""

    project: str | None = None
    region: str | None = None
    bucket: str | None = None
    prefix: str = "pyfn"
    timeout: float = 600.0
    node_runtime: str = "nodejs22"
    memory: int | None = None
    cpu: str | None = None
    function_timeout: int | None = None
    min_instances: int | None = None
    max_instances: int | None = None
    concurrency: int | None = None
    env_vars: tuple[tuple[str, str], ...] | None = None
    secrets: tuple[tuple[str, str], ...] | None = None
    labels: tuple[tuple[str, str], ...] | None = None
    service_account: str | None = None
    ingress: str | None = None
    trigger_topic: str | None = None
    trigger_bucket: str | None = None
    trigger_event: str = "finalized"
    retry: bool = False


DEPLOY_KEYS: dict[str, Key] = {
    k.name: k
    for k in (
        Key("project", _str, "Google Cloud project ID (default: the credentials' project)"),
        Key("region", _str, "Cloud Functions region, e.g. us-central1"),
        Key("bucket", _str, "staging bucket the bundle is uploaded to"),
        Key("prefix", _prefix, "object prefix in the bucket (default: pyfn)"),
        Key(
            "timeout",
            _seconds,
            "how long to wait for the deploy (default: 10m)",
            env_name="PYFN_DEPLOY_TIMEOUT",
        ),
        Key("node_runtime", _node_runtime, "Cloud Functions Node.js runtime (default: nodejs22)"),
        Key("memory", _memory, "memory per instance, e.g. 512Mi or 1Gi"),
        Key("cpu", _cpu, "vCPUs per instance (2nd gen), e.g. 1 or 0.583"),
        Key("function_timeout", _whole_seconds, "request timeout of the function, e.g. 60s"),
        Key("min_instances", _count, "minimum number of instances"),
        Key("max_instances", _count, "maximum number of instances"),
        Key("concurrency", _count, "requests per instance at once (2nd gen)"),
        Key("env_vars", _table, "environment variables: KEY=VALUE,… (replaces the set)"),
        Key("secrets", _table, "Secret Manager references: ENV=secret:version,…"),
        Key("labels", _table, "labels: key=value,… (replaces the set)"),
        Key("service_account", _str, "service account the function runs as"),
        Key("ingress", _choice(INGRESS), "all, internal-only or internal-and-gclb"),
        Key("trigger_topic", _str, "Pub/Sub topic that triggers the function"),
        Key("trigger_bucket", _str, "Cloud Storage bucket whose events trigger the function"),
        Key(
            "trigger_event",
            _choice(STORAGE_EVENTS),
            "bucket event: finalized (default), deleted, archived, metadata-updated",
        ),
        Key("retry", _bool, "event functions: retry an event until the function succeeds"),
    )
}


def suggest(name: str, known: Any) -> str:
    """``"did you mean 'entry_point'?"`` for the closest known key, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else ""


def _apply(
    raw: Mapping[str, Any], origin: str, into: dict[str, Any], keys: Mapping[str, Key] = KEYS
) -> None:
    known = {**KEYS, **DEPLOY_KEYS}
    for key, value in raw.items():
        spec = keys.get(key)
        if spec is None and key in known:
            continue  # the other command's key: checked when that command runs
        if spec is None:
            hint = suggest(key, known) or f"known keys: {', '.join(known)}"
            raise ConfigError(
                f"Unknown configuration key {key!r} in {origin}",
                fix=hint[0].upper() + hint[1:],
            )
        try:
            into[key] = spec.parse(value)
        except ValueError as exc:
            raise ConfigError(
                f"Invalid value for {key!r} in {origin}",
                why=str(exc),
                fix=f"Set {key} to {spec.help}",
            ) from exc


def read_file_config(source: Path) -> tuple[dict[str, Any], str | None]:
    """The raw table from ``pyfn.toml`` or ``[tool.pyfn]``, and where it came from."""
    pyfn_toml = source / "pyfn.toml"
    pyproject = source / "pyproject.toml"
    tables: list[tuple[dict[str, Any], str]] = []
    if pyfn_toml.is_file():
        tables.append((_load_toml(pyfn_toml), str(pyfn_toml)))
    if pyproject.is_file():
        tool = _load_toml(pyproject).get("tool", {})
        if isinstance(tool, dict) and "pyfn" in tool:
            table = tool["pyfn"]
            if not isinstance(table, dict):
                raise ConfigError(f"[tool.pyfn] in {pyproject} is not a table")
            tables.append((table, f"{pyproject} [tool.pyfn]"))
    if len(tables) > 1:
        raise ConfigError(
            f"Configuration found in both {pyfn_toml} and {pyproject} [tool.pyfn]",
            why="pyfn reads one configuration file per function",
            fix="Keep the settings in one of the two and delete the other",
        )
    return tables[0] if tables else ({}, None)


def config_file(source: Path) -> Path | None:
    """The file that holds the function's settings, if it has one."""
    pyfn_toml = source / "pyfn.toml"
    if pyfn_toml.is_file():
        return pyfn_toml
    pyproject = source / "pyproject.toml"
    if pyproject.is_file() and "pyfn" in _load_toml(pyproject).get("tool", {}):
        return pyproject
    return None


def key_line(path: Path, key: str) -> int | None:
    """The line of ``path`` that sets ``key`` (``key = …`` or a ``[….key]`` table), if any."""
    pattern = re.compile(rf"^\s*(?:{re.escape(key)}\s*=|\[(?:tool\.pyfn\.)?{re.escape(key)}\])")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    return next((n for n, text in enumerate(lines, 1) if pattern.match(text)), None)


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"{path} is not valid TOML",
            why=str(exc),
            fix="Fix the syntax at the line and column given",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"Cannot read {path}", why=exc.strerror or str(exc)) from exc


def env_config(env: Mapping[str, str], keys: Mapping[str, Key] = KEYS) -> dict[str, str]:
    """The ``PYFN_*`` variables that name configuration keys (others are runtime settings)."""
    return {
        key: env[spec.env] for key, spec in keys.items() if spec.env in env and env[spec.env] != ""
    }


def resolve(
    source: Path,
    *,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
) -> Config:
    """Merge defaults, the source's config file, ``PYFN_*`` env and flags into a Config.

    ``flags`` holds only the options given on the command line (``None`` values
    are ignored), already converted by argparse or still strings.
    """
    if not source.is_dir():
        what = "does not exist" if not source.exists() else "is not a directory"
        raise SourceError(
            f"Source directory {source} {what}",
            fix="Pass the directory that holds your function's main.py, "
            "e.g. pyfn build examples/hello",
        )
    values = _layered(KEYS, source, env, flags)
    name = values.pop("name", None) or source.resolve().name
    entry_point = values.pop("entry_point", None) or _default_entry_point(name)
    config = Config(source=source, name=name, entry_point=entry_point, **values)
    return _check(config)


def _default_entry_point(name: str) -> str:
    candidate = name.replace("-", "_")
    return candidate if candidate.isidentifier() else "main"


def _check(config: Config) -> Config:
    if config.pypy_sha256 and not config.pypy_archive:
        raise ConfigError(
            "pypy_sha256 is set but pypy_archive is not",
            fix="Give --pypy-archive PATH|URL together with --pypy-sha256",
        )
    if config.pypy_archive and not config.pypy_sha256:
        raise ConfigError(
            f"No SHA-256 given for the PyPy archive {redact_url(config.pypy_archive)}",
            why="every runtime pyfn bundles is verified before it is used",
            fix="Add --pypy-sha256 HEX (pyfn runtime pack prints it; sha256sum computes it)",
        )
    if config.signature == "script" and not config.script:
        raise ConfigError(
            "signature is 'script' but no script is configured",
            fix='Set script = "handler.py" in pyfn.toml (or --script)',
        )
    return config


def as_dict(config: Config) -> dict[str, Any]:
    """A JSON-friendly view, for the manifest and ``--json`` output."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, Path):
            value = str(value)
        elif isinstance(value, Budget):
            value = dataclasses.asdict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def resolve_deploy(
    source: Path | None,
    *,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
) -> DeploySettings:
    """The deploy settings, with the same precedence as :func:`resolve`.

    ``source`` is the function's directory whose config file is read, or
    ``None`` (``pyfn upload`` of a bundle) for the environment and flags only.
    """
    return DeploySettings(**_layered(DEPLOY_KEYS, source, env, flags))


def resolve_keys(
    names: Iterable[str], *, env: Mapping[str, str], flags: Mapping[str, Any]
) -> dict[str, Any]:
    """Build keys for a command with no function directory (it is given a bundle):
    the environment, then flags; only the keys that are set."""
    return _layered({name: KEYS[name] for name in names}, None, env, flags)


def _layered(
    keys: Mapping[str, Key],
    source: Path | None,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
) -> dict[str, Any]:
    """``keys`` from the source's config file (if any), then ``PYFN_*``, then flags."""
    values: dict[str, Any] = {}
    if source is not None and source.is_dir():
        table, origin = read_file_config(source)
        _apply(table, origin or "config file", values, keys)
    _apply(env_config(env, keys), "the environment (PYFN_*)", values, keys)
    _apply({k: v for k, v in flags.items() if v is not None}, "the command line", values, keys)
    return values
