"""The Python side of the pyfn shim: a persistent worker serving requests from index.js.

Runs inside the bundle on its own PyPy (``pypy/bin/pypy3.X -s pyfn/worker.py``).
Requests arrive on fd 3 and responses leave on fd 4, as frames::

    u32 header length | u32 body length | header (JSON, UTF-8) | body (raw bytes)

so nothing the function prints (fd 1, fd 2) can corrupt the protocol: index.js
turns those streams into log lines. The user's code is the standard Python
Functions Framework code; its WSGI app is called in-process, one request at a
time. This file must run on every PyPy 3 the bundle may carry (3.9 and later).
"""

from __future__ import annotations

import contextlib
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

    def pending(self) -> bool:
        """Whether a request has (at least partly) arrived, without blocking."""
        if self.buffer:
            return True
        readable, _, _ = select.select([self.fd], [], [], 0)
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
        from urllib.parse import unquote_to_bytes

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


def load_app(manifest: dict[str, Any]) -> WsgiApp:
    function = manifest["function"]
    sys.path[:0] = [os.path.join(_BUNDLE, "app"), os.path.join(_BUNDLE, "site")]
    os.environ.setdefault("FUNCTION_TARGET", function["entry_point"])
    import functions_framework

    signature = "cloudevent" if function["signature"] == "cloudevent" else "http"
    app: WsgiApp = functions_framework.create_app(
        target=function["entry_point"],
        source=os.path.join(_BUNDLE, "app", "main.py"),
        signature_type=signature,
    )
    return app


def _warmup_request(signature: str) -> dict[str, Any]:
    """A request the framework answers itself, without calling the user's function.

    HTTP functions: /robots.txt, which the Functions Framework always answers 404.
    CloudEvent functions: a GET, which it answers 405.
    """
    path = "/robots.txt" if signature == "http" else "/"
    return {"method": "GET", "url": path, "headers": [["Host", "localhost"]], "id": 0}


def serve(
    app: WsgiApp,
    request_fd: int = REQUEST_FD,
    response_fd: int = RESPONSE_FD,
    *,
    warmup: int = 0,
    signature: str = "http",
) -> None:
    """Answer framed requests until the pipe closes.

    While no request is waiting, up to ``warmup`` synthetic requests that never
    reach the user's code run through the framework, so PyPy's JIT has compiled
    its hot paths before real traffic needs them. A real request never waits
    behind more than one of them.
    """
    reader = FrameReader(request_fd)
    synthetic = _warmup_request(signature)
    while True:
        if warmup > 0 and not reader.pending():
            warmup -= 1
            try:
                call_app(app, synthetic, b"")
            except Exception:
                warmup = 0  # whatever went wrong, real requests will show it
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


def _tune_jit() -> None:
    """Once the function is loaded, let PyPy's JIT compile hot request paths sooner.

    Importing runs with PyPy's defaults (lower thresholds would compile import-time
    code and slow the cold start); serving uses ``PYFN_JIT`` (``--jit`` syntax;
    ``default`` keeps PyPy's own settings).
    """
    params = os.environ.get("PYFN_JIT", DEFAULT_JIT)
    if params == "default":
        return
    try:
        import pypyjit
    except ImportError:
        return  # not PyPy
    try:
        pypyjit.set_param(params)
    except Exception:
        logging.getLogger("pyfn.worker").warning("PYFN_JIT=%r is not valid; ignored", params)


def _warmup_count() -> int:
    raw = os.environ.get("PYFN_WARMUP", "")
    return int(raw) if raw.isdigit() else DEFAULT_WARMUP


def main() -> int:
    _die_with_parent()
    _configure_logging()
    started = time.monotonic()
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
    _tune_jit()
    load_ms = round((time.monotonic() - started) * 1000)
    write_frame(RESPONSE_FD, {"type": "ready", "pid": os.getpid(), "load_ms": load_ms})
    signature = "cloudevent" if manifest["function"]["signature"] == "cloudevent" else "http"
    serve(app, warmup=_warmup_count(), signature=signature)
    return 0


if __name__ == "__main__":
    sys.exit(main())
