"""Cloud Storage on loopback: gcp-storage-emulator, and a fault-injecting proxy in front.

The emulator ignores preconditions (``ifGenerationMatch``), so the proxy
enforces ``ifGenerationMatch=0`` on uploads itself, by asking the emulator
whether the object exists, and can inject the faults a real network has:
an HTTP status for the next N matching requests, or a connection dropped
half-way through a request body. It rewrites the resumable session URL in
``Location`` so every request of an upload goes through it.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from .servers import free_port, running, stop_process

HOST = "127.0.0.1"
START_TIMEOUT = 30.0


def emulator_command() -> str:
    found = shutil.which("gcp-storage-emulator") or str(
        Path(sys.executable).with_name("gcp-storage-emulator")
    )
    if not Path(found).exists():
        pytest.fail("gcp-storage-emulator is not installed: pip install -e '.[test]' (CI does)")
    return found


@contextmanager
def emulator(buckets: tuple[str, ...] = ()) -> Iterator[str]:
    """gcp-storage-emulator in memory on a free loopback port; yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [emulator_command(), "start", "--host", HOST, "--port", str(port), "--in-memory", "-q"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"gcp-storage-emulator exited with status {process.returncode}")
            try:
                status, _ = request(base, "GET", "/storage/v1/b?project=test")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gcp-storage-emulator did not answer within 30 s")
            time.sleep(0.1)
        for bucket in buckets:
            status, body = request(
                base,
                "POST",
                "/storage/v1/b?project=test",
                json.dumps({"name": bucket}).encode(),
                {"Content-Type": "application/json"},
            )
            assert status == 200, body
        yield base
    finally:
        stop_process(process)


def request(base: str, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:  # fmt: skip
    url = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def object_meta(base: str, bucket: str, name: str) -> dict[str, object] | None:
    quoted = urllib.parse.quote(name, safe="")
    status, body = request(base, "GET", f"/storage/v1/b/{bucket}/o/{quoted}")
    if status == 404:
        return None
    assert status == 200, body
    meta: dict[str, object] = json.loads(body)
    return meta


def put_object(base: str, bucket: str, name: str, data: bytes) -> dict[str, object]:
    """Write an object directly to the emulator (another writer, in the tests)."""
    query = urllib.parse.urlencode({"uploadType": "media", "name": name})
    status, body = request(base, "POST", f"/upload/storage/v1/b/{bucket}/o?{query}", data,
                           {"Content-Type": "application/zip"})  # fmt: skip
    assert status == 200, body
    meta: dict[str, object] = json.loads(body)
    return meta


@dataclass
class Fault:
    """Answer ``status`` (or drop the connection) for the next ``times`` matching requests."""

    method: str  # "POST", "PUT", "GET"; "*" for any
    path_contains: str
    times: int
    status: int | None = None  # None: drop the connection after reading part of the body
    keep_bytes: int = 0  # with status None: how much of the body to read before dropping

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and self.method in ("*", method) and self.path_contains in path


@dataclass
class Proxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    # Runs once just before an ifGenerationMatch=0 upload is judged: another writer.
    before_create: Callable[[str, str], None] | None = None
    base: str = ""


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            sent = {k.lower() for k, _ in headers}
            for key, value in headers:
                if key.lower() in ("transfer-encoding", "connection", "content-length"):
                    continue
                if key.lower() == "location":
                    value = value.replace(proxy.upstream, proxy.base)
                self.send_header(key, value)
            if "content-type" not in sent:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            proxy.log.append((self.command, self.path, status))

        def _error(self, status: int, message: str) -> None:
            body = json.dumps({"error": {"code": status, "message": message}}).encode()
            self._answer(status, body, [])

        def _fault(self) -> bool:
            for fault in proxy.faults:
                if fault.matches(self.command, self.path):
                    fault.times -= 1
                    if fault.status is None:
                        length = int(self.headers.get("Content-Length") or 0)
                        self.rfile.read(min(fault.keep_bytes, length))
                        proxy.log.append((self.command, self.path, 0))
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return True
                    self._body()
                    self._error(fault.status, f"injected {fault.status}")
                    return True
            return False

        def _precondition(self, body: bytes) -> bool:
            """Enforce ifGenerationMatch=0 on upload starts, which the emulator ignores."""
            url = urllib.parse.urlsplit(self.path)
            query = urllib.parse.parse_qs(url.query)
            if self.command != "POST" or query.get("ifGenerationMatch") != ["0"]:
                return False
            name = query.get("name", [None])[0]
            if name is None and body:
                # Resumable starts send JSON metadata; multipart uploads a JSON part first.
                found = re.search(rb'"name"\s*:\s*"([^"]+)"', body)
                name = found.group(1).decode() if found else None
            bucket = url.path.split("/b/", 1)[1].split("/", 1)[0]
            if name is None:
                return False
            if proxy.before_create is not None:
                hook, proxy.before_create = proxy.before_create, None
                hook(bucket, name)
            if object_meta(proxy.upstream, bucket, name) is not None:
                self._error(412, "At least one of the pre-conditions you specified did not hold.")
                return True
            return False

        def _forward(self) -> None:
            if self._fault():
                return
            body = self._body()
            if self._precondition(body):
                return
            url = urllib.parse.urlsplit(proxy.upstream)
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                self._answer(response.status, data, list(response.getheaders()))
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Handler


@contextmanager
def proxy(upstream: str) -> Iterator[Proxy]:
    state = Proxy(upstream=upstream)
    with running(_handler(state)) as base:
        state.base = base
        yield state
