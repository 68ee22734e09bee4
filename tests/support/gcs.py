"""Cloud Storage on loopback: gcp-storage-emulator, and a fault-injecting proxy in front.

The emulator ignores preconditions (``ifGenerationMatch`` and the like), so the
proxy enforces them itself, where Cloud Storage does: on the request that
finalises the object. That is the single request of a media or multipart
upload, and the last request of a resumable upload (its preconditions are given
on the initiating POST, which is never refused for them: the object may be
created by someone else while the data is on its way). The proxy asks the
emulator about the object just before it forwards the finalising request.

It parses every upload it forwards, and refuses with 400 (recorded in
``refused``, never forwarded) what it cannot parse: an upload without an object
name, an unknown ``uploadType``, a query that does not decode, a repeated or
non-numeric precondition, a malformed upload id or ``Content-Range``. A
well-formed upload id that names no session is answered 404, as Cloud Storage
answers an unknown session. The proxy hands out upload ids of its own (in the
rewritten ``Location``) and keeps each session's object name and preconditions.

Every upload request it forwards is recorded in ``sent``: how it was sent (one
``media`` or ``multipart`` request, or a ``resumable`` session's start and
parts), how many bytes of the object it carried, the object resource it named
(``md5Hash``, ``crc32c``, ``metadata``…) and its ``X-Goog-Hash`` header: what
Cloud Storage would check the object against.

It can inject the faults a real network has: an HTTP status for the next N
matching requests, or a connection dropped half-way through a request body.
"""

from __future__ import annotations

import email.message
import email.parser
import http.client
import itertools
import json
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from .servers import JsonHandler, free_port, running, stop_process

HOST = "127.0.0.1"
START_TIMEOUT = 30.0
PRECONDITIONS = (
    "ifGenerationMatch",
    "ifGenerationNotMatch",
    "ifMetagenerationMatch",
    "ifMetagenerationNotMatch",
)
UPLOAD_TYPES = ("media", "multipart", "resumable")
# The upload ids the proxy hands out (Cloud Storage's look like this too).
UPLOAD_ID = re.compile(r"ADPy[A-Za-z0-9_-]{8,}")
UPLOAD_PATH = re.compile(r"/upload/storage/v1/b/([^/]+)/o")
# An object named in the path (its name quoted, "/" as %2F): metadata, download, delete.
OBJECT_PATH = re.compile(r"/(?:download/)?storage/v1/b/([^/]+)/o/([^/]+)")
Reply = tuple[int, bytes, list[tuple[str, str]]]  # status, body, headers
CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-(\d+|\*)|\*)/(\d+|\*)")


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


def request(
    base: str,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
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
    status, body = request(
        base,
        "POST",
        f"/upload/storage/v1/b/{bucket}/o?{query}",
        data,
        {"Content-Type": "application/zip"},
    )
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


@dataclass(frozen=True)
class Sent:
    """One upload request the proxy forwarded, as Cloud Storage would read it."""

    kind: str  # "media", "multipart" or "resumable" (a session's start or one of its parts)
    data: int  # bytes of the object it carried
    resource: dict[str, object] | None  # the object resource it named (multipart, a start)
    content_range: str | None  # a resumable part's Content-Range
    goog_hash: str | None  # X-Goog-Hash: checksums of the whole object, to be checked


@dataclass
class Session:
    """A resumable upload the proxy saw started: what it will create, on what terms."""

    bucket: str
    name: str
    preconditions: dict[str, int]
    upstream_id: str  # the emulator's upload id
    received: int = 0  # bytes the emulator has acknowledged (its last 308's Range)
    finalised: bool = False


@dataclass
class Proxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, int]] = field(default_factory=list)  # method, path, status
    # Runs once just before an upload with a precondition is judged, on the request that
    # finalises the object: another writer (it writes to the upstream, not through the proxy).
    before_create: Callable[[str, str], None] | None = None
    base: str = ""
    refused: list[str] = field(default_factory=list)  # requests it could not parse: why
    sent: list[Sent] = field(default_factory=list)  # the upload requests it forwarded
    sessions: dict[str, Session] = field(default_factory=dict)  # by the proxy's upload id
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _objects: dict[tuple[str, str], threading.Lock] = field(default_factory=dict)

    def object_lock(self, bucket: str, name: str) -> threading.Lock:
        """Judging a precondition and writing the object are one step, as in Cloud Storage."""
        with self._lock:
            return self._objects.setdefault((bucket, name), threading.Lock())

    def new_session(self, session: Session) -> str:
        with self._lock:
            upload_id = f"ADPy{next(self._ids):04d}{uuid.uuid4().hex}"
            self.sessions[upload_id] = session
            return upload_id


