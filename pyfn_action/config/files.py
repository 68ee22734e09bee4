"""The configuration file of a function: ``pyfn.toml``, or ``[tool.pyfn]`` in its
``pyproject.toml`` (never both), and where in it a key is set."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pyfn_action.errors import ConfigError
from pyfn_action.toml import tomllib


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
