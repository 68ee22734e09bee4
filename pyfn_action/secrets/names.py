"""Names and values as a message may show them: one printable line, never raw bytes."""

from __future__ import annotations

import unicodedata


def shown_name(name: str) -> str:
    """A name as it may be printed on one line: bytes that are not UTF-8 as ``\\xNN``,
    control and format characters (newlines, escapes, bidi overrides) escaped."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or char == " ":
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            out.append(char.encode("unicode_escape").decode("ascii"))
        else:
            out.append(char)
    return "".join(out)


def short(text: str, limit: int = 120) -> str:
    """A value from the file, as a message may show it: one line, not too long."""
    text = shown_name(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def reason(exc: BaseException) -> str:
    """Why something could not be read, from the error, as a message may show it."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return shown_name(str(exc) or type(exc).__name__)
