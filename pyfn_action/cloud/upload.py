"""Upload a bundle to the staging bucket: content-addressed, idempotent, verified.

The object is ``gs://BUCKET/PREFIX/<name>/<sha256>.zip`` with ``sha256`` in its
metadata. If it is already there with the same size, CRC32C, MD5 and ``sha256``
metadata, nothing is sent (an object without MD5 or without that metadata is
read back and hashed first). Otherwise a bundle of at most 8 MiB goes in one
multipart request carrying its MD5 (google-cloud-storage's choice, by size), and a
bigger one as a resumable upload in 8 MiB chunks carrying its CRC32C (and its MD5
with the last chunk), so Cloud Storage refuses a corrupted object; the MD5 it
reports is checked end to end. The upload is made with ``if_generation_match=0``:
it can only create the object, never replace one a concurrent writer made. An
upload cut off half-way is never finalised, so no object claims to be the bundle.
Transient errors (429, 5xx, dropped connections) are retried with exponential
backoff, each request for at most :data:`RETRY_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from pyfn_action.cloud.api_errors import api_error
from pyfn_action.cloud.auth import first_line
from pyfn_action.cloud.names import check_bucket
from pyfn_action.errors import PyfnError, UploadError
from pyfn_action.progress import ProgressFactory, silent
from pyfn_action.report import manifest

log = logging.getLogger(__name__)

CHUNK_SIZE = 8 * 1024 * 1024  # a multiple of 256 KiB, as resumable uploads require
RETRY_SECONDS = 300.0  # the retry budget of each request (each chunk is a request)
REQUEST_TIMEOUT = (30.0, 120.0)  # connect, read: per HTTP request
CONTENT_TYPE = "application/zip"


@dataclass(frozen=True)
class Digests:
    size: int
    sha256: str  # hex
    md5: str  # base64, as Cloud Storage reports it
    crc32c: str  # base64 of the big-endian value, as Cloud Storage reports it


@dataclass(frozen=True)
class Uploaded:
    """Where the bundle is, pinned to its generation."""

    bucket: str
    object: str
    generation: int
    size: int
    sha256: str
    md5: str
    crc32c: str
    skipped: bool  # True when the object was already there ("already uploaded")

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.object}"

    def __str__(self) -> str:
        return f"{self.uri}#{self.generation}"

    def to_dict(self) -> dict[str, Any]:
        return {"uri": str(self), **asdict(self)}


def digests(path: Path) -> Digests:
    """SHA-256, MD5 and CRC32C of a file, in one read."""
    import google_crc32c

    sha, md5, crc = hashlib.sha256(), hashlib.md5(usedforsecurity=False), _crc32c(google_crc32c)
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1024 * 1024):
            sha.update(chunk)
            md5.update(chunk)
            crc.update(chunk)
            size += len(chunk)
    return Digests(
        size=size,
        sha256=sha.hexdigest(),
        md5=base64.b64encode(md5.digest()).decode(),
        crc32c=base64.b64encode(crc.digest()).decode(),
    )


def _crc32c(module: Any) -> Any:
    return module.Checksum()


def object_name(prefix: str, name: str, sha256: str) -> str:
    parts = [p for p in prefix.strip("/").split("/") if p] + [name, f"{sha256}.zip"]
    return "/".join(parts)


def bundle_name(bundle: Path) -> str:
    """The function name recorded in a pyfn bundle's manifest."""
    try:
        return manifest.read_bundle(bundle).function.name
    except FileNotFoundError:
        raise UploadError(f"{bundle} does not exist", fix="Build it with pyfn build") from None
    except (OSError, manifest.ManifestError, zipfile.BadZipFile) as exc:
        raise UploadError(
            f"{bundle} is not a pyfn bundle",
            why=str(exc) if isinstance(exc, manifest.ManifestError) else f"{manifest.PATH}: {exc}",
            fix="Build it with pyfn build, or pass --name",
        ) from None


