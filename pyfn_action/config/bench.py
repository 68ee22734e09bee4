"""The requests a function is measured with: ``[[bench]]`` tables of its ``pyfn.toml``.

::

    [[bench]]
    name = "score"          # optional; defaults to METHOD PATH
    method = "POST"
    path = "/score?top=5"
    headers = { "Content-Type" = "application/json" }
    body_file = "bench/score.json"   # or body = "..."
    status = 200            # expected; default 200

Every field is checked before anything is built: unknown keys, a method HTTP has
no such name for, a path that is not one, header names and values that could
split a request, a body file outside the function's directory or missing. The
file comes from the repository (a pull request's, in the Action): a path is
never followed out of the source tree, and sizes are bounded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfn_action.config.files import read_file_config
from pyfn_action.config.keys import suggest
from pyfn_action.errors import ConfigError

FIELDS = ("name", "method", "path", "headers", "body", "body_file", "status")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_REQUESTS = 50
MAX_BODY = 10 * 1024 * 1024  # 1st gen's request limit: every generation takes it
MAX_PATH = 2048
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")  # RFC 9110's token
_PATH = re.compile(r"^/[\x21-\x7e]*$")  # visible ASCII, no space: as sent on the wire
# Set by the client for every request: a request may not set them (or split them).
OWN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "expect"}


@dataclass(frozen=True)
class BenchRequest:
    """One declared request, and the status both runtimes must answer it with."""

    name: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    status: int = 200

    @property
    def label(self) -> str:
        return f"{self.method} {self.path.split('?', 1)[0]}"


def read_requests(source: Path) -> tuple[BenchRequest, ...]:
    """The function's ``[[bench]]`` requests, each checked; ``()`` when it declares none."""
    table, origin = read_file_config(source)
    raw = table.get("bench")
    if raw is None:
        return ()
    where = origin or "pyfn.toml"
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        raise ConfigError(
            f"bench in {where} is not a list of tables",
            fix="Write each request as a [[bench]] table",
        )
    if len(raw) > MAX_REQUESTS:
        raise ConfigError(
            f"{where} declares {len(raw)} bench requests", fix=f"Keep {MAX_REQUESTS} at most"
        )
    requests = [_request(item, n, where, source) for n, item in enumerate(raw, 1)]
    names = [r.name for r in requests]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(
            f"Two [[bench]] requests in {where} are named {twice[0]!r}",
            fix="Give each its own name",
        )
    return tuple(requests)


def _request(item: Mapping[str, Any], n: int, where: str, source: Path) -> BenchRequest:
    at = f"[[bench]] #{n} in {where}"
    for key in item:
        if key not in FIELDS:
            hint = suggest(key, FIELDS) or f"the keys are {', '.join(FIELDS)}"
            raise ConfigError(f"Unknown key {key!r} in {at}", fix=hint[0].upper() + hint[1:])
    method = _text(item, "method", at, default="GET").upper()
    if method not in METHODS:
        raise ConfigError(
            f"{at}: method {method!r} is not one pyfn bench sends",
            fix=f"Use one of {', '.join(METHODS)}",
        )
    path = _text(item, "path", at, default="/")
    if len(path) > MAX_PATH or not _PATH.match(path):
        raise ConfigError(
            f"{at}: path {path[:80]!r} is not a request path",
            why="a path starts with '/' and holds visible ASCII only (spaces and non-ASCII "
            "characters are percent-encoded)",
            fix="Write it as it goes on the wire, e.g. /score?top=5",
        )
    status = item.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise ConfigError(
            f"{at}: status {status!r} is not an HTTP status",
            fix="Give the status both runtimes must answer, e.g. 200",
        )
    name = _text(item, "name", at, default=f"{method} {path}")
    if not name.isprintable() or len(name) > 80:
        raise ConfigError(f"{at}: the name is not one line of at most 80 characters")
    return BenchRequest(
        name=name,
        method=method,
        path=path,
        headers=_headers(item, at),
        body=_body(item, at, source),
        status=status,
    )


def _text(item: Mapping[str, Any], key: str, at: str, *, default: str) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{at}: {key} is not a non-empty string")
    return value


def _headers(item: Mapping[str, Any], at: str) -> tuple[tuple[str, str], ...]:
    raw = item.get("headers", {})
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{at}: headers is not a table",
            fix='Write headers = { "Content-Type" = "application/json" }',
        )
    out = []
    for name, value in raw.items():
        if not _TOKEN.match(name) or name.lower() in OWN_HEADERS:
            raise ConfigError(
                f"{at}: {name[:40]!r} is not a header a request may set",
                why="a header name is a token, and Host, Content-Length, Transfer-Encoding, "
                "Connection and Expect are the client's own",
            )
        if not isinstance(value, str) or any(c in value for c in "\r\n\0") or len(value) > 8192:
            raise ConfigError(f"{at}: the value of header {name!r} is not one line of text")
        out.append((name, value))
    return tuple(out)


def _body(item: Mapping[str, Any], at: str, source: Path) -> bytes:
    if "body" in item and "body_file" in item:
        raise ConfigError(f"{at} sets both body and body_file", fix="Keep one of them")
    if "body" in item:
        body = item["body"]
        if not isinstance(body, str):
            raise ConfigError(f"{at}: body is not a string", fix="Use body_file for bytes")
        data = body.encode("utf-8")
    elif "body_file" in item:
        data = _body_file(item["body_file"], at, source)
    else:
        return b""
    if len(data) > MAX_BODY:
        raise ConfigError(
            f"{at}: the body is {len(data)} bytes",
            why="Cloud Functions takes requests of 10 MB at most (1st gen)",
        )
    return data


def _body_file(value: Any, at: str, source: Path) -> bytes:
    if not isinstance(value, str) or not value or Path(value).is_absolute():
        raise ConfigError(
            f"{at}: body_file is not a path relative to the function",
            fix='Write body_file = "bench/score.json"',
        )
    root = source.resolve()
    path = (root / value).resolve()
    if ".." in Path(value).parts or not path.is_relative_to(root):
        raise ConfigError(
            f"{at}: body_file {value!r} leads out of the function's directory",
            why="pyfn never reads a file outside the source tree for it",
            fix="Keep the body beside the function, e.g. bench/score.json",
        )
    if not path.is_file():
        raise ConfigError(
            f"{at}: body_file {value!r} does not exist in {source}",
            fix="Check the path (relative to the function's directory)",
        )
    if path.stat().st_size > MAX_BODY:
        raise ConfigError(
            f"{at}: body_file {value!r} is over 10 MB",
            why="Cloud Functions takes requests of 10 MB at most (1st gen)",
        )
    return path.read_bytes()
