"""The Cloud Storage proxy says no: what it cannot parse is refused with 400 and recorded,
never forwarded, and preconditions are judged on the request that finalises an object.

The upstream here is a small loopback stand-in for the emulator (it records what reaches
it); tests/e2e/test_fake_gcs_emulator.py runs the same rules against gcp-storage-emulator."""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

import pytest
from support.gcs import Proxy, proxy, request
from support.servers import running

BUCKET = "stage"
UPLOADS = f"/upload/storage/v1/b/{BUCKET}/o"


@dataclass
class Upstream:
    """What the emulator would be: objects by name, resumable sessions, every hit."""

    base: str = ""
    objects: dict[str, bytes] = field(default_factory=dict)
    sessions: dict[str, tuple[str, bytearray]] = field(default_factory=dict)
    hits: list[tuple[str, str]] = field(default_factory=list)


def upstream_handler(up: Upstream) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _send(self, status: int, body: object = None, **headers: str) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _meta(self, name: str) -> dict[str, str]:
            return {
                "bucket": BUCKET,
                "name": name,
                "generation": "1",
                "metageneration": "1",
                "size": str(len(up.objects[name])),
            }

        def _serve(self) -> None:
            up.hits.append((self.command, self.path))
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            m = re.fullmatch(r"/storage/v1/b/[^/]+/o/([^/]+)", url.path)
            if self.command == "GET" and m:
                name = urllib.parse.unquote(m.group(1))
                self._send(200, self._meta(name)) if name in up.objects else self._send(404)
            elif "upload_id" in query:
                name, data = up.sessions[query["upload_id"]]
                data += body
                total = (self.headers.get("Content-Range") or "").rsplit("/", 1)[-1]
                if total.isdigit() and len(data) >= int(total):
                    up.objects[name] = bytes(data)
                    self._send(200, self._meta(name))
                else:
                    self._send(308, Range=f"bytes=0-{len(data) - 1}")
            elif query.get("uploadType") == "resumable":
                name = json.loads(body)["name"]
                upload_id = f"up:{len(up.sessions)}:{name}"  # as free-form as the emulator's
                up.sessions[upload_id] = (name, bytearray())
                location = (
                    f"{up.base}{self.path}&{urllib.parse.urlencode({'upload_id': upload_id})}"
                )
                self._send(200, Location=location)
            elif query.get("uploadType") == "media":
                up.objects[query["name"]] = body
                self._send(200, self._meta(query["name"]))
            else:
                self._send(200, {})

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

    return Handler


