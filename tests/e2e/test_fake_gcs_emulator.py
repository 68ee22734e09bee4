"""The Cloud Storage proxy in front of gcp-storage-emulator judges preconditions where Cloud
Storage does (on the request that finalises the object) and refuses what it cannot parse,
for raw requests and for google-cloud-storage, which pyfn and the examples use."""

from __future__ import annotations

import io
import json
import urllib.parse
from typing import Any

import pytest
from conftest import BUCKET
from support.gcs import Proxy, object_meta, put_object, request

from pyfn_action.cloud.upload import storage_client

pytestmark = pytest.mark.e2e
UPLOADS = f"/upload/storage/v1/b/{BUCKET}/o"
CHUNK = 256 * 1024  # the resumable protocol's unit


def start(p: Proxy, name: str, query: str = "&ifGenerationMatch=0") -> str:
    """A resumable session started through the proxy: the path its PUTs go to."""
    status, body = request(
        p.base,
        "POST",
        f"{UPLOADS}?uploadType=resumable{query}",
        json.dumps({"name": name}).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200, body
    [(method, _, code)] = p.log[-1:]
    assert (method, code) == ("POST", 200)
    session = list(p.sessions)[-1]
    return f"{UPLOADS}?uploadType=resumable{query}&upload_id={session}"


def put(p: Proxy, path: str, data: bytes, content_range: str) -> int:
    return request(p.base, "PUT", path, data, {"Content-Range": content_range})[0]


def content(gcs: str, name: str) -> bytes:
    quoted = urllib.parse.quote(name, safe="")
    status, body = request(gcs, "GET", f"/download/storage/v1/b/{BUCKET}/o/{quoted}?alt=media")
    assert status == 200, body
    return body


def test_a_resumable_upload_is_refused_when_it_finalises(gcs_proxy: Proxy, gcs: str) -> None:
    path = start(gcs_proxy, "raced.bin")  # absent now
    first, second = b"a" * CHUNK, b"b" * CHUNK
    assert put(gcs_proxy, path, first, f"bytes 0-{CHUNK - 1}/{2 * CHUNK}") == 308
    theirs = put_object(gcs, BUCKET, "raced.bin", b"another writer")  # meanwhile
    assert put(gcs_proxy, path, second, f"bytes {CHUNK}-{2 * CHUNK - 1}/{2 * CHUNK}") == 412
    assert content(gcs, "raced.bin") == b"another writer"
    meta = object_meta(gcs, BUCKET, "raced.bin")
    assert meta is not None and meta["generation"] == theirs["generation"]
    assert gcs_proxy.refused == []


def test_a_resumable_upload_over_an_existing_object_starts_then_fails_at_its_end(
    gcs_proxy: Proxy, gcs: str
) -> None:
    put_object(gcs, BUCKET, "there.bin", b"first")
    path = start(gcs_proxy, "there.bin")  # Cloud Storage does not judge the start
    assert put(gcs_proxy, path, b"x" * CHUNK, f"bytes 0-{CHUNK - 1}/*") == 308
    assert put(gcs_proxy, path, b"", f"bytes */{CHUNK}") == 412  # the completing request
    assert content(gcs, "there.bin") == b"first"


def test_a_resumable_upload_without_a_race_completes(gcs_proxy: Proxy, gcs: str) -> None:
    path = start(gcs_proxy, "fresh.bin")
    data = bytes(range(256)) * (CHUNK // 256) + b"tail"
    assert put(gcs_proxy, path, data[:CHUNK], f"bytes 0-{CHUNK - 1}/{len(data)}") == 308
    assert put(gcs_proxy, path, data[CHUNK:], f"bytes {CHUNK}-{len(data) - 1}/{len(data)}") == 200
    assert content(gcs, "fresh.bin") == data
    assert gcs_proxy.refused == []


def test_malformed_and_unknown_sessions_never_reach_the_emulator(
    gcs_proxy: Proxy, gcs: str
) -> None:
    path = start(gcs_proxy, "never.bin")
    upstream_id = gcs_proxy.sessions[path.rsplit("=", 1)[1]].upstream_id
    # The emulator's own id (not one the proxy handed out) is malformed to the proxy.
    own = path.rsplit("=", 1)[0] + "=" + urllib.parse.quote(upstream_id, safe="")
    assert put(gcs_proxy, own, b"abc", "bytes 0-2/3") == 400
    unknown = path.rsplit("=", 1)[0] + "=ADPy0000deadbeefdeadbeef"
    assert put(gcs_proxy, unknown, b"abc", "bytes 0-2/3") == 404
    assert put(gcs_proxy, path, b"abc", "bytes 0-2") == 400
    assert len(gcs_proxy.refused) == 3
    assert object_meta(gcs, BUCKET, "never.bin") is None
    status, _ = request(gcs_proxy.base, "POST", f"{UPLOADS}?uploadType=media", b"no name")
    assert status == 400 and len(gcs_proxy.refused) == 4


# --- through google-cloud-storage, as pyfn and the examples call it -------------------


def client(p: Proxy) -> Any:
    return storage_client(None, None, {"STORAGE_EMULATOR_HOST": p.base})


def test_the_client_resumable_upload_fails_at_the_end_when_another_writer_won(
    gcs_proxy: Proxy, gcs: str
) -> None:
    from google.api_core.exceptions import PreconditionFailed

    # Above 8 MiB, so the client uploads it resumably (below, in one multipart request).
    chunk = 16 * CHUNK
    data = b"z" * (2 * chunk + 100)
    states: list[bool] = []

    def another_writer(bucket: str, name: str) -> None:
        states.append(any(m == "PUT" and s == 308 for m, _, s in gcs_proxy.log))
        put_object(gcs, bucket, name, b"theirs")

    gcs_proxy.before_create = another_writer
    blob = client(gcs_proxy).bucket(BUCKET).blob("client-raced.bin", chunk_size=chunk)
    with pytest.raises(PreconditionFailed):
        blob.upload_from_file(io.BytesIO(data), size=len(data), if_generation_match=0)
    assert states == [True], "judged after chunks were taken, at the finalising request"
    assert content(gcs, "client-raced.bin") == b"theirs"
    assert any(m == "POST" and "uploadType=resumable" in p for m, p, _ in gcs_proxy.log)
    puts = [s for m, _, s in gcs_proxy.log if m == "PUT"]
    assert puts == [308, 308, 412]

    fresh = client(gcs_proxy).bucket(BUCKET).blob("client-fresh.bin", chunk_size=chunk)
    fresh.upload_from_file(io.BytesIO(data), size=len(data), if_generation_match=0)
    assert content(gcs, "client-fresh.bin") == data
    assert gcs_proxy.refused == []


def test_the_client_multipart_upload_is_judged_on_its_one_request(
    gcs_proxy: Proxy, gcs: str
) -> None:
    from google.api_core.exceptions import PreconditionFailed

    blob = client(gcs_proxy).bucket(BUCKET).blob("event.json")
    blob.upload_from_string(b'{"n": 1}', if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        client(gcs_proxy).bucket(BUCKET).blob("event.json").upload_from_string(
            b'{"n": 2}', if_generation_match=0
        )
    assert content(gcs, "event.json") == b'{"n": 1}'
    assert any(
        m == "POST" and "uploadType=multipart" in p and "ifGenerationMatch=0" in p and s == 412
        for m, p, s in gcs_proxy.log
    )
    # The generation it has: a replacement is allowed.
    meta = object_meta(gcs, BUCKET, "event.json")
    assert meta is not None
    generation = int(str(meta["generation"]))
    blob.upload_from_string(b'{"n": 3}', if_generation_match=generation)
    assert content(gcs, "event.json") == b'{"n": 3}'
    assert gcs_proxy.refused == []


def test_a_download_pinned_to_another_generation_is_refused(gcs_proxy: Proxy, gcs: str) -> None:
    from google.api_core.exceptions import PreconditionFailed

    written = put_object(gcs, BUCKET, "pinned.bin", b"v1")
    generation = int(str(written["generation"]))
    blob = client(gcs_proxy).bucket(BUCKET).blob("pinned.bin")
    assert blob.download_as_bytes(if_generation_match=generation) == b"v1"
    with pytest.raises(PreconditionFailed):
        blob.download_as_bytes(if_generation_match=generation + 1)
