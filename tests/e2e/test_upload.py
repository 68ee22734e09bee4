"""Upload to a staging bucket: gcp-storage-emulator on loopback, through a proxy that
enforces ifGenerationMatch=0 (the emulator does not) and injects faults."""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import pty
import random
import select
import struct
import subprocess
import sys
import termios
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import BUCKET, hermetic_env, pyfn
from support.gcs import Fault, Proxy, object_meta, put_object

from pyfn_action.cloud.upload import (
    CHUNK_SIZE,
    RETRY_SECONDS,
    digests,
    object_name,
    storage_client,
    upload,
)
from pyfn_action.errors import UploadError
from pyfn_action.report.manifest import PATH, FunctionInfo, Manifest

pytestmark = pytest.mark.e2e


def make_bundle(path: Path, name: str = "hello", size: int = CHUNK_SIZE + 3 * 1024 * 1024) -> Path:
    """A bundle-shaped zip with incompressible content spanning two upload chunks."""
    rng = random.Random(path.name + str(size))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        function = FunctionInfo(
            name=name, entry_point=name, signature="http", script=None, stdin=None, gen=2
        )
        zf.writestr(PATH, Manifest(pyfn_version="0", function=function, runtime={}).to_bytes())
        zf.writestr("payload.bin", rng.randbytes(size))
    return path


def client_for(p: Proxy) -> object:
    return storage_client(None, None, {"STORAGE_EMULATOR_HOST": p.base})


def test_digests_match_hashlib_and_a_known_crc32c(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"123456789")
    d = digests(path)
    assert d.sha256 == hashlib.sha256(b"123456789").hexdigest()
    assert (
        d.md5
        == base64.b64encode(hashlib.md5(b"123456789", usedforsecurity=False).digest()).decode()
    )
    # CRC32C check value of "123456789" is 0xE3069283.
    assert base64.b64decode(d.crc32c) == bytes.fromhex("e3069283")