class Refused(Exception):
    """A request the proxy answers itself, without forwarding it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_query(raw: str) -> dict[str, str]:
    """A query string as Cloud Storage reads it, or :class:`Refused` (400)."""
    if re.search(r"%(?![0-9A-Fa-f]{2})", raw):
        raise Refused(400, f"malformed percent-encoding in the query {raw!r}")
    try:
        pairs = urllib.parse.parse_qsl(
            raw, keep_blank_values=True, strict_parsing=bool(raw), errors="strict"
        )
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"unparseable query {raw!r}: {exc}") from None
    query: dict[str, str] = {}
    for key, value in pairs:
        if key in query:
            raise Refused(400, f"query parameter {key!r} given more than once")
        query[key] = value
    return query


def preconditions(query: dict[str, str]) -> dict[str, int]:
    found = {}
    for key in PRECONDITIONS:
        if key in query:
            if not re.fullmatch(r"-?\d+", query[key]):
                raise Refused(400, f"Invalid argument {key}={query[key]!r}: not an integer")
            found[key] = int(query[key])
    return found


def unmet(meta: dict[str, object] | None, conditions: dict[str, int]) -> int | None:
    """The status Cloud Storage answers when ``conditions`` do not hold for the object
    (``None``: absent), or None when they hold."""
    generation = None if meta is None else int(str(meta["generation"]))
    metageneration = None if meta is None else int(str(meta.get("metageneration", 1)))
    for key, value in conditions.items():
        if key == "ifGenerationMatch" and (generation or 0) != value:
            return 412
        if key == "ifMetagenerationMatch" and metageneration != value:
            return 412
        if key == "ifGenerationNotMatch" and generation == value:
            return 304
        if key == "ifMetagenerationNotMatch" and metageneration == value:
            return 304
    return None


def multipart_parts(content_type: str, body: bytes) -> tuple[dict[str, object], bytes]:
    """A multipart upload's object resource (its JSON metadata part) and its data."""
    if not content_type.startswith("multipart/related") or "boundary=" not in content_type:
        raise Refused(400, f"a multipart upload with Content-Type {content_type!r}")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + body)
    parts = message.get_payload()
    if not message.is_multipart() or not isinstance(parts, list) or len(parts) != 2:
        raise Refused(400, "a multipart upload is a JSON metadata part, then the data")
    meta, data = (
        part.get_payload(decode=True) if isinstance(part, email.message.Message) else None
        for part in parts
    )
    return _json_resource(meta if isinstance(meta, bytes) else b""), (
        data if isinstance(data, bytes) else b""
    )


def _json_resource(raw: bytes) -> dict[str, object]:
    """An object resource sent as JSON, its name (if any) a string, or :class:`Refused`."""
    try:
        meta = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise Refused(400, "the object metadata is not JSON") from None
    if not isinstance(meta, dict):
        raise Refused(400, "the object metadata is not a JSON object")
    name = meta.get("name")
    if name is not None and not isinstance(name, str):
        raise Refused(400, f"the object name {name!r} is not a string")
    return meta


def _finalises(session: Session, content_range: str | None, size: int) -> bool:
    """Whether this request of a resumable upload completes the object, or
    :class:`Refused` for a Content-Range that cannot be read."""
    if content_range is None:
        return True  # the whole object in one request
    m = CONTENT_RANGE.fullmatch(content_range.strip())
    if not m:
        raise Refused(400, f"malformed Content-Range {content_range!r}")
    start, end, total = m.groups()
    if start is None:  # "bytes */TOTAL": a status query, or the completion of what was sent
        if size:
            raise Refused(400, f"Content-Range {content_range!r} with a body")
        return total != "*" and session.received >= int(total)
    last = int(start) + size - 1 if end == "*" else int(end)
    if last - int(start) + 1 != size:
        raise Refused(400, f"Content-Range {content_range!r} does not match a {size}-byte body")
    if total == "*":
        return end == "*"  # "bytes START-*/*": a single stream, ended by this request
    return last + 1 == int(total)


