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


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks: list[bytes] = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int) -> tuple[dict[str, Any], bytes] | None:
    head = _read_exact(fd, _HEADER.size)
    if head is None:
        return None
    header_len, body_len = _HEADER.unpack(head)
    header = _read_exact(fd, header_len)
    body = _read_exact(fd, body_len) if body_len else b""
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


def serve(app: WsgiApp, request_fd: int = REQUEST_FD, response_fd: int = RESPONSE_FD) -> None:
    while True:
        frame = read_frame(request_fd)
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
    write_frame(
        RESPONSE_FD,
        {
            "type": "ready",
            "pid": os.getpid(),
            "load_ms": round((time.monotonic() - started) * 1000),
        },
    )
    serve(app)
    return 0


if __name__ == "__main__":
    sys.exit(main())
