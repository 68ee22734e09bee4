"""Where pip finds packages (an index, extra indexes, find-links), and the masking of
the credentials their URLs may carry, in logs, messages and pip's own output."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Sources", "mask_text", "mask_url", "url_secrets"]

# A URL in free text: scheme, authority (up to a path, query, fragment or the text's
# end), path; then the query (not its trailing punctuation). Quotes and angle brackets
# end it.
_URL = re.compile(
    r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<netloc>[^/?#\s\"'<>]*)"
    r"(?P<path>[^?#\s\"'<>]*)(?P<query>\?(?:[^#\s\"'<>]*[^#\s\"'<>.,;:!?)\]])?)?"
)
_MASK = "***"
_MIN_SECRET = 4  # shorter "secrets" would mask ordinary words everywhere


def _userinfo(match: re.Match[str]) -> tuple[str | None, str, str]:
    """(user info or None, host, path) of a URL found in text.

    A password with an unencoded ``/`` ends the authority early (``user:pa`` with
    ``/ss@host/simple`` as its path): when what precedes the ``/`` cannot be a
    host and port and the path holds an ``@``, everything up to that ``@`` is
    taken as user info (more is masked rather than less)."""
    netloc, path = match["netloc"], match["path"]
    userinfo, at, host = netloc.rpartition("@")
    if at:
        return userinfo, host, path
    _, colon, port = netloc.partition(":")
    if colon and not port.isdigit() and "@" in path:
        inside, _, rest = path.rpartition("@")
        host, slash, tail = rest.partition("/")
        return netloc + inside, host, slash + tail
    return None, netloc, path


def _redact_match(match: re.Match[str]) -> str:
    userinfo, host, path = _userinfo(match)
    netloc = host
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:{_MASK}@{host}" if colon else f"{_MASK}@{host}"
    query = match["query"] or ""
    if len(query) > 1:
        parts = query[1:].split("&")
        query = "?" + "&".join(
            f"{part.partition('=')[0]}={_MASK}" if "=" in part else _MASK for part in parts
        )
    return f"{match['scheme']}{netloc}{path}{query}"


def mask_url(url: str) -> str:
    """``url`` with its credentials masked: the password of ``user:password@`` (a lone
    ``token@`` entirely) and every query value. Logs and messages show only this."""
    return _URL.sub(_redact_match, url)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` (pip's output, a command line) with every URL's credentials masked,
    and any of ``secrets`` (as :func:`url_secrets` finds them) that appears bare."""
    text = _URL.sub(_redact_match, text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        text = text.replace(secret, _MASK)
    return text


def url_secrets(urls: Iterable[str]) -> set[str]:
    """The credentials in ``urls``: passwords, lone user tokens and query values, as
    written and percent-decoded."""
    found: set[str] = set()
    for text in urls:
        for match in _URL.finditer(text):
            userinfo, _, _ = _userinfo(match)
            values = []
            if userinfo is not None:
                user, colon, password = userinfo.partition(":")
                values.append(password if colon else user)
            query = (match["query"] or "")[1:]
            values += [part.partition("=")[2] or part for part in query.split("&") if part]
            for value in values:
                found |= {value, urllib.parse.unquote(value), urllib.parse.unquote_plus(value)}
    return {s for s in found if len(s) >= _MIN_SECRET}


@dataclass(frozen=True)
class Sources:
    """Where pip looks for packages; ``None``/empty means pip's own configuration."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False  # find_links only

    def pip_args(self) -> list[str]:
        args: list[str] = ["--no-index"] if self.no_index else []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        return args
