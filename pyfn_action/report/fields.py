"""The fields of a comment's hidden data line, read back: each one checked before use.

Anyone who may comment on a pull request can write a body that looks like pyfn's,
so nothing read back from a comment is trusted: a field is of its type, no longer
than it may be, of the characters it may hold, and never markup. The comment is
then drawn again from what passed, never posted as read.
"""

from __future__ import annotations

import re

MAX_FUNCTIONS = 1000  # rows read back from a comment; more is not a comment pyfn wrote


class NotCombined(ValueError):
    """A body that is not a combined size comment pyfn could have written."""


def text(value: object, most: int, pattern: str | None = None) -> str:
    """A text field: at most ``most`` characters, matching ``pattern``; '' for none."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > most:
        raise NotCombined("a text field is too long or not text")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise NotCombined(f"a field holds characters it may not: {value[:40]!r}")
    if "<" in value or ">" in value or "\n" in value:
        raise NotCombined("a text field holds markup")
    return value


def integer(value: object) -> int:
    """A whole number a float can hold exactly (a JSON number's safe range)."""
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**53:
        raise NotCombined("a size is not a whole number")
    return value


def count(value: object) -> int:
    """A size: a whole number, never negative."""
    number = integer(value)
    if number < 0:
        raise NotCombined("a size is negative")
    return number


def listed(value: object, what: str) -> list[object]:
    """A list of at most :data:`MAX_FUNCTIONS` items; ``what`` names it in the error."""
    if not isinstance(value, list) or len(value) > MAX_FUNCTIONS:
        raise NotCombined(f"its {what}: not a list, or too long")
    return value