def storage_client(credentials: Any, project: str | None, env: Mapping[str, str]) -> Any:
    """A google-cloud-storage client.

    ``STORAGE_EMULATOR_HOST`` (the library's own variable) points it at an
    emulator, which takes anonymous requests.
    """
    from google.cloud import storage  # type: ignore[attr-defined]

    emulator = env.get("STORAGE_EMULATOR_HOST")
    if emulator:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=project or "<none>",
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options={"api_endpoint": emulator},
        )
    return storage.Client(project=project or "<none>", credentials=credentials)


def upload(
    bundle: Path,
    *,
    bucket: str,
    name: str,
    prefix: str,
    client: Any,
    progress: ProgressFactory = silent,
    retry_seconds: float = RETRY_SECONDS,
    region: str | None = None,
) -> Uploaded:
    """Put ``bundle`` at its content address in ``bucket`` unless it is there already."""
    from google.api_core import exceptions as gexc
    from google.cloud.storage.exceptions import DataCorruption
    from google.cloud.storage.retry import DEFAULT_RETRY

    bucket = check_bucket(bucket)
    local = digests(bundle)
    key = object_name(prefix, name, local.sha256)
    where = f"gs://{bucket}/{key}"
    retry = DEFAULT_RETRY.with_timeout(retry_seconds)
    handle = client.bucket(bucket)

    def fail(exc: BaseException, doing: str) -> PyfnError:
        return api_error(exc, doing=doing, kind=UploadError, bucket=bucket, region=region)

    def look() -> Any:
        """The object at the bundle's address, or None (a missing bucket answers 404 too)."""
        try:
            return handle.get_blob(key, retry=retry, timeout=REQUEST_TIMEOUT)
        except Exception as exc:
            raise fail(exc, f"reading {where}") from None

    existing = look()
    if existing is not None:
        log.info("already uploaded: %s#%s", where, existing.generation)
        return _verified(existing, local, bucket, key, skipped=True, retry=retry, region=region)

    blob = handle.blob(key, chunk_size=CHUNK_SIZE)
    blob.metadata = {"sha256": local.sha256}
    task = progress(f"upload {key.rsplit('/', 1)[-1][:12]}…", local.size, "B")
    try:
        with bundle.open("rb") as raw:
            reader = _Counting(raw, task.advance)
            blob.upload_from_file(
                reader,
                size=local.size,
                content_type=CONTENT_TYPE,
                if_generation_match=0,
                checksum="md5",
                crc32c_checksum_value=local.crc32c,
                retry=retry,
                timeout=REQUEST_TIMEOUT,
            )
    except gexc.PreconditionFailed:
        # Someone created the object between our look and our upload. Content
        # addressing says it should be ours; we verify, and never replace it.
        existing = look()
        if existing is None:
            raise UploadError(
                f"{where} was reported as existing but cannot be read",
                fix="Run again; if it persists, check the bucket's retention settings",
            ) from None
        log.info("uploaded concurrently by another writer: %s#%s", where, existing.generation)
        return _verified(existing, local, bucket, key, skipped=True, retry=retry, region=region)
    except DataCorruption as exc:
        raise UploadError(
            f"Cloud Storage holds different bytes than were sent for {where}",
            why=f"the checksums did not match ({first_line(str(exc))}); the object was deleted",
            fix="Run again; if it happens again, suspect a proxy that rewrites uploads",
        ) from None
    except Exception as exc:
        raise fail(exc, f"uploading {bundle.name} to {where}") from None
    finally:
        task.close()
    return _verified(blob, local, bucket, key, skipped=False, retry=retry, region=region)


