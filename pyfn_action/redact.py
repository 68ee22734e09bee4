"""URLs as they may be shown: never their user info, password, query or fragment.

A URL may carry secrets: a signed URL's query, ``user:password@``. pyfn uses them
to fetch (:mod:`pyfn_action.fetch`) and never shows or records them:
:func:`redact_url` is what messages, logs and records hold, and :func:`scrub` takes
them out of a message pyfn did not write (an error from ``urllib``). A URL is read
here as ``urllib.parse`` reads it, so that what is hidden is what would be sent.
"""

from __future__ import annotations

import re
import urllib.parse

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
# host[:port] as RFC 3986 spells it (a registered name or an IP literal); empty for file://
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]*)(?::[0-9]{0,5})?")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
MALFORMED = "<a malformed address>"


def _clean(location: str) -> str:
    """``location`` without the characters ``urllib.parse`` drops or strips (tabs, line
    breaks, spaces at either end), so a URL reads here as urllib will read it."""
    return _CONTROL_OR_SPACE.sub("", location) if _SCHEME.match(location.strip()) else location


def url_scheme(location: str) -> str | None:
    """The scheme of ``location`` written as a URL (``scheme://…``), as written; else None."""
    match = _SCHEME.match(_clean(location))
    return match.group(1) if match is not None else None


def url_parts(location: str) -> tuple[str, str, str, str] | None:
    """(scheme, user info, host[:port], path) of a ``scheme://`` URL; query and fragment
    are dropped. None when ``location`` is not such a URL."""
    location = _clean(location)
    match = _SCHEME.match(location)
    if match is None:
        return None
    rest = location[match.end() :].split("#", 1)[0].split("?", 1)[0]
    authority, slash, path = rest.partition("/")
    userinfo, _, host = authority.rpartition("@")
    return match.group(1), userinfo, host, slash + path


def is_malformed(url: str) -> bool:
    """``url`` is no ``scheme://`` URL, its host part is malformed (where a password
    with a ``/`` in it would end up), or it holds a control character or a space."""
    parts = url_parts(url)
    return parts is None or not _HOST.fullmatch(parts[2]) or bool(_CONTROL_OR_SPACE.search(url))


def redact_url(location: str) -> str:
    """``location`` as it may be printed or recorded: no user info, query or fragment.

    A local path is returned as it is. A URL whose host part is malformed (where a
    password with a ``/`` in it would end up) is shown without its host and path.
    """
    parts = url_parts(location)
    if parts is None:
        return location
    scheme, _, host, path = parts
    if not _HOST.fullmatch(host):
        return f"{scheme}://{MALFORMED}"
    return f"{scheme}://{host}{path}"


def _secrets(url: str) -> list[str]:
    """What must not appear in a message about ``url``: user info, password, query, fragment."""
    found: list[str] = []
    url = _clean(url)
    match = _SCHEME.match(url)
    if match is None:
        return found
    rest = url[match.end() :]
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    userinfo = rest.partition("/")[0].rpartition("@")[0]
    password = userinfo.partition(":")[2]
    for secret in (userinfo, password, query, fragment):
        if secret:
            found += [secret, urllib.parse.unquote(secret)]
    return sorted(set(found), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """``text`` (an error's message) with every secret of ``url`` replaced by ``***``."""
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text