def test_upload_is_content_addressed_verified_then_skipped(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle.zip")
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    first = upload(bundle, bucket=BUCKET, name="hello", prefix="pyfn", client=client_for(gcs_proxy))
    assert first.object == f"pyfn/hello/{sha}.zip"
    assert not first.skipped and first.generation > 0
    assert str(first) == f"gs://{BUCKET}/pyfn/hello/{sha}.zip#{first.generation}"
    meta = object_meta(gcs_proxy.upstream, BUCKET, first.object)
    assert meta is not None
    assert int(str(meta["size"])) == bundle.stat().st_size
    assert meta["md5Hash"] == first.md5 and meta["crc32c"] == first.crc32c
    assert str(meta["generation"]) == str(first.generation)
    # Resumable: the upload started a session and sent its chunks with PUT.
    assert any(m == "POST" and "uploadType=resumable" in p for m, p, _ in gcs_proxy.log)
    assert sum(1 for m, _, _ in gcs_proxy.log if m == "PUT") >= 2

    sent_before = sum(1 for m, _, _ in gcs_proxy.log if m in ("POST", "PUT"))
    second = upload(
        bundle, bucket=BUCKET, name="hello", prefix="pyfn", client=client_for(gcs_proxy)
    )
    assert second.skipped and second.generation == first.generation
    assert sum(1 for m, _, _ in gcs_proxy.log if m in ("POST", "PUT")) == sent_before
    assert gcs_proxy.refused == []


def test_transient_errors_and_a_dropped_connection_are_retried(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "retry.zip")
    gcs_proxy.faults += [
        Fault("GET", "/o/", times=1, status=503),
        Fault("POST", "uploadType=resumable", times=1, status=429),
        Fault("PUT", "upload_id", times=1, status=None, keep_bytes=1024 * 1024),
        Fault("PUT", "upload_id", times=1, status=502),
    ]
    result = upload(
        bundle,
        bucket=BUCKET,
        name="retry",
        prefix="pyfn",
        client=client_for(gcs_proxy),
        retry_seconds=60,
    )
    assert all(f.times == 0 for f in gcs_proxy.faults), "every fault was met and survived"
    meta = object_meta(gcs_proxy.upstream, BUCKET, result.object)
    assert meta is not None and meta["md5Hash"] == result.md5
    assert int(str(meta["size"])) == bundle.stat().st_size
    assert gcs_proxy.refused == []


def test_an_interrupted_upload_leaves_no_object(gcs_proxy: Proxy, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "cut.zip")
    gcs_proxy.faults.append(Fault("PUT", "upload_id", times=10_000, status=None, keep_bytes=4096))
    with pytest.raises(UploadError) as caught:
        upload(
            bundle,
            bucket=BUCKET,
            name="cut",
            prefix="pyfn",
            client=client_for(gcs_proxy),
            retry_seconds=3,
        )
    assert "Could not reach Google Cloud" in caught.value.message
    key = object_name("pyfn", "cut", digests(bundle).sha256)
    assert object_meta(gcs_proxy.upstream, BUCKET, key) is None
    assert gcs_proxy.refused == []  # the network failed, not a request


def test_an_identical_object_written_meanwhile_is_accepted_not_replaced(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "race.zip", size=1024)
    writes: list[dict[str, object]] = []

    def another_writer(bucket: str, name: str) -> None:
        writes.append(put_object(gcs_proxy.upstream, bucket, name, bundle.read_bytes()))

    gcs_proxy.before_create = another_writer
    result = upload(bundle, bucket=BUCKET, name="race", prefix="pyfn", client=client_for(gcs_proxy))
    assert writes, "the other writer ran between our look and our upload"
    assert result.skipped
    assert str(result.generation) == str(writes[0]["generation"])
    assert any(status == 412 for _, _, status in gcs_proxy.log)
    assert gcs_proxy.refused == []


def test_a_different_object_written_meanwhile_is_an_error_and_kept(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "clash.zip", size=1024)

    def another_writer(bucket: str, name: str) -> None:
        put_object(gcs_proxy.upstream, bucket, name, b"not the bundle")

    gcs_proxy.before_create = another_writer
    with pytest.raises(UploadError) as caught:
        upload(bundle, bucket=BUCKET, name="clash", prefix="pyfn", client=client_for(gcs_proxy))
    assert "exists but is not this bundle" in caught.value.message
    assert "gcloud storage rm" in caught.value.message
    key = object_name("pyfn", "clash", digests(bundle).sha256)
    meta = object_meta(gcs_proxy.upstream, BUCKET, key)
    assert meta is not None and int(str(meta["size"])) == len(b"not the bundle")
    assert gcs_proxy.refused == []  # refused by its precondition, not for its form


def test_missing_bucket_says_how_to_create_it(gcs_proxy: Proxy, tmp_path: Path) -> None:
    bundle = make_bundle(tmp_path / "b.zip", size=1024)
    with pytest.raises(UploadError) as caught:
        upload(
            bundle,
            bucket="no-such-bucket",
            name="x",
            prefix="pyfn",
            client=client_for(gcs_proxy),
            retry_seconds=3,
        )
    assert "gs://no-such-bucket does not exist" in caught.value.message
    assert "gcloud storage buckets create gs://no-such-bucket" in caught.value.message
    assert gcs_proxy.refused == []  # a 404 from the bucket, not one for a malformed request


def test_cli_upload_prints_the_pinned_uri_then_already_uploaded(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "bundle.zip", name="cli-fn", size=2048)
    env = hermetic_env(tmp_path / "cache", STORAGE_EMULATOR_HOST=gcs_proxy.base)
    first = pyfn(["upload", str(bundle), "--bucket", BUCKET], env)
    assert first.code == 0, first.stderr
    sha = hashlib.sha256(bundle.read_bytes()).hexdigest()
    meta = object_meta(gcs_proxy.upstream, BUCKET, f"pyfn/cli-fn/{sha}.zip")
    assert meta is not None
    assert first.stdout == f"uploaded gs://{BUCKET}/pyfn/cli-fn/{sha}.zip#{meta['generation']}\n"
    again = pyfn(["upload", str(bundle), "--bucket", BUCKET, "--prefix", "pyfn", "--json"], env)
    assert again.code == 0, again.stderr
    out = json.loads(again.stdout)
    assert out["skipped"] is True and out["uri"].endswith(f"#{meta['generation']}")
    assert gcs_proxy.refused == []


@pytest.mark.parametrize(
    "bucket", ["ab", "UPPER", "-dash", "has space", "goog-stage", "my-google-bkt", "192.168.1.1"]
)
def test_cli_upload_refuses_invalid_bucket_names_before_any_call(
    gcs_proxy: Proxy, tmp_path: Path, bucket: str
) -> None:
    bundle = make_bundle(tmp_path / "bundle.zip", size=16)
    env = hermetic_env(tmp_path / "cache", STORAGE_EMULATOR_HOST=gcs_proxy.base)
    out = pyfn(["upload", str(bundle), f"--bucket={bucket}"], env)
    assert out.code == 2
    assert "not a valid Cloud Storage bucket name" in out.stderr
    assert "3-63 characters" in out.stderr
    assert gcs_proxy.log == [] and gcs_proxy.refused == []


def test_cli_upload_of_a_file_that_is_no_bundle(gcs_proxy: Proxy, tmp_path: Path) -> None:
    junk = tmp_path / "junk.zip"
    junk.write_bytes(os.urandom(64))
    env = hermetic_env(tmp_path / "cache", STORAGE_EMULATOR_HOST=gcs_proxy.base)
    out = pyfn(["upload", str(junk), "--bucket", BUCKET], env)
    assert out.code == 14
    assert "is not a pyfn bundle" in out.stderr and "Traceback" not in out.stderr
    assert gcs_proxy.log == [] and gcs_proxy.refused == []


def _put_with_metadata(base: str, key: str, data: bytes, metadata: dict[str, str]) -> None:
    """Another writer that sets custom metadata, straight to the emulator."""
    client = storage_client(None, None, {"STORAGE_EMULATOR_HOST": base})
    blob = client.bucket(BUCKET).blob(key)  # type: ignore[attr-defined]
    blob.metadata = metadata
    blob.upload_from_string(data, content_type="application/zip")


def test_uploaded_objects_carry_the_sha256_they_are_named_by(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path / "meta.zip", size=4096)
    result = upload(bundle, bucket=BUCKET, name="meta", prefix="pyfn", client=client_for(gcs_proxy))
    meta = object_meta(gcs_proxy.upstream, BUCKET, result.object)
    assert meta is not None and meta.get("metadata") == {"sha256": result.sha256}
    assert gcs_proxy.refused == []


def test_an_existing_object_whose_sha256_metadata_differs_is_refused(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    # Same bytes, so size, CRC32C and MD5 all match: only the sha256 pyfn wrote tells.
    bundle = make_bundle(tmp_path / "other-sha.zip", size=2048)
    key = object_name("pyfn", "other-sha", digests(bundle).sha256)
    _put_with_metadata(gcs_proxy.upstream, key, bundle.read_bytes(), {"sha256": "0" * 64})
    with pytest.raises(UploadError) as caught:
        upload(bundle, bucket=BUCKET, name="other-sha", prefix="pyfn", client=client_for(gcs_proxy))
    message = caught.value.message
    assert "exists but is not this bundle" in message and "sha256" in message
    assert "0" * 64 in message and digests(bundle).sha256 in message
    assert "gcloud storage rm" in message
    assert not any(m in ("POST", "PUT") for m, _, _ in gcs_proxy.log), "nothing replaced it"
    assert gcs_proxy.refused == []


def test_an_existing_object_without_sha256_metadata_is_read_back_before_it_is_trusted(
    gcs_proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from google.cloud.storage.blob import Blob

    reads: list[int | None] = []
    original = Blob.download_to_file

    def spy(self: Blob, *args: object, **kwargs: object) -> None:
        reads.append(self.generation)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Blob, "download_to_file", spy)
    bundle = make_bundle(tmp_path / "no-meta.zip", size=2048)
    key = object_name("pyfn", "no-meta", digests(bundle).sha256)
    written = put_object(gcs_proxy.upstream, BUCKET, key, bundle.read_bytes())  # no metadata
    result = upload(
        bundle, bucket=BUCKET, name="no-meta", prefix="pyfn", client=client_for(gcs_proxy)
    )
    assert result.skipped and str(result.generation) == str(written["generation"])
    assert reads == [result.generation], "it was read back, at the generation it pins"
    assert gcs_proxy.refused == []


# --- how the bytes go: one request or resumable chunks, each with its checksum --------

MIB_8 = 8 * 1024 * 1024  # docs/deploy.md's number, not the module's constant it judges


def raw_bundle(path: Path, size: int) -> Path:
    """``size`` incompressible bytes: upload() names the object by content, not manifest."""
    path.write_bytes(random.Random(size).randbytes(size))
    return path


def test_a_bundle_of_at_most_8_mib_goes_in_one_request_with_its_md5(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    """docs/deploy.md: "a bundle of at most 8 MiB goes in one request" (exactly 8 MiB here,
    the largest that does); its MD5 goes with it, so Cloud Storage refuses other bytes."""
    bundle = raw_bundle(tmp_path / "eight.zip", MIB_8)
    local = digests(bundle)
    result = upload(
        bundle, bucket=BUCKET, name="eight", prefix="pyfn", client=client_for(gcs_proxy)
    )
    [sent] = gcs_proxy.sent
    assert (sent.kind, sent.data) == ("multipart", MIB_8)
    assert sent.resource is not None
    assert sent.resource["md5Hash"] == local.md5
    assert sent.resource["metadata"] == {"sha256": local.sha256}
    assert not any("uploadType=resumable" in path for _, path, _ in gcs_proxy.log)
    assert not result.skipped and result.md5 == local.md5
    assert gcs_proxy.refused == []


def test_a_bigger_bundle_goes_resumable_in_8_mib_chunks_with_its_checksums(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    """docs/deploy.md: otherwise "resumable (8 MiB chunks)", carrying the local CRC32C (in
    the session's object resource) and the MD5 (on the last chunk) for Cloud Storage to
    check the whole object against."""
    size = 2 * MIB_8 + 12_345
    bundle = raw_bundle(tmp_path / "big.zip", size)
    local = digests(bundle)
    upload(bundle, bucket=BUCKET, name="big", prefix="pyfn", client=client_for(gcs_proxy))
    start, *parts = gcs_proxy.sent
    assert start.kind == "resumable" and start.resource is not None
    assert start.resource["crc32c"] == local.crc32c
    assert start.resource["metadata"] == {"sha256": local.sha256}
    assert [(p.kind, p.data) for p in parts] == [
        ("resumable", MIB_8),
        ("resumable", MIB_8),
        ("resumable", 12_345),
    ]
    assert [p.content_range for p in parts] == [
        f"bytes 0-{MIB_8 - 1}/{size}",
        f"bytes {MIB_8}-{2 * MIB_8 - 1}/{size}",
        f"bytes {2 * MIB_8}-{size - 1}/{size}",
    ]
    assert parts[-1].goog_hash == f"md5={local.md5}"
    assert gcs_proxy.refused == []


def test_every_request_of_an_upload_is_retried_for_at_most_5_minutes_by_default(
    gcs_proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/deploy.md: transient errors are retried "for at most 5 minutes": the retry
    deadline every request of `pyfn upload` runs under, read where the client library
    applies it (no test waits 5 minutes)."""
    from google.cloud.storage._media.requests import _request_helpers
    from google.cloud.storage.bucket import Bucket

    deadlines: list[tuple[str, float | None]] = []
    real_wait, real_get = _request_helpers.wait_and_retry, Bucket.get_blob

    def wait_and_retry(func: Any, retry_strategy: Any) -> Any:
        deadlines.append(("media", getattr(retry_strategy, "timeout", None)))
        return real_wait(func, retry_strategy)  # type: ignore[no-untyped-call]

    def get_blob(self: Any, *args: Any, **kwargs: Any) -> Any:
        deadlines.append(("get", getattr(kwargs.get("retry"), "timeout", None)))
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(_request_helpers, "wait_and_retry", wait_and_retry)
    monkeypatch.setattr(Bucket, "get_blob", get_blob)
    bundle = make_bundle(tmp_path / "bundle.zip", name="budget")  # resumable: two chunks
    env = hermetic_env(tmp_path / "cache", STORAGE_EMULATOR_HOST=gcs_proxy.base)
    out = pyfn(["upload", str(bundle), "--bucket", BUCKET], env)
    assert out.code == 0, out.stderr
    sent = [m for m, p, _ in gcs_proxy.log if "/upload/" in p]
    assert sent == ["POST", "PUT", "PUT"]
    assert RETRY_SECONDS == 300.0
    assert deadlines == [("get", 300.0)] + [("media", 300.0)] * len(sent)
    assert gcs_proxy.refused == []


def run_upload(gcs_proxy: Proxy, tmp_path: Path, *, terminal: bool) -> tuple[int, str, str]:
    """`python -m pyfn_action upload` in a process of its own, its stderr a terminal (a
    pseudo-terminal) or a pipe, as a user's shell or a CI log would have it."""
    name = "bar-tty" if terminal else "bar-pipe"  # two bundles: each test uploads its own
    bundle = make_bundle(tmp_path / f"{name}.zip", name=name, size=MIB_8 + 1024)
    env = hermetic_env(tmp_path / "cache", STORAGE_EMULATOR_HOST=gcs_proxy.base)
    argv = [sys.executable, "-m", "pyfn_action", "upload", str(bundle), "--bucket", BUCKET]
    if not terminal:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout, done.stderr
    main, child = pty.openpty()
    # A terminal has a size (a bare pseudo-terminal's is 0x0, where tqdm draws nothing).
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=child)
    os.close(child)
    drawn = bytearray()
    try:
        while True:
            ready, _, _ = select.select([main], [], [], 120)
            assert ready, "the upload drew nothing for 120 s"
            try:
                chunk = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        stdout = process.stdout.read() if process.stdout else b""
        code = process.wait(timeout=120)
    finally:
        os.close(main)
        if process.stdout:
            process.stdout.close()
    return code, stdout.decode(), drawn.decode(errors="replace")


def test_the_upload_shows_a_progress_bar_on_a_terminal(gcs_proxy: Proxy, tmp_path: Path) -> None:
    """docs/deploy.md: "A progress bar shows on a terminal"."""
    code, stdout, stderr = run_upload(gcs_proxy, tmp_path, terminal=True)
    assert code == 0, stderr
    sha = digests(tmp_path / "bar-tty.zip").sha256
    assert stdout.startswith(f"uploaded gs://{BUCKET}/pyfn/bar-tty/{sha}.zip#")
    assert f"\rupload {sha[:12]}…:   0%|" in stderr, stderr  # the bar, drawn in place
    assert gcs_proxy.refused == []


def test_the_upload_draws_nothing_when_stderr_is_not_a_terminal(
    gcs_proxy: Proxy, tmp_path: Path
) -> None:
    """... and only there: a CI log gets no bar."""
    code, stdout, stderr = run_upload(gcs_proxy, tmp_path, terminal=False)
    assert code == 0, stderr
    assert stdout.startswith(f"uploaded gs://{BUCKET}/pyfn/bar-pipe/")
    assert "%|" not in stderr and "\r" not in stderr and "upload " not in stderr, stderr
    assert gcs_proxy.refused == []
