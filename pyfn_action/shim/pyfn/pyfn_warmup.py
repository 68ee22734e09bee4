"""The idle-time warm-up: synthetic requests that warm PyPy's JIT on the framework's
request path, never the user's function nor the user's state.

Part of the worker (``worker.py`` loads it by path, never by name, and hands it
the request adapter's ``call_app``): Python 3.9 and the standard library only.
"""

from __future__ import annotations

import contextvars
import importlib
import json
import logging
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for mypy alone, which reads the worker's modules as modules beside this one
    from collections.abc import Callable

    from .pyfn_wsgi import Headers, WsgiApp

    CallApp = Callable[[WsgiApp, dict[str, Any], bytes], tuple[int, Headers, bytes]]

_SHIM = os.path.dirname(os.path.abspath(__file__))  # the bundle's pyfn/
_WARMUP_HEADERS = [["Host", "localhost"], ["User-Agent", "pyfn-warmup"], ["Accept", "*/*"]]


def _warmup_request(signature: str) -> dict[str, Any]:
    """A request the framework answers itself, without calling the user's function.

    HTTP functions: /robots.txt, which the Functions Framework always answers 404.
    CloudEvent functions: a GET, which it answers 405; legacy event functions: a GET,
    which it answers with an empty 200 of its own.
    """
    path = "/robots.txt" if signature == "http" else "/"
    return {
        "method": "GET",
        "url": path,
        "http_version": "1.1",
        "headers": _WARMUP_HEADERS,
        "remote": "127.0.0.1",
        "scheme": "http",
        "id": 0,
    }


def _warmup_function(request: Any) -> str:
    """Stands in for the user's function in the private warm-up app."""
    return "warm\n"


def _warmup_app(signature: str) -> WsgiApp | None:
    """A private app the Functions Framework wires as it wires the user's, around a stand-in.

    Same routes, view wrapper, after-request hook and execution-id middleware as
    the real app, so warming it compiles the code a real request runs (routing to
    the function, making a response from its return value), not only the 404 path.
    None if this framework cannot build one (then the real app's 404 path is warmed).
    """
    if signature != "http":
        return None
    try:
        import functions_framework

        flask = importlib.import_module("flask")
        app = flask.Flask("pyfn_warmup", root_path=_SHIM)
        functions_framework._configure_app(app, _warmup_function, "http")
        execution_id = getattr(functions_framework, "execution_id", None)
        if execution_id is not None:
            app.wsgi_app = execution_id.WsgiMiddleware(app.wsgi_app)
    except Exception:
        return None
    warm: WsgiApp = app
    return warm


class WarmUp:
    """Synthetic requests for idle time: never the user's function, never the user's state.

    Each runs the whole per-request path of the worker (frame header decoding, the
    WSGI call through ``call``, the request adapter's ``call_app``, response header
    encoding) in a copy of the current context, so context variables the
    frameworks set for it do not outlive it.
    """

    def __init__(self, app: WsgiApp, signature: str, count: int, call: CallApp) -> None:
        self.count = self.left = count
        self.ran = 0  # synthetic requests answered
        self.arrived = 0  # real requests read while it was under way
        self.real_app = app
        self.signature = signature
        self.call = call
        self.app: WsgiApp | None = None
        self.frame = b""
        if count <= 0:  # its one line, at once: nothing will run
            logging.getLogger("pyfn.worker").info("pyfn warm-up: off (PYFN_WARMUP=0)")

    def step(self) -> None:
        self.left -= 1
        if self.app is None:  # built on first use: after the worker said it is ready
            private = _warmup_app(self.signature)
            self.app = private or self.real_app
            request = _warmup_request(self.signature)
            if private is not None:
                request["url"] = "/"  # the stand-in function's route
            self.frame = json.dumps(request).encode("utf-8")
        try:
            request = json.loads(self.frame.decode("utf-8"))
            status, headers, _ = contextvars.copy_context().run(self.call, self.app, request, b"")
            json.dumps({"id": request["id"], "status": status, "headers": headers})
            self.ran += 1
        except Exception:
            self.left = 0  # whatever went wrong, real requests will show it
        if self.left <= 0:  # one line per worker: what ran, and what it did not hold up
            logging.getLogger("pyfn.worker").info(
                "pyfn warm-up: %d of %d synthetic requests ran while idle; %d real requests "
                "came before it was done",
                self.ran,
                self.count,
                self.arrived,
            )