@dataclass
class Stage:
    up: Upstream
    proxy: Proxy

    def send(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> int:
        return request(self.proxy.base, method, path, body, headers)[0]

    def start(self, name: str, query: str = "") -> str:
        """A resumable session through the proxy; its path for the PUTs."""
        meta = json.dumps({"name": name}).encode()
        status, _ = request(
            self.proxy.base,
            "POST",
            f"{UPLOADS}?uploadType=resumable{query}",
            meta,
            {"Content-Type": "application/json"},
        )
        assert status == 200
        session = list(self.proxy.sessions)[-1]
        return f"{UPLOADS}?uploadType=resumable{query}&upload_id={session}"


@pytest.fixture
def stage() -> Iterator[Stage]:
    up = Upstream()
    with running(upstream_handler(up)) as base, proxy(base) as p:
        up.base = base
        yield Stage(up, p)


def test_well_formed_requests_reach_the_upstream(stage: Stage) -> None:
    assert stage.send("POST", f"{UPLOADS}?uploadType=media&name=a.zip", b"data") == 200
    assert stage.send("GET", f"/storage/v1/b/{BUCKET}/o/a.zip") == 200
    path = stage.start("b.zip")
    assert stage.send("PUT", path, b"abc", {"Content-Range": "bytes 0-2/3"}) == 200
    assert stage.up.objects == {"a.zip": b"data", "b.zip": b"abc"}
    assert stage.proxy.refused == []


MULTIPART = "multipart/related; boundary=BOUNDARY"


def multipart(meta: bytes, data: bytes = b"data") -> bytes:
    return (
        b"--BOUNDARY\r\nContent-Type: application/json\r\n\r\n"
        + meta
        + b"\r\n--BOUNDARY\r\nContent-Type: application/zip\r\n\r\n"
        + data
        + b"\r\n--BOUNDARY--\r\n"
    )


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"),
    [
        # no object name where an upload needs one
        ("POST", f"{UPLOADS}?uploadType=media", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=media&name=", b"data", {}),
        (
            "POST",
            f"{UPLOADS}?uploadType=multipart",
            multipart(b'{"contentType": "x"}'),
            {"Content-Type": MULTIPART},
        ),
        ("POST", f"{UPLOADS}?uploadType=resumable", b"{}", {"Content-Type": "application/json"}),
        ("POST", f"{UPLOADS}?uploadType=resumable", b"", {}),
        # bodies it cannot read
        (
            "POST",
            f"{UPLOADS}?uploadType=multipart",
            multipart(b"{not json"),
            {"Content-Type": MULTIPART},
        ),
        (
            "POST",
            f"{UPLOADS}?uploadType=multipart",
            b"just bytes",
            {"Content-Type": "application/zip"},
        ),
        ("POST", f"{UPLOADS}?uploadType=resumable", b'["a.zip"]', {}),
        ("POST", f"{UPLOADS}?uploadType=resumable", b'{"name": 7}', {}),
        # no such upload
        ("POST", f"{UPLOADS}?name=a.zip", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=chunked&name=a.zip", b"data", {}),
        ("PUT", f"{UPLOADS}?uploadType=media&name=a.zip", b"data", {}),
        ("POST", f"/upload/storage/v1/b/{BUCKET}/o/a.zip?uploadType=media", b"data", {}),
        ("POST", "/upload/storage/v1/b//o?uploadType=media&name=a.zip", b"data", {}),
        # queries it cannot parse
        ("POST", f"{UPLOADS}?uploadType=media&name=%zz", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=media&name=%ff", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=media&name=a.zip&name=b.zip", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=media&name=a.zip&ifGenerationMatch=zero", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=media&name=a.zip&ifGenerationMatch=", b"data", {}),
        ("POST", f"{UPLOADS}?uploadType=media&name=a.zip&&x", b"data", {}),
        ("GET", f"/storage/v1/b/{BUCKET}/o/a.zip?ifGenerationMatch=1&ifGenerationMatch=2", b"", {}),
        # a precondition where the proxy cannot judge it
        ("POST", f"/storage/v1/b/{BUCKET}/o/a.zip/compose?ifGenerationMatch=0", b"{}", {}),
        # malformed upload ids
        ("PUT", f"{UPLOADS}?uploadType=resumable&upload_id=", b"data", {}),
        ("PUT", f"{UPLOADS}?uploadType=resumable&upload_id=up%3A0%3Aa.zip", b"data", {}),
        ("PUT", f"{UPLOADS}?uploadType=resumable&upload_id=ADPy../../x", b"data", {}),
    ],
)
def test_what_the_proxy_cannot_parse_is_refused_not_forwarded(
    stage: Stage, method: str, path: str, body: bytes, headers: dict[str, str]
) -> None:
    assert stage.send(method, path, body, headers) == 400
    assert stage.up.hits == [] and stage.up.objects == {}
    assert len(stage.proxy.refused) == 1 and stage.proxy.refused[0].startswith(method)
    assert stage.proxy.log == [(method, path, 400)]


def test_an_unknown_session_is_not_found_and_recorded(stage: Stage) -> None:
    path = f"{UPLOADS}?uploadType=resumable&upload_id=ADPy0000deadbeefdeadbeef"
    assert stage.send("PUT", path, b"data", {"Content-Range": "bytes 0-3/4"}) == 404
    assert stage.up.hits == [] and len(stage.proxy.refused) == 1


@pytest.mark.parametrize(
    ("content_range", "body"),
    [
        ("bytes 0-2", b"abc"),
        ("bytes=0-2/3", b"abc"),
        ("bytes 0-9/10", b"abc"),  # says ten bytes, carries three
        ("bytes */3", b"abc"),  # a status query with a body
        ("octets 0-2/3", b"abc"),
    ],
)
def test_a_session_request_with_a_bad_content_range_is_refused(
    stage: Stage, content_range: str, body: bytes
) -> None:
    path = stage.start("a.zip")
    hits = len(stage.up.hits)
    assert stage.send("PUT", path, body, {"Content-Range": content_range}) == 400
    assert len(stage.up.hits) == hits and stage.up.objects == {}
    assert len(stage.proxy.refused) == 1 and content_range in stage.proxy.refused[0]


def test_a_session_used_at_another_bucket_is_refused(stage: Stage) -> None:
    path = stage.start("a.zip").replace(f"/b/{BUCKET}/", "/b/other/")
    hits = len(stage.up.hits)
    assert stage.send("PUT", path, b"abc", {"Content-Range": "bytes 0-2/3"}) == 400
    assert len(stage.up.hits) == hits and len(stage.proxy.refused) == 1


# --- preconditions: judged when the object is finalised -------------------------------


def test_a_resumable_upload_is_judged_when_it_finalises_not_when_it_starts(
    stage: Stage,
) -> None:
    path = stage.start("a.zip", "&ifGenerationMatch=0")  # the object is absent: fine
    assert stage.send("PUT", path, b"abc", {"Content-Range": "bytes 0-2/6"}) == 308
    stage.up.objects["a.zip"] = b"theirs"  # another writer, while the data is on its way
    assert stage.send("PUT", path, b"def", {"Content-Range": "bytes 3-5/6"}) == 412
    assert stage.up.objects == {"a.zip": b"theirs"}
    assert stage.proxy.log[-1][2] == 412 and stage.proxy.refused == []


def test_a_resumable_upload_started_over_an_existing_object_fails_only_at_its_end(
    stage: Stage,
) -> None:
    stage.up.objects["a.zip"] = b"theirs"
    path = stage.start("a.zip", "&ifGenerationMatch=0")  # not judged yet: 200
    assert stage.send("PUT", path, b"abc", {"Content-Range": "bytes 0-2/*"}) == 308
    assert stage.send("PUT", path, b"", {"Content-Range": "bytes */3"}) == 412  # completes it
    assert stage.send("PUT", path, b"abcdef") == 412  # no Content-Range: the whole object
    assert stage.up.objects == {"a.zip": b"theirs"}


def test_a_status_query_of_an_unfinished_upload_is_not_judged(stage: Stage) -> None:
    stage.up.objects["a.zip"] = b"theirs"
    path = stage.start("a.zip", "&ifGenerationMatch=0")
    assert stage.send("PUT", path, b"abc", {"Content-Range": "bytes 0-2/*"}) == 308
    assert stage.send("PUT", path, b"", {"Content-Range": "bytes */*"}) == 308
    assert stage.send("PUT", path, b"", {"Content-Range": "bytes */6"}) == 308  # 3 of 6 in


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("&ifGenerationMatch=0", 412),
        ("&ifGenerationMatch=1", 200),  # the object's generation: replacing it is allowed
        ("&ifGenerationMatch=2", 412),
        ("&ifMetagenerationMatch=1", 200),
        ("&ifGenerationNotMatch=1", 304),
        ("", 200),
    ],
)
def test_a_media_upload_is_judged_on_its_one_request(stage: Stage, query: str, status: int) -> None:
    stage.up.objects["a.zip"] = b"theirs"
    assert stage.send("POST", f"{UPLOADS}?uploadType=media&name=a.zip{query}", b"mine") == status
    assert stage.up.objects["a.zip"] == (b"mine" if status == 200 else b"theirs")


