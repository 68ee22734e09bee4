"""How an object already at the bundle's address is judged (no server: a stand-in blob).

Cloud Storage computes size, CRC32C and MD5 itself; the ``sha256`` metadata is
what pyfn wrote. A composite object has no MD5, and CRC32C can be matched by
anyone, so where MD5 or the sha256 metadata is missing the object is read back
and hashed before it is trusted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pyfn_action.cloud.upload import Digests, _verified, digests
from pyfn_action.errors import UploadError

DATA = b"PK\x03\x04 the real bundle " * 64


class Blob:
    def __init__(
        self,
        local: Digests,
        *,
        content: bytes = DATA,
        md5: bool = True,
        metadata: dict[str, str] | None = None,
    ) -> None:
        self.size = local.size
        self.crc32c = local.crc32c  # as a forger would set it: CRC32C is linear
        self.md5_hash = local.md5 if md5 else None
        self.metadata = metadata
        self.generation = 7
        self.content = content
        self.downloads: list[dict[str, Any]] = []

    def download_to_file(self, sink: Any, **kwargs: Any) -> None:
        self.downloads.append(kwargs)
        for start in range(0, len(self.content), 100):
            sink.write(self.content[start : start + 100])


@pytest.fixture
def local(tmp_path: Path) -> Digests:
    path = tmp_path / "bundle.zip"
    path.write_bytes(DATA)
    return digests(path)


def _judge(blob: Blob, local: Digests) -> Any:
    return _verified(blob, local, "bkt", "pyfn/f/x.zip", skipped=True)


def test_all_checksums_and_the_sha256_metadata_match_without_a_read(local: Digests) -> None:
    blob = Blob(local, metadata={"sha256": local.sha256})
    assert _judge(blob, local).generation == 7
    assert blob.downloads == []


def test_another_sha256_in_the_metadata_is_refused(local: Digests) -> None:
    blob = Blob(local, metadata={"sha256": "f" * 64})
    with pytest.raises(UploadError, match="exists but is not this bundle") as caught:
        _judge(blob, local)
    assert "f" * 64 in caught.value.message and blob.downloads == []


@pytest.mark.parametrize(
    ("md5", "metadata"),
    [(False, {"sha256": "SHA"}), (True, None), (True, {}), (False, None)],
    ids=["composite-no-md5", "no-metadata", "empty-metadata", "neither"],
)
def test_what_cannot_be_told_by_checksums_is_read_back(
    local: Digests, md5: bool, metadata: dict[str, str] | None
) -> None:
    if metadata:
        metadata = {"sha256": local.sha256}
    forged = DATA[:-4] + b"EVIL"  # same size; CRC32C claimed to match
    blob = Blob(local, content=forged, md5=md5, metadata=metadata)
    with pytest.raises(UploadError, match="exists but is not this bundle") as caught:
        _judge(blob, local)
    assert "read back" in caught.value.message
    assert len(blob.downloads) == 1
    assert blob.downloads[0].get("if_generation_match") == 7

    honest = Blob(local, md5=md5, metadata=metadata)
    assert _judge(honest, local).generation == 7
    assert len(honest.downloads) == 1


def test_an_object_longer_than_it_claims_is_not_read_past_its_size(local: Digests) -> None:
    blob = Blob(local, content=DATA + b"x" * 10_000, md5=False, metadata={"sha256": local.sha256})
    with pytest.raises(UploadError, match="exists but is not this bundle"):
        _judge(blob, local)


# --- an upload whose stored bytes are not the ones sent (the library's checksum check) ---


class FakeGcs:
    """Cloud Storage's JSON API as far as one resumable upload goes, in memory, behind the
    real client library: it keeps each object and answers with the MD5 it is told to."""

    is_mtls = False  # what the client asks of an authorized session

    def __init__(self, *, md5_reported: str | None = None) -> None:
        self.md5_reported = md5_reported  # None: the MD5 of what arrived
        self.objects: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self._body = bytearray()
        self._pending: dict[str, Any] = {}

    def request(
        self, method: str, url: str, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        import urllib.parse

        parsed = urllib.parse.urlsplit(url)
        path = urllib.parse.unquote(parsed.path)
        self.requests.append((method, path))
        assert len(self.requests) < 50, "an upload of two chunks needs a handful of requests"
        if method == "GET" and path == "/storage/v1/b/bkt":
            # the client's bucket metadata cache asks for this on a thread of its own,
            # at any moment of the upload
            return _response(200, {"kind": "storage#bucket", "name": "bkt", "location": "US"})
        if method == "GET" and "/o/" in path:
            name = path.split("/o/", 1)[1]
            if name in self.objects:
                return _response(200, self.objects[name])
            return _response(404, {"error": {"code": 404, "message": "No such object"}})
        if method == "POST" and "uploadType=resumable" in parsed.query:
            self._pending = json.loads(data) if data else {}
            self._body = bytearray()
            return _response(200, {}, {"Location": "https://gcs.invalid/upload?upload_id=u1"})
        if method == "PUT" and "upload_id=u1" in parsed.query:
            self._body += data if isinstance(data, bytes) else data.read()
            sent = {k.lower(): v for k, v in (headers or {}).items()}["content-range"]
            total = sent.rsplit("/", 1)[-1]  # "bytes 0-8388607/8522304"
            if total == "*" or len(self._body) < int(total):  # more to come
                return _response(308, None, {"Range": f"bytes=0-{len(self._body) - 1}"})
            import base64
            import hashlib

            md5 = hashlib.md5(self._body, usedforsecurity=False).digest()
            name = self._pending["name"]
            meta = {
                "bucket": "bkt",
                "name": name,
                "generation": "1",
                "metageneration": "1",
                "size": str(len(self._body)),
                "md5Hash": self.md5_reported or base64.b64encode(md5).decode(),
                "crc32c": self._pending.get("crc32c"),
                "metadata": self._pending.get("metadata"),
            }
            self.objects[name] = meta
            return _response(200, meta)
        if method == "DELETE" and "/o/" in path:
            name = path.split("/o/", 1)[1]
            if self.objects.pop(name, None) is None:
                return _response(404, {"error": {"code": 404, "message": "No such object"}})
            return _response(204, None)
        raise AssertionError(f"unexpected request {method} {url}")


def _response(status: int, body: Any, headers: dict[str, str] | None = None) -> Any:
    import requests

    answer = requests.Response()
    answer.status_code = status
    answer._content = b"" if body is None else json.dumps(body).encode()
    answer.headers.update({"Content-Type": "application/json", **(headers or {})})
    answer.request = requests.Request("GET", "https://gcs.invalid/").prepare()
    return answer


def _client(fake: FakeGcs) -> Any:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    return storage.Client(project="p", credentials=AnonymousCredentials(), _http=fake)  # type: ignore[no-untyped-call]


@pytest.fixture
def big_bundle(tmp_path: Path) -> Path:
    """Larger than one chunk, so the upload is resumable (the path that checks MD5)."""
    from pyfn_action.cloud.upload import CHUNK_SIZE

    path = tmp_path / "bundle.zip"
    path.write_bytes(DATA * (CHUNK_SIZE // len(DATA) + 100))
    return path


def test_an_honest_upload_is_verified(big_bundle: Path) -> None:
    from pyfn_action.cloud.upload import object_name, upload

    fake = FakeGcs()
    done = upload(
        big_bundle, bucket="bkt", name="f", prefix="pyfn", client=_client(fake), retry_seconds=5
    )
    key = object_name("pyfn", "f", digests(big_bundle).sha256)
    assert (done.object, done.generation, done.skipped) == (key, 1, False)
    assert list(fake.objects) == [key]
    assert [m for m, _ in fake.requests].count("PUT") == 2


def test_bytes_changed_on_the_way_are_refused_and_the_object_deleted(big_bundle: Path) -> None:
    from pyfn_action.cloud.upload import object_name, upload

    fake = FakeGcs(md5_reported="AAAAAAAAAAAAAAAAAAAAAA==")  # not what was sent
    local = digests(big_bundle)
    key = object_name("pyfn", "f", local.sha256)
    with pytest.raises(UploadError) as caught:
        upload(
            big_bundle, bucket="bkt", name="f", prefix="pyfn", client=_client(fake), retry_seconds=5
        )
    error = caught.value
    assert error.what == f"Cloud Storage holds different bytes than were sent for gs://bkt/{key}"
    assert error.why.startswith("the checksums did not match (")
    assert local.md5 in error.why and "AAAAAAAAAAAAAAAAAAAAAA==" in error.why
    assert error.why.endswith("; the object was deleted")
    assert "proxy" in error.fix
    # nothing is left at the bundle's address to pass for it on the next run
    assert fake.objects == {}
    [*_, last] = [r for r in fake.requests if "/o/" in r[1]]  # the object's own requests
    assert last == ("DELETE", f"/storage/v1/b/bkt/o/{key}")
