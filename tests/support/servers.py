"""Loopback HTTP servers that stand in for the download host and the package index.

Every server binds 127.0.0.1 on a free port, runs in a daemon thread and is
shut down when its ``with`` block ends.
"""

from __future__ import annotations

import html
import json
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name


@dataclass
class Routes:
    """What the server answers: path → bytes, with optional faults."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_after: dict[str, int] = field(default_factory=dict)  # send this many bytes, then close
    hits: list[str] = field(default_factory=list)
    # When set, every request must carry this Authorization header, or gets a 401.
    authorization: str | None = None
    refused: list[str] = field(default_factory=list)  # paths asked without it


def _handler(routes: Routes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_HEAD(self) -> None:  # as a real index answers it (uv asks before a range)
            self._answer(head=True)

        def do_GET(self) -> None:
            self._answer(head=False)

        def _answer(self, *, head: bool) -> None:
            path = self.path.split("?", 1)[0]
            if not head:
                routes.hits.append(path)
            if routes.authorization and self.headers.get("Authorization") != routes.authorization:
                routes.refused.append(path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="index"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = routes.files.get(path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            kind = "text/html" if path.endswith("/") else "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if head:
                return
            cut = routes.cut_after.get(path)
            if cut is not None:
                self.wfile.write(body[:cut])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

    return Handler


def free_port() -> int:
    """A loopback port nobody listens on now, for a server started by a test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(
    port: int, process: subprocess.Popen[bytes], seconds: float, why: Callable[[], str]
) -> None:
    """Return once something accepts connections on the loopback ``port``; fail with
    ``why()`` if ``process`` exits first or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(why()) from None
            time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; reaped either way."""
    process.terminate()
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def pyfn_serve(
    bundle: Path, port: int, env: Mapping[str, str], **popen: Any
) -> subprocess.Popen[bytes]:
    """``pyfn serve --bundle BUNDLE --port PORT`` in a process of its own, as a user starts it."""
    argv = [
        sys.executable,
        "-m",
        "pyfn_action",
        "serve",
        "--bundle",
        str(bundle),
        "--port",
        str(port),
    ]
    return subprocess.Popen(argv, env=dict(env), **popen)


class JsonHandler(BaseHTTPRequestHandler):
    """A fake's handler: HTTP/1.1, quiet, the request's body read whole, JSON answers."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send_json(self, status: int, answer: Any) -> None:
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def running(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threaded HTTP server with ``handler`` on a free loopback port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def serve(routes: Routes) -> Iterator[str]:
    """Serve ``routes`` on loopback; yields the base URL (no trailing slash)."""
    with running(_handler(routes)) as base:
        yield base


_DIST = re.compile(r"^(?P<name>.+?)-\d")


def index_routes(*directories: Path, extra: Mapping[str, bytes] | None = None) -> Routes:
    """A PEP 503 simple index of the wheels and sdists in ``directories``.

    Like some private indexes, it publishes no Requires-Python for any file,
    so pip learns it only from each distribution's own metadata.
    """
    files: dict[str, bytes] = {}
    for directory in directories:
        for path in sorted(directory.iterdir()):
            if path.is_file():
                files[path.name] = path.read_bytes()
    files.update(extra or {})
    projects: dict[str, list[str]] = {}
    for name in files:
        match = _DIST.match(name)
        if match:
            projects.setdefault(canonicalize_name(match["name"]), []).append(name)
    routes = Routes()
    links = "".join(f'<a href="{p}/">{p}</a>\n' for p in sorted(projects))
    routes.files["/simple/"] = f"<html><body>\n{links}</body></html>".encode()
    for project, names in projects.items():
        anchors = "".join(
            f'<a href="../../files/{html.escape(n)}">{html.escape(n)}</a><br>\n'
            for n in sorted(names)
        )
        routes.files[f"/simple/{project}/"] = f"<html><body>\n{anchors}</body></html>".encode()
    for name, body in files.items():
        routes.files[f"/files/{name}"] = body
    return routes