def test_a_multipart_upload_names_its_object_in_the_metadata_part(stage: Stage) -> None:
    stage.up.objects["a.zip"] = b"theirs"
    body = multipart(b'{"name": "a.zip"}')
    path = f"{UPLOADS}?uploadType=multipart&ifGenerationMatch=0"
    assert stage.send("POST", path, body, {"Content-Type": MULTIPART}) == 412
    assert stage.up.hits == [("GET", f"/storage/v1/b/{BUCKET}/o/a.zip")]  # asked, not sent
    body = multipart(b'{"name": "b.zip"}')
    assert stage.send("POST", path, body, {"Content-Type": MULTIPART}) == 200
    assert stage.up.hits[-1] == ("POST", path)


def test_the_other_writer_hook_runs_when_the_upload_finalises(stage: Stage) -> None:
    calls: list[tuple[str, str, int]] = []

    def another_writer(bucket: str, name: str) -> None:
        calls.append((bucket, name, len(stage.up.hits)))
        stage.up.objects[name] = b"theirs"

    stage.proxy.before_create = another_writer
    path = stage.start("a.zip", "&ifGenerationMatch=0")
    assert calls == []  # not at the start
    assert stage.send("PUT", path, b"abc", {"Content-Range": "bytes 0-2/6"}) == 308
    assert calls == []  # nor on a chunk that does not finish the object
    assert stage.send("PUT", path, b"def", {"Content-Range": "bytes 3-5/6"}) == 412
    assert [c[:2] for c in calls] == [(BUCKET, "a.zip")]


def test_each_upload_request_is_recorded_as_cloud_storage_reads_it(stage: Stage) -> None:
    """What the upload tests judge an upload by: its kind, the object bytes each request
    carried, the object resource it named and the checksums it asked to be checked."""
    path = f"{UPLOADS}?uploadType=multipart&ifGenerationMatch=0"
    body = multipart(b'{"name": "a.zip", "md5Hash": "bTVk"}', b"0123456789")
    assert stage.send("POST", path, body, {"Content-Type": MULTIPART}) == 200
    resumable = stage.start("b.zip")
    assert stage.send("PUT", resumable, b"abc", {"Content-Range": "bytes 0-2/6"}) == 308
    assert (
        stage.send(
            "PUT", resumable, b"def", {"Content-Range": "bytes 3-5/6", "X-Goog-Hash": "md5=ZGVm"}
        )
        == 200
    )
    assert [
        (s.kind, s.data, s.resource, s.content_range, s.goog_hash) for s in stage.proxy.sent
    ] == [
        ("multipart", 10, {"name": "a.zip", "md5Hash": "bTVk"}, None, None),
        ("resumable", 0, {"name": "b.zip"}, None, None),
        ("resumable", 3, None, "bytes 0-2/6", None),
        ("resumable", 3, None, "bytes 3-5/6", "md5=ZGVm"),
    ]
    assert stage.proxy.refused == []
