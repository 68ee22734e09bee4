"""The archives and compressed streams a scan reads inside: zip (Deflate64 too), tar,
gzip, bzip2 and xz, each read within a byte budget."""

from __future__ import annotations

import bz2
import lzma
import struct
import zipfile
import zlib
from typing import Any

import zipfile_deflate64  # its deflate64 module reads Deflate64; never used to write

from pyfn_action.secrets.names import reason

# What the standard library's archive and compression readers raise on hostile or
# damaged data (zipfile alone can raise IndexError, KeyError, struct.error, OverflowError
# and more): at these calls, and only there, any of it means "cannot be read".
DAMAGED = Exception

ZIP_METHOD_NAMES = {  # what a zip member's method number means
    9: "Deflate64",
    12: "bzip2",
    14: "LZMA",
    93: "zstd",
    95: "xz",
    98: "PPMd",
    99: "AES",
}
UNREADABLE_MAGIC = {
    b"7z\xbc\xaf\x27\x1c": "a 7-Zip archive, which pyfn cannot open",
    b"Rar!\x1a\x07": "a RAR archive, which pyfn cannot open",
    b"\x28\xb5\x2f\xfd": "zstd-compressed, which pyfn cannot open",
}
_STREAM_SUFFIXES = {
    ".gz": "",
    ".bz2": "",
    ".xz": "",
    ".tgz": ".tar",
    ".tbz2": ".tar",
    ".txz": ".tar",
}


def stream_kind(data: bytes) -> str | None:
    """ "gzip", "bzip2" or "xz" when ``data`` starts such a stream."""
    if data.startswith(b"\x1f\x8b"):
        return "gzip"
    if data.startswith(b"BZh") and data[4:10] == b"1AY&SY":
        return "bzip2"
    if data.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return None


def is_tar(data: bytes) -> bool:
    """Whether ``data`` starts with a tar header (ustar, or an old one with a valid checksum)."""
    if len(data) < 512:
        return False
    if data[257:262] == b"ustar":
        return True
    try:
        stored = int(data[148:156].replace(b"\0", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    header = data[:512]
    return data[0] != 0 and stored == sum(header[:148]) + 256 + sum(header[156:])


def inner_name(where: str) -> str:
    """What a compressed file holds, named as gzip names it: ``key.json.gz`` → ``key.json``."""
    last = where.rsplit("!", 1)[-1].rsplit("/", 1)[-1]
    for suffix, replacement in _STREAM_SUFFIXES.items():
        if last.lower().endswith(suffix) and len(last) > len(suffix):
            return last[: -len(suffix)] + replacement
    return "(decompressed)"


def raw_member(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """A member's compressed bytes, found through its local header."""
    at = info.header_offset
    if at < 0 or data[at : at + 4] != b"PK\x03\x04":
        raise ValueError("its local header is missing")
    name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
    start = at + 30 + name_len + extra_len
    raw = data[start : start + info.compress_size]
    if len(raw) < info.compress_size:
        raise ValueError("the archive ends inside it")
    return raw


def _read_stored(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    return raw[:room]


def _read_deflated(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    return zlib.decompressobj(-15).decompress(raw, room)


def _read_bzip2(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    return bz2.BZ2Decompressor().decompress(raw, max_length=room)


def _read_lzma(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    # The zip form: version (2 bytes), size of the properties (2), properties, stream;
    # as the .lzma ("alone") form: properties (5), uncompressed size (8), stream.
    (props_len,) = struct.unpack_from("<H", raw, 2)
    props = raw[4 : 4 + props_len]
    if props_len != 5 or len(props) != 5:
        raise ValueError("unusual LZMA properties")
    alone = props + info.file_size.to_bytes(8, "little") + raw[4 + props_len :]
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_ALONE)
    return decompressor.decompress(alone, max_length=room)


def _read_deflate64(raw: bytes, info: zipfile.ZipInfo, room: int) -> bytes:
    # No output bound in its API: fed a little at a time, and stopped past ``room``.
    inflater = zipfile_deflate64.deflate64.Deflate64()
    out = bytearray()
    for at in range(0, len(raw), 4096):
        out += inflater.decompress(raw[at : at + 4096])
        if len(out) >= room or inflater.eof:
            break
    return bytes(out[:room])


ZIP_READERS = {
    zipfile.ZIP_STORED: _read_stored,
    zipfile.ZIP_DEFLATED: _read_deflated,
    zipfile.ZIP_BZIP2: _read_bzip2,
    zipfile.ZIP_LZMA: _read_lzma,
    9: _read_deflate64,
}


def zip_directory(data: bytes) -> tuple[int, int] | None:
    """(entries, central directory size) from the end record, before zipfile reads them."""
    at = data.rfind(b"PK\x05\x06", max(0, len(data) - 65_557))
    if at < 0 or at + 22 > len(data):
        return None
    _, _, _, _, entries, size, _, _ = struct.unpack_from("<4sHHHHLLH", data, at)
    if entries == 0xFFFF or size == 0xFFFFFFFF:
        return None  # zip64: zipfile reads the real counts; the byte budget still holds
    if size and (size > at or data[at - size : at - size + 4] != b"PK\x01\x02"):
        return None  # not an end record: bytes that look like one
    return entries, size


def decompress(kind: str, data: bytes, limit: int) -> tuple[bytes, str]:
    """At most ``limit`` + 1 bytes of a (multi-member) gzip, bzip2 or xz stream, and what
    went wrong: "" when nothing did, "too large", or the error."""
    out = bytearray()
    rest = data
    while rest:
        try:
            chunk, rest, finished = _one_stream(kind, rest, limit + 1 - len(out))
        except DAMAGED as exc:
            return bytes(out), reason(exc)
        out += chunk
        if len(out) > limit:
            return bytes(out[:limit]), "too large"
        if not finished:
            return bytes(out), "truncated"
        rest = rest.lstrip(b"\0")  # padding after the last member
        if rest and stream_kind(rest) != kind:
            break  # trailing bytes that are not another member: ignored, as gzip does
    return bytes(out), ""


def _one_stream(kind: str, data: bytes, room: int) -> tuple[bytes, bytes, bool]:
    """(output up to ``room`` bytes, input after this stream, whether it ended)."""
    if kind == "gzip":
        inflater = zlib.decompressobj(31)
        chunk = inflater.decompress(data, room)
        return chunk, inflater.unused_data, inflater.eof
    decompressor: Any = bz2.BZ2Decompressor() if kind == "bzip2" else lzma.LZMADecompressor()
    chunk = decompressor.decompress(data, max_length=room)
    return chunk, decompressor.unused_data, decompressor.eof
