"""The Python side of the pyfn shim: a persistent worker serving requests from index.js.

Runs inside the bundle on its own PyPy (``pypy/bin/pypy3.X -s pyfn/worker.py``).
Requests arrive on fd 3 and responses leave on fd 4, as frames::

    u32 header length | u32 body length | header (JSON, UTF-8) | body (raw bytes)

so nothing the function prints (fd 1, fd 2) can corrupt the protocol: index.js
turns those streams into log lines. The user's code is the standard Python
Functions Framework code; its WSGI app is called in-process, one request at a
time. This file must run on every PyPy 3 the bundle may carry (3.9 and later).

index.js starts it with PyPy's JIT off (``--jit off``): tracing import-time code
that runs once only slows the cold start. The JIT is switched on once the
function is loaded and the worker is first idle or has answered one request.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import importlib
import io
import json
import logging
import os
import select
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import unquote_to_bytes

Headers = list[list[str]]
StartResponse = Callable[..., Callable[[bytes], object]]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

REQUEST_FD = 3
RESPONSE_FD = 4
DEFAULT_WARMUP = 3000  # synthetic requests while idle after start (PYFN_WARMUP)
DEFAULT_JIT = "threshold=200,function_threshold=300,trace_eagerness=50"  # PYFN_JIT
_HEADER = struct.Struct(">II")
_BUNDLE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _die_with_parent() -> None:
    """Ask Linux to kill this worker when index.js's process goes away.

    Without prctl (not Linux), EOF on fd 3 still ends the worker.
    """
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, 9, 0, 0, 0)  # SIGKILL
    if os.getppid() == 1:
        os._exit(0)


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line, with the severity Cloud Logging reads."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message += "\n" + self.formatException(record.exc_info)
        return json.dumps({"severity": record.levelname, "message": message, "logger": record.name})


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class FrameReader:
    """Frames from a pipe, read in large chunks: one system call per request, usually."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def pending(self, timeout: float = 0.0) -> bool:
        """Whether a request has (at least partly) arrived, waiting at most ``timeout`` s."""
        if self.buffer:
            return True
        readable, _, _ = select.select([self.fd], [], [], timeout)
        return bool(readable)

    def _take(self, size: int) -> bytes | None:
        while len(self.buffer) < size:
            chunk = os.read(self.fd, max(1 << 16, size - len(self.buffer)))
            if not chunk:
                return None
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        head = self._take(_HEADER.size)
        if head is None:
            return None
        header_len, body_len = _HEADER.unpack(head)
        header = self._take(header_len)
        body = self._take(body_len) if body_len else b""
        if header is None or body is None:
            return None
        return json.loads(header.decode("utf-8")), body


def write_frame(fd: int, header: dict[str, Any], body: bytes = b"") -> None:
    data = json.dumps(header).encode("utf-8")
    view = memoryview(_HEADER.pack(len(data), len(body)) + data + body)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _native(text: str) -> str:
    """PEP 3333 'native strings': code points 0-255 standing for bytes."""
    return text.encode("latin-1", "replace").decode("latin-1")


def make_environ(request: dict[str, Any], body: bytes) -> dict[str, Any]:
    """The WSGI environ for one request, as a server on Cloud Functions would build it."""
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
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    host = "localhost"
    for name, value in request["headers"]:
        key = name.upper().replace("-", "_")
        value = _native(value)
        if key == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
            continue
        if key == "CONTENT_LENGTH":
            continue  # the body's true length is set below
        if key == "HOST":
            host = value
        key = "HTTP_" + key
        environ[key] = environ[key] + "," + value if key in environ else value
    environ["CONTENT_LENGTH"] = str(len(body))
    name, _, port = host.rpartition(":") if host.rsplit(":", 1)[-1].isdigit() else (host, "", "")
    environ["SERVER_NAME"] = name or host
    environ["SERVER_PORT"] = port or ("443" if environ["wsgi.url_scheme"] == "https" else "80")
    return environ


def call_app(app: WsgiApp, request: dict[str, Any], body: bytes) -> tuple[int, Headers, bytes]:
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

    result = app(make_environ(request, body), start_response)
    try:
        chunks = list(state.pop("early", [])) + [bytes(c) for c in result]
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return state["status"], state["headers"], b"".join(chunks)


def _add_paths(app: str, site_dir: str) -> None:
    """``app`` then ``site_dir`` first on ``sys.path``, with ``site_dir``'s ``.pth`` files run.

    Installed distributions may rely on ``.pth`` files (old-style namespace
    packages, for example), which a runtime's site-packages would process.
    """
    import site

    site.addsitedir(site_dir)  # appends site_dir and what its .pth files add
    sys.path.remove(site_dir)
    sys.path[:0] = [app, site_dir]


def load_app(manifest: dict[str, Any]) -> WsgiApp:
    function = manifest["function"]
    _add_paths(os.path.join(_BUNDLE, "app"), os.path.join(_BUNDLE, "site"))
    os.environ.setdefault("FUNCTION_TARGET", function["entry_point"])
    # Importing the framework allocates what stays alive: a major collection would
    # find little garbage and take a third of the import time. The user's module
    # (run by create_app) is loaded with the collector on, as ever.
    collecting = gc.isenabled()
    gc.disable()
    try:
        import functions_framework
    finally:
        if collecting:
            gc.enable()

    signature = "cloudevent" if function["signature"] == "cloudevent" else "http"
    app: WsgiApp = functions_framework.create_app(
        target=function["entry_point"],
        source=os.path.join(_BUNDLE, "app", "main.py"),
        signature_type=signature,
    )
    return app


