"""The request adapter: a request as index.js frames it, run through a WSGI app.

index.js sends the request as Node received it (method, raw URL, raw header pairs
as latin-1 code points, remote address, scheme) and its body as bytes; here it
becomes the WSGI environ a server on Cloud Functions would build (gunicorn's
choices where PEP 3333 leaves one), and the app's answer becomes (status, header
pairs, body) for the response frame. CloudEvents and legacy events arrive as HTTP
requests like any other: the Functions Framework's app decodes them. Part of the
worker (``worker.py`` loads it by path, never by name): Python 3.9 and the
standard library only.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

Headers = list[list[str]]
StartResponse = Callable[..., Callable[[bytes], object]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _native(text: str) -> str:
    """PEP 3333 'native strings': code points 0-255 standing for bytes."""
    return text.encode("latin-1", "replace").decode("latin-1")


def make_environ(
    request: dict[str, Any], body: bytes, *, multithread: bool = False
) -> dict[str, Any]:
    """The WSGI environ for one request, as a server on Cloud Functions would build it.

    ``multithread``: whether the worker may run several requests at once
    (``PYFN_THREADS`` above 1).
    """
    url = request["url"]
    path, _, query = url.partition("?")
    try:
        path_info = unquote_to_bytes(path).decode("latin-1")
    except Exception:
        path_info = path
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request["method"],
        "SCRIPT_NAME": "",
        "PATH_INFO": _native(path_info),
        "QUERY_STRING": _native(query),
        "SERVER_PROTOCOL": "HTTP/" + request.get("http_version", "1.1"),
        "REMOTE_ADDR": request.get("remote", "127.0.0.1"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": request.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": multithread,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    host = "localhost"
    length_sent = False
    for name, value in request["headers"]:
        if "_" in name:
            # WSGI spells `-` as `_`: `X_Goog_Authenticated_User_Email` would join the
            # platform's `X-Goog-Authenticated-User-Email`. Dropped, as gunicorn does.
            continue
        key = name.upper().replace("-", "_")
        value = _native(value)
        if key == "CONTENT_TYPE":
            environ.setdefault("CONTENT_TYPE", value)  # the first, as Node's body parser
            continue
        if key == "CONTENT_LENGTH":
            length_sent = True
            continue  # the body's true length is set below
        if key == "HOST":
            host = value
        key = "HTTP_" + key
        environ[key] = environ[key] + "," + value if key in environ else value
    if body or length_sent:
        # As gunicorn: no CONTENT_LENGTH for a request that sent none (a plain GET).
        environ["CONTENT_LENGTH"] = str(len(body))
    name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
    environ["SERVER_NAME"] = name or host
    environ["SERVER_PORT"] = port or ("443" if environ["wsgi.url_scheme"] == "https" else "80")
    return environ


def call_app(
    app: WsgiApp, request: dict[str, Any], body: bytes, *, multithread: bool = False
) -> tuple[int, Headers, bytes]:
    """Run the WSGI app for one request; return (status, headers, body)."""
    state: dict[str, Any] = {}

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info and state:
            raise exc_info[1].with_traceback(exc_info[2])
        state["status"] = int(status.split(" ", 1)[0])
        state["headers"] = [[str(k), str(v)] for k, v in headers]
        return lambda data: state.setdefault("early", []).append(data)

    result = app(make_environ(request, body, multithread=multithread), start_response)
    try:
        chunks = list(state.pop("early", [])) + [bytes(c) for c in result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return state["status"], state["headers"], b"".join(chunks)