def _verified(
    blob: Any,
    local: Digests,
    bucket: str,
    key: str,
    *,
    skipped: bool,
    retry: Any = None,
    region: str | None = None,
) -> Uploaded:
    """``blob`` judged against the bundle: it is the bundle, or :class:`UploadError`.

    Cloud Storage computes the size, CRC32C and MD5 itself; the ``sha256``
    metadata is what pyfn wrote with the object. All of them must match. Where
    MD5 is missing (composite objects) or the ``sha256`` metadata is (an object
    another tool wrote), the checksums left cannot tell the bundle from a
    look-alike (CRC32C can be matched at will), so the object is read back and
    hashed before it is trusted.
    """
    where = f"gs://{bucket}/{key}"

    def refuse(why: str) -> UploadError:
        return UploadError(
            f"{where} exists but is not this bundle",
            why=f"{why}; objects are named by their SHA-256, so the object was changed or damaged",
            fix=f"Delete it (gcloud storage rm {where}) and upload again",
        )

    remote = (blob.size, blob.crc32c, blob.md5_hash)
    expected = (local.size, local.crc32c, local.md5)
    # A server that does not report a checksum (md5 of composite objects) is judged
    # by the ones it does report; at least one checksum must be there and match.
    checks = [(r, e) for r, e in zip(remote, expected) if r is not None]
    if len(checks) < 2 or any(r != e for r, e in checks):
        raise refuse(f"it has size/crc32c/md5 {remote}, the bundle has {expected}")
    try:
        # Read first: a download rewrites the blob's properties from its response headers.
        generation = int(blob.generation)
    except (TypeError, ValueError):
        raise UploadError(
            f"{where} was reported without a generation",
            why=f"Cloud Storage answered generation {blob.generation!r}",
            fix="Run again; if it persists, check what answers for Cloud Storage "
            "(STORAGE_EMULATOR_HOST, a proxy)",
        ) from None
    metadata = blob.metadata if isinstance(blob.metadata, dict) else {}
    recorded = metadata.get("sha256")
    if recorded is not None and recorded != local.sha256:
        raise refuse(
            f"its sha256 metadata is {str(recorded)[:80]!r}, the bundle's SHA-256 is {local.sha256}"
        )
    if recorded is None or blob.md5_hash is None:
        missing = "sha256 metadata" if recorded is None else "MD5"
        log.info("%s has no %s: reading it back to compare its SHA-256", where, missing)
        actual = _read_back_sha256(
            blob, local.size, generation, retry=retry, region=region, where=where
        )
        if actual != local.sha256:
            raise refuse(
                f"it has no {missing}, and read back its SHA-256 is "
                f"{actual or 'not that of ' + str(local.size) + ' bytes'}, the bundle's is "
                f"{local.sha256}"
            )
    return Uploaded(
        bucket=bucket,
        object=key,
        generation=generation,
        size=local.size,
        sha256=local.sha256,
        md5=local.md5,
        crc32c=local.crc32c,
        skipped=skipped,
    )


class _TooLong(Exception):
    pass


class _Hashing(io.RawIOBase):
    """A write-only sink that hashes what it is given, and refuses more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.sha = hashlib.sha256()
        self.limit = limit
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(data)
        self.count += size
        if self.count > self.limit:
            raise _TooLong
        self.sha.update(data)
        return size

    def tell(self) -> int:
        return self.count


def _read_back_sha256(
    blob: Any, size: int, generation: int, *, retry: Any, region: str | None, where: str
) -> str | None:
    """The SHA-256 of the object's bytes (its pinned generation), or ``None`` when it
    holds more than ``size`` bytes."""
    sink = _Hashing(size)
    try:
        blob.download_to_file(
            sink,
            raw_download=True,  # the stored bytes, never transcoded
            checksum=None,  # the SHA-256 below is the check
            if_generation_match=generation,
            retry=retry,
            timeout=REQUEST_TIMEOUT,
        )
    except _TooLong:
        return None
    except Exception as exc:
        bucket = where.removeprefix("gs://").split("/", 1)[0]
        raise api_error(
            exc, doing=f"reading back {where}", kind=UploadError, bucket=bucket, region=region
        ) from None
    if sink.count != size:
        return None
    return sink.sha.hexdigest()


class _Counting(io.RawIOBase):
    """A read-only file that reports progress, counting each byte once across retries."""

    def __init__(self, raw: BinaryIO, advance: Callable[[int], None]) -> None:
        self._raw = raw
        self._advance = advance
        self._high = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        position = self._raw.tell()
        if position > self._high:
            self._advance(position - self._high)
            self._high = position
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()