_WARMUP_HEADERS = [["Host", "localhost"], ["User-Agent", "pyfn-warmup"], ["Accept", "*/*"]]
FIRST_REQUEST_GRACE = 0.02  # seconds: a request queued during the cold start goes first


def _warmup_request(signature: str) -> dict[str, Any]:
    """A request the framework answers itself, without calling the user's function.

    HTTP functions: /robots.txt, which the Functions Framework always answers 404.
    CloudEvent functions: a GET, which it answers 405.
    """
    path = "/robots.txt" if signature == "http" else "/"
    return {
        "method": "GET", "url": path, "http_version": "1.1", "headers": _WARMUP_HEADERS,
        "remote": "127.0.0.1", "scheme": "http", "id": 0,
    }  # fmt: skip


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
        app = flask.Flask("pyfn_warmup", root_path=os.path.join(_BUNDLE, "pyfn"))
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
    WSGI call, response header encoding) in a copy of the current context, so
    context variables the frameworks set for it do not outlive it.
    """

    def __init__(self, app: WsgiApp, signature: str, count: int) -> None:
        self.left = count
        self.real_app = app
        self.signature = signature
        self.app: WsgiApp | None = None
        self.frame = b""

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
            status, headers, _ = contextvars.copy_context().run(call_app, self.app, request, b"")
            json.dumps({"id": request["id"], "status": status, "headers": headers})
        except Exception:
            self.left = 0  # whatever went wrong, real requests will show it


def serve(
    app: WsgiApp,
    request_fd: int = REQUEST_FD,
    response_fd: int = RESPONSE_FD,
    *,
    warmup: int = 0,
    signature: str = "http",
    start_jit: Callable[[], None] = lambda: None,
) -> None:
    """Answer framed requests until the pipe closes.

    While no request is waiting, up to ``warmup`` synthetic requests that never
    reach the user's code run through the framework, so PyPy's JIT has compiled
    its hot paths before real traffic needs them. A real request never waits
    behind more than one of them, and one already queued while the worker was
    loading goes before all of them.

    ``start_jit`` runs once, when the worker is first idle or has answered its
    first request: a request that waited for a cold start is not also made to
    wait for the JIT to trace code that the first request runs once.
    """
    reader = FrameReader(request_fd)
    warm = WarmUp(app, signature, warmup)
    grace = FIRST_REQUEST_GRACE
    jit_started = False
    while True:
        if warm.left > 0 and not reader.pending(grace):
            if not jit_started:
                jit_started = True
                start_jit()
            warm.step()
            grace = 0.0
            continue
        frame = reader.read()
        if frame is None:
            return  # index.js closed the pipe: its process is gone or shutting down
        request, body = frame
        try:
            status, headers, payload = call_app(app, request, body)
        except Exception:
            logging.getLogger("pyfn.worker").error(
                "unhandled error in %s %s\n%s",
                request.get("method"), request.get("url"), traceback.format_exc(),
            )  # fmt: skip
            status, headers, payload = (
                500,
                [["Content-Type", "text/plain"]],
                b"Internal Server Error\n",
            )
        write_frame(
            response_fd, {"id": request["id"], "status": status, "headers": headers}, payload
        )
        if not jit_started:
            jit_started = True
            start_jit()


def _tune_jit() -> None:
    """Switch PyPy's JIT on, tuned for request paths (``serve`` says when).

    Loading runs with the JIT off (index.js passes ``--jit off``: tracing code
    that runs once costs more than it saves); serving uses ``PYFN_JIT`` (``--jit``
    syntax) over PyPy's defaults, which ``default`` keeps as they are.
    """
    params = os.environ.get("PYFN_JIT", DEFAULT_JIT)
    try:
        import pypyjit
    except ImportError:
        return  # not PyPy
    pypyjit.set_param("default")
    if params == "default":
        return
    try:
        pypyjit.set_param(params)
    except Exception:
        logging.getLogger("pyfn.worker").warning("PYFN_JIT=%r is not valid; ignored", params)


def _warmup_count() -> int:
    raw = os.environ.get("PYFN_WARMUP", "")
    return int(raw) if raw.isdigit() else DEFAULT_WARMUP


def main() -> int:
    started = time.monotonic()
    _configure_logging()
    with open(os.path.join(_BUNDLE, "pyfn", "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    try:
        app = load_app(manifest)
    except BaseException:
        logging.getLogger("pyfn.worker").critical(
            "cannot load the function\n%s", traceback.format_exc()
        )
        write_frame(RESPONSE_FD, {"type": "fatal", "message": "cannot load the function"})
        return 1
    load_ms = round((time.monotonic() - started) * 1000)
    write_frame(RESPONSE_FD, {"type": "ready", "pid": os.getpid(), "load_ms": load_ms})
    _die_with_parent()  # not before: ctypes alone takes tens of ms to import on PyPy
    signature = "cloudevent" if manifest["function"]["signature"] == "cloudevent" else "http"
    serve(app, warmup=_warmup_count(), signature=signature, start_jit=_tune_jit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
