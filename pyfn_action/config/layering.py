"""The one precedence: built-in defaults → the configuration file → ``PYFN_*``
environment → command-line flags, for a build's keys and the deploy's alike."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pyfn_action.config.files import read_file_config
from pyfn_action.config.keys import BENCH_KEYS, DEPLOY_KEYS, KEYS, TABLES, Key, suggest
from pyfn_action.config.models import Config, DeploySettings
from pyfn_action.errors import ConfigError, SourceError
from pyfn_action.redact import redact_url


def apply_keys(
    raw: Mapping[str, Any], origin: str, into: dict[str, Any], keys: Mapping[str, Key] = KEYS
) -> None:
    """Parse each of ``keys`` that ``raw`` (from ``origin``) sets into ``into``; the keys
    of another command are left for it, and any other key is an error that says which."""
    known = {**KEYS, **DEPLOY_KEYS, **BENCH_KEYS}
    for key, value in raw.items():
        spec = keys.get(key)
        if spec is None and (key in known or key in TABLES):
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


def resolve_bench(
    source: Path | None, *, env: Mapping[str, str], flags: Mapping[str, Any]
) -> dict[str, Any]:
    """``pyfn bench``'s settings (:data:`BENCH_KEYS`), layered as every key is."""
    return _layered(BENCH_KEYS, source, env, flags)


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
        apply_keys(table, origin or "config file", values, keys)
    apply_keys(env_config(env, keys), "the environment (PYFN_*)", values, keys)
    apply_keys({k: v for k, v in flags.items() if v is not None}, "the command line", values, keys)
    return values
