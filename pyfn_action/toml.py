"""TOML reading for every Python pyfn supports: the standard library's tomllib from 3.11,
the tomli backport before it (the same parser, under its original name)."""

from __future__ import annotations

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["tomllib"]
