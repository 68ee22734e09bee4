"""Byte sizes: parsing what people write (``100MB``, ``95MiB``, ``1.5G``) and printing them."""

from __future__ import annotations

import re

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int) -> int:
    """Return the number of bytes ``text`` names.

    Decimal units (``K``, ``KB``, ``M``, ``MB``, ``G``, ``GB``) are powers of 1000,
    binary units (``KiB``, ``MiB``, ``GiB``) powers of 1024; a bare number is bytes.
    Raises :class:`ValueError` with the accepted forms when ``text`` does not parse.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a size")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"{text} is negative")
        return text
    if not isinstance(text, str):
        raise ValueError(
            f"{text!r} is not a size: write a whole number of bytes, or a text "
            "such as 100MB, 95MiB or 1.5G"
        )
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _UNITS:
        raise ValueError(
            f"{text!r} is not a size: write a number with an optional unit, "
            "such as 500000, 100MB, 95MiB or 1.5G"
        )
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n: int) -> str:
    """``12_400_000`` → ``'12.4 MB'``: decimal units, as limits are documented."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if abs(value) < 1000 or unit == "GB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