def _handler(proxy: Proxy) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            proxy.log.append((self.command, self.path, status))  # before the client sees it
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
                    self.body()
                    self._error(fault.status, f"injected {fault.status}")
                    return True
            return False

        def _upstream(self, path: str, body: bytes) -> Reply:
            url = urllib.parse.urlsplit(proxy.upstream)
            conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            try:
                conn.request(self.command, path, body=body, headers=headers)
                response = conn.getresponse()
                return response.status, response.read(), list(response.getheaders())
            finally:
                conn.close()

        def _judged(
            self,
            bucket: str,
            name: str,
            conditions: dict[str, int],
            path: str,
            body: bytes,
            writes: bool = True,
        ) -> Reply:
            """Forward a request on ``bucket/name`` (for an upload: the one that finalises the
            object) if ``conditions`` hold."""
            with proxy.object_lock(bucket, name):
                if conditions:
                    if writes and proxy.before_create is not None:
                        hook, proxy.before_create = proxy.before_create, None
                        hook(bucket, name)
                    status = unmet(object_meta(proxy.upstream, bucket, name), conditions)
                    if status == 412:
                        message = "At least one of the pre-conditions you specified did not hold."
                        error = {"error": {"code": 412, "message": message}}
                        return 412, json.dumps(error).encode(), []
                    if status is not None:
                        return status, b"", []
                return self._upstream(path, body)

        def _upload(self, bucket: str, query: dict[str, str], body: bytes) -> None:
            """An upload request: started, sent in one go, or a resumable session's part."""
            if "upload_id" in query:
                self._session(bucket, query, body)
                return
            kind = query.get("uploadType")
            if self.command != "POST" or kind not in UPLOAD_TYPES:
                raise Refused(400, f"{self.command} with uploadType {kind!r} is no upload")
            conditions = preconditions(query)
            name = query.get("name")
            resource: dict[str, object] | None = None
            carried = len(body)  # bytes of the object
            if kind == "multipart":
                resource, content = multipart_parts(self.headers.get("Content-Type", ""), body)
                carried = len(content)
            elif kind == "resumable":
                resource, carried = _json_resource(body), 0  # the data comes in its parts
            if name is None and resource is not None and isinstance(resource.get("name"), str):
                name = str(resource["name"])
            if not name:
                raise Refused(400, f"a {kind} upload without an object name")
            proxy.sent.append(Sent(kind, carried, resource, None, self.headers.get("X-Goog-Hash")))
            if kind != "resumable":  # the single request that finalises the object
                self._answer(*self._judged(bucket, name, conditions, self.path, body))
                return
            status, data, headers = self._upstream(self.path, body)
            location = next((v for k, v in headers if k.lower() == "location"), None)
            if status == 200 and location is not None:
                upstream_id = parse_query(urllib.parse.urlsplit(location).query).get("upload_id")
                if upstream_id:
                    own = proxy.new_session(Session(bucket, name, conditions, upstream_id))
                    theirs = urllib.parse.urlencode({"upload_id": upstream_id})
                    location = location.replace(theirs, urllib.parse.urlencode({"upload_id": own}))
                    headers = [(k, location if k.lower() == "location" else v) for k, v in headers]
            self._answer(status, data, headers)

        def _session(self, bucket: str, query: dict[str, str], body: bytes) -> None:
            upload_id = query["upload_id"]
            if not UPLOAD_ID.fullmatch(upload_id):
                raise Refused(400, f"malformed upload id {upload_id!r}")
            session = proxy.sessions.get(upload_id)
            if session is None:
                raise Refused(404, f"no upload session {upload_id!r}")
            if self.command not in ("PUT", "POST") or bucket != session.bucket:
                raise Refused(
                    400,
                    f"{self.command} to session {upload_id!r} of gs://"
                    f"{session.bucket} at bucket {bucket!r}",
                )
            finalising = not session.finalised and _finalises(
                session, self.headers.get("Content-Range"), len(body)
            )
            proxy.sent.append(
                Sent(
                    "resumable",
                    len(body),
                    None,
                    self.headers.get("Content-Range"),
                    self.headers.get("X-Goog-Hash"),
                )
            )
            own = urllib.parse.urlsplit(self.path).path
            path = f"{own}?{urllib.parse.urlencode({**query, 'upload_id': session.upstream_id})}"
            if finalising:
                status, data, headers = self._judged(
                    session.bucket, session.name, session.preconditions, path, body
                )
            else:
                status, data, headers = self._upstream(path, body)
            if status == 308:
                ranges = next((v for k, v in headers if k.lower() == "range"), "")
                m = re.fullmatch(r"bytes=0-(\d+)", ranges)
                session.received = int(m.group(1)) + 1 if m else 0
            elif status in (200, 201):
                session.finalised = True
            self._answer(status, data, headers)

        def _forward(self) -> None:
            if self._fault():
                return
            body = self.body()
            url = urllib.parse.urlsplit(self.path)
            try:
                query = parse_query(url.query)
                if url.path.startswith("/upload/"):
                    m = UPLOAD_PATH.fullmatch(url.path)
                    if not m:
                        raise Refused(400, f"{url.path!r} is no upload URL")
                    self._upload(urllib.parse.unquote(m.group(1)), query, body)
                    return
                conditions = preconditions(query)
                if conditions:
                    m = OBJECT_PATH.fullmatch(url.path)
                    if not m:
                        raise Refused(
                            400, f"the proxy cannot judge {sorted(conditions)} on {url.path!r}"
                        )
                    bucket, name = (urllib.parse.unquote(g) for g in m.groups())
                    self._answer(
                        *self._judged(
                            bucket, name, conditions, self.path, body, writes=self.command != "GET"
                        )
                    )
                    return
            except Refused as refusal:
                proxy.refused.append(f"{self.command} {self.path}: {refusal.message}")
                self._error(refusal.status, refusal.message)
                return
            self._answer(*self._upstream(self.path, body))

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    return Handler


@contextmanager
def proxy(upstream: str) -> Iterator[Proxy]:
    state = Proxy(upstream=upstream)
    with running(_handler(state)) as base:
        state.base = base
        yield state
