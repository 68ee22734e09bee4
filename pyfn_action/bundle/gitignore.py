"""Ignore rules as git reads and matches them (gitignore(5); git's dir.c and wildmatch.c).

A line is read as git reads it: unescaped trailing spaces are stripped (tabs are
not), a leading ``!`` negates, a trailing ``/`` matches directories only, a pattern
with no other ``/`` matches a name at any depth, and one with a ``/`` is anchored to
the rule's base directory. Matching works on bytes as git does: ``?``, ``*`` and
``[...]`` never match ``/``; ``**`` matches across directories only as a whole
part (``**/x``, ``x/**``, ``x/**/y``). A line that can never match anything (``/``,
a lone ``!``, a trailing lone ``\\``, an unclosed ``[``) is reported, not compiled.

Which rule decides a path, and how a directory's exclusion reaches its contents,
is the trim step's business: a pattern here answers one question, whether it
matches one path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SPECIAL = b"*?[\\"
_SLASH = ord("/")
_UNCLOSED = "a '[' is never closed"
_ANY_DIRS = b"(?:.*/)?"  # `**/`: no directory, or any number of them
_CLASSES: dict[bytes, frozenset[int]] = {
    b"alnum": frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    b"alpha": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"),
    b"blank": frozenset(b" \t"),
    b"cntrl": frozenset([*range(0x20), 0x7F]),
    b"digit": frozenset(b"0123456789"),
    b"graph": frozenset(range(0x21, 0x7F)),
    b"lower": frozenset(b"abcdefghijklmnopqrstuvwxyz"),
    b"print": frozenset(range(0x20, 0x7F)),
    b"punct": frozenset(c for c in range(0x21, 0x7F) if not chr(c).isalnum()),
    b"space": frozenset(b" \t\n\r"),
    b"upper": frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
    b"xdigit": frozenset(b"0123456789ABCDEFabcdef"),
}


class _NeverMatches(Exception):
    """The pattern cannot match any path (git's wildmatch aborts on it)."""


@dataclass(frozen=True)
class GitPattern:
    """One gitignore pattern, relative to ``base`` (``""`` or a directory ending in ``/``)."""

    base: str
    negated: bool
    must_be_dir: bool
    regex: re.Pattern[bytes]  # the whole path, from the bundle's root

    def matches(self, path: str, raw: bytes, is_dir: bool) -> bool:
        """Whether the pattern matches ``path`` (``raw``: the same path as UTF-8)."""
        if self.must_be_dir and not is_dir:
            return False
        return path.startswith(self.base) and self.regex.fullmatch(raw) is not None


def trim_trailing_spaces(line: str) -> str:
    """Unescaped trailing spaces removed, as git removes them (tabs stay)."""
    last_space = None
    i = 0
    while i < len(line):
        char = line[i]
        if char == " ":
            last_space = i if last_space is None else last_space
        elif char == "\\":
            i += 1
            if i == len(line):
                return line  # a lone trailing backslash: git leaves the line alone
            last_space = None
        else:
            last_space = None
        i += 1
    return line if last_space is None else line[:last_space]


def compile_pattern(line: str, base: str = "") -> tuple[GitPattern | None, str]:
    """(the pattern of a gitignore line, "") or (None, why it can never match).

    ``line`` is one line of an ignore file, not a comment, its trailing spaces not
    yet stripped; ``base`` is the directory it is relative to."""
    text = trim_trailing_spaces(line).encode("utf-8", "surrogateescape")
    negated = text.startswith(b"!")
    body = text[1:] if negated else text
    must_be_dir = body.endswith(b"/")
    if must_be_dir:
        body = body[:-1]
    if not body:
        return None, "it names no path"
    try:
        if b"/" not in body:  # a name, at any depth
            regex = b"(?:.*/)?" + _wild(body, pathname=False)
        else:
            if body.startswith(b"/"):
                body = body[1:]
            if not body or body.endswith(b"/"):
                return None, "it names no path"
            # git compares the leading literal part as it is, then matches the rest as
            # a pattern of its own: in `a**/b` the `**` starts that rest, as in `a/**/b`.
            literal = _simple_length(body)
            regex = re.escape(body[:literal]) + _wild(body[literal:], pathname=True)
    except _NeverMatches as exc:
        return None, str(exc)
    prefix = re.escape(base.encode("utf-8", "surrogateescape"))
    compiled = re.compile(prefix + regex, re.DOTALL)
    return GitPattern(base=base, negated=negated, must_be_dir=must_be_dir, regex=compiled), ""


def _simple_length(pattern: bytes) -> int:
    """How many leading bytes hold no wildcard (git compares them as they are)."""
    for i, char in enumerate(pattern):
        if char in _SPECIAL:
            return i
    return len(pattern)


def _wild(pattern: bytes, *, pathname: bool) -> bytes:
    """wildmatch's meaning of ``pattern`` as a regular expression over bytes."""
    out: list[bytes] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == ord("\\"):
            if i + 1 == len(pattern):
                raise _NeverMatches("it ends with a lone backslash")
            out.append(re.escape(pattern[i + 1 : i + 2]))
            i += 2
        elif char == ord("?"):
            out.append(b"[^/]")
            i += 1
        elif char == ord("["):
            matched, i = _bracket(pattern, i)
            out.append(matched)
        elif char == ord("*"):
            stars, i = _stars(pattern, i, pathname=pathname)
            if not (out and out[-1] == stars == _ANY_DIRS):  # `**/**/` is `**/`
                out.append(stars)
        else:
            out.append(re.escape(pattern[i : i + 1]))
            i += 1
    return b"".join(out)


def _stars(pattern: bytes, start: int, *, pathname: bool) -> tuple[bytes, int]:
    """A run of ``*`` at ``start``: (its expression, the index after it)."""
    end = start
    while end < len(pattern) and pattern[end] == ord("*"):
        end += 1
    whole_part = start == 0 or pattern[start - 1] == _SLASH
    if not pathname or end - start == 1 or not whole_part:
        return b"[^/]*", end
    rest = pattern[end:]
    if not rest or rest.startswith(b"\\/"):
        return b".*", end
    if rest.startswith(b"/"):
        return _ANY_DIRS, end + 1
    return b"[^/]*", end


def _bracket(pattern: bytes, start: int) -> tuple[bytes, int]:
    """A ``[...]`` at ``start``: (a class of the bytes it matches, the index after it)."""
    j = start + 1
    negated = pattern[j : j + 1] in (b"!", b"^")
    if negated:
        j += 1
    chosen: set[int] = set()
    previous: int | None = None
    first = True
    while True:
        if j >= len(pattern):
            raise _NeverMatches(_UNCLOSED)
        if pattern[j] == ord("]") and not first:
            break
        first = False
        j, previous = _bracket_item(pattern, j, previous, chosen)
    matched = (set(range(256)) - chosen) if negated else chosen
    matched.discard(_SLASH)
    return _byte_class(matched), j + 1


def _bracket_item(
    pattern: bytes, j: int, previous: int | None, chosen: set[int]
) -> tuple[int, int | None]:
    """One item of a bracket at ``j``, its bytes added to ``chosen``: (the index after
    it, the byte a ``-`` after it would start a range from)."""
    char = pattern[j]
    if char == ord("\\"):
        byte = _escaped(pattern, j)
        chosen.add(byte)
        return j + 2, byte
    if char == ord("-") and previous is not None and pattern[j + 1 : j + 2] not in (b"", b"]"):
        if pattern[j + 1] == ord("\\"):
            high, after = _escaped(pattern, j + 1), j + 3
        else:
            high, after = pattern[j + 1], j + 2
        chosen.update(range(previous, high + 1))
        return after, None
    if char == ord("[") and pattern[j + 1 : j + 2] == b":":
        return _named_class(pattern, j, chosen)
    chosen.add(char)
    return j + 1, char


def _escaped(pattern: bytes, j: int) -> int:
    if j + 1 >= len(pattern):
        raise _NeverMatches(_UNCLOSED)
    return pattern[j + 1]


def _named_class(pattern: bytes, j: int, chosen: set[int]) -> tuple[int, int | None]:
    """``[:name:]`` at ``j`` inside a bracket; a ``[`` that starts none is itself."""
    close = pattern.find(b"]", j + 2)
    if close < 0:
        raise _NeverMatches(_UNCLOSED)
    if close == j + 2 or pattern[close - 1] != ord(":"):
        chosen.add(ord("["))
        return j + 1, ord("[")
    name = pattern[j + 2 : close - 1]
    if name not in _CLASSES:
        raise _NeverMatches(f"[:{name.decode('utf-8', 'replace')}:] is not a class")
    chosen.update(_CLASSES[name])
    return close + 1, None


def _byte_class(matched: set[int]) -> bytes:
    if not matched:
        return b"(?!)"
    return b"[" + b"".join(b"\\x%02x" % byte for byte in sorted(matched)) + b"]"
