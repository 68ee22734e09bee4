"""How an object already at the bundle's address is judged (no server: a stand-in blob).

Cloud Storage computes size, CRC32C and MD5 itself; the ``sha256`` metadata is
what pyfn wrote. A composite object has no MD5, and CRC32C can be matched by
anyone, so where MD5 or the sha256 metadata is missing the object is read back
and hashed before it is trusted.
"""

from __future__ import annotations

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
