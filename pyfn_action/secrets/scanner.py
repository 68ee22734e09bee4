"""The scan of one file's bytes: keys in its text and encodings, then the archives and
streams inside it, member by member, within :class:`~pyfn_action.secrets.model.Limits`."""

from __future__ import annotations

import io
import json
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field

from pyfn_action.secrets.containers import (
    DAMAGED,
    UNREADABLE_MAGIC,
    ZIP_METHOD_NAMES,
    ZIP_READERS,
    decompress,
    inner_name,
    is_tar,
    raw_member,
    stream_kind,
    zip_directory,
)
from pyfn_action.secrets.model import Finding, Limits, Scan, Unscanned, too_large
from pyfn_action.secrets.names import reason, short, shown_name
from pyfn_action.secrets.patterns import (
    JSON_MARKERS,
    PEM,
    PEM_SPAN,
    PKCS12_SUFFIXES,
    PUTTY,
    SSH2,
    b64_runs,
    b64decode,
    der_key,
    is_text,
    json_credentials,
    line_of,
    loose_credentials,
    text_views,
)
from pyfn_action.sizes import format_size


@dataclass
class Scanner:
    """One file's scan: what it found and what it could not read, and the budget left."""

    limits: Limits
    bytes_left: int = 0
    members_left: int = 0
    encoded_left: int = 0
    notes_left: int = 0
    notes_dropped: int = 0
    findings: list[Finding] = field(default_factory=list)
    unscanned: list[Unscanned] = field(default_factory=list)
    _stopped: set[str] = field(default_factory=set)

    def run(self, where: str, data: bytes) -> Scan:
        self.bytes_left = self.limits.total_bytes
        self.members_left = self.limits.members
        self.encoded_left = self.limits.encoded
        self.notes_left = self.limits.notes
        self._blob(where, data, 0)
        if self.notes_dropped:
            self.unscanned.append(
                Unscanned(where, f"and {self.notes_dropped} more that could not be scanned")
            )
        seen: set[tuple[str, str]] = set()
        findings = []
        for finding in self.findings:
            if (finding.where, finding.what) not in seen:
                seen.add((finding.where, finding.what))
                findings.append(finding)
        return Scan(tuple(findings), tuple(self.unscanned))

    # -- bookkeeping

    def _note(self, where: str, why: str) -> None:
        if self.notes_left <= 0:
            self.notes_dropped += 1
            return
        self.notes_left -= 1
        self.unscanned.append(Unscanned(where, why))

    def _stop(self, where: str, limit: str, why: str) -> None:
        """Say once per limit that it stopped the scan (never counted against ``notes``)."""
        if limit not in self._stopped:
            self._stopped.add(limit)
            self.unscanned.append(Unscanned(where, why))

    def _room(self) -> int:
        return max(0, min(self.limits.file_bytes, self.bytes_left))

    def _spend(self, where: str, count: int) -> bool:
        self.bytes_left -= count
        if self.bytes_left < 0:
            self._out_of_bytes(where)
            return False
        return True

    def _out_of_bytes(self, where: str) -> None:
        self._stop(
            where,
            "bytes",
            f"the scan stopped: more than {format_size(self.limits.total_bytes)} unpacked "
            "from one file (a zip bomb?)",
        )

    def _take_member(self, where: str) -> bool:
        self.members_left -= 1
        if self.members_left < 0:
            self._stop(
                where,
                "members",
                f"the scan stopped: more than {self.limits.members} archive members in one file",
            )
            return False
        return True

    # -- one blob of bytes: a file, a member, a decoded string

    def _blob(self, where: str, data: bytes, depth: int, *, via: str = "") -> None:
        here = len(self.findings)
        self._keys(where, data, depth, named=not via)
        if via:  # found inside an encoding of ``where``: say so, once
            for index in range(here, len(self.findings)):
                finding = self.findings[index]
                if finding.where == where and not finding.what.endswith(f" ({via})"):
                    self.findings[index] = Finding(where, f"{finding.what} ({via})", finding.lineno)
        self._containers(where, data, depth)

    def _keys(self, where: str, data: bytes, depth: int, *, named: bool) -> None:
        if named and where.lower().endswith(PKCS12_SUFFIXES):  # a file's or member's name
            self.findings.append(Finding(where, "PKCS#12 key store"))
        der = der_key(data)
        if der is not None:
            self.findings.append(Finding(where, der))
        for view in text_views(data):
            self._text_keys(where, view, depth)

    def _text_keys(self, where: str, view: bytes, depth: int) -> None:
        match = PEM.search(view)
        if match:
            label = short(match.group(1).decode("ascii"))
            what = "PGP private key block" if label.startswith("PGP ") else f"PEM {label}"
            self.findings.append(Finding(where, what, line_of(view, match.start())))
        for marker, pattern, what in (
            (b"---- BEGIN SSH2", SSH2, "SSH2 private key"),
            (b"PuTTY-User-Key-File-", PUTTY, "PuTTY private key"),
        ):
            other = pattern.search(view) if marker in view else None
            if other:
                self.findings.append(Finding(where, what, line_of(view, other.start())))
        if any(one in view and two in view for one, two in JSON_MARKERS):
            kinds = None
            try:
                kinds = json_credentials(json.loads(view.decode("utf-8-sig")))
            except (UnicodeDecodeError, ValueError, RecursionError):
                kinds = loose_credentials(view)
            self.findings += [Finding(where, kind) for kind in kinds]
        if is_text(view) and depth < self.limits.depth:
            self._base64(where, view, depth)

    def _base64(self, where: str, view: bytes, depth: int) -> None:
        armored = [m.span() for m in PEM_SPAN.finditer(view)] if b"-----BEGIN" in view else []
        for offset, run in b64_runs(view):
            if any(start <= offset < end for start, end in armored):
                continue  # a PEM body: judged by its header
            decoded = b64decode(run)
            if decoded is None or len(decoded) < 32:
                continue
            self.encoded_left -= 1
            if self.encoded_left < 0:
                self._stop(
                    where,
                    "encoded",
                    f"the scan stopped: more than {self.limits.encoded} base64 strings decoded "
                    "in one file",
                )
                return
            if not self._spend(where, len(decoded)):  # says it when over the budget
                return
            here = len(self.findings)
            self._blob(where, decoded, depth + 1, via="base64-encoded")
            if len(self.findings) > here:  # the line of the base64 text, counted only now
                line = line_of(view, offset)
                self.findings[here:] = [
                    Finding(f.where, f.what, line) if f.where == where else f
                    for f in self.findings[here:]
                ]

    def _containers(self, where: str, data: bytes, depth: int) -> None:
        kind = None
        if data.startswith((b"PK\x03\x04", b"PK\x05\x06")) or b"PK\x05\x06" in data[-65_557:]:
            kind = "zip"
        elif stream_kind(data) is not None:
            kind = "stream"
        elif is_tar(data):
            kind = "tar"
        else:
            for magic, why in UNREADABLE_MAGIC.items():
                if data.startswith(magic):
                    self._note(where, why)
            return
        if depth >= self.limits.depth:
            self._note(where, f"archives nested more than {self.limits.depth} archives deep")
            return
        if self.bytes_left <= 0:  # its members cannot be unpacked: said, never silent
            self._out_of_bytes(where)
            return
        if kind == "zip":
            self._zip(where, data, depth)
        elif kind == "stream":
            self._stream(where, data, depth)
        else:
            self._tar(where, data, depth)

    # -- zip

    def _zip(self, where: str, data: bytes, depth: int) -> None:
        declared = zip_directory(data)
        if declared is not None:
            # Refused before zipfile reads a directory of millions of entries into memory.
            entries, directory_size = declared
            if entries > self.members_left or directory_size > 256 * self.members_left:
                self.members_left = 0
                self._take_member(where)
                return
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except DAMAGED as exc:
            if data.startswith(b"PK\x03\x04"):
                self._note(
                    where,
                    f"not a readable zip archive ({reason(exc)}); its members were read "
                    "from their local headers",
                )
                self._local_headers(where, data, depth)
            return
        with archive:
            for info in archive.infolist():
                if info.filename.endswith("/"):
                    continue
                name = f"{where}!{shown_name(info.filename)}"
                if not self._take_member(name):
                    return
                self._zip_member(data, info, name, depth)
                if self.bytes_left < 0:  # over the budget, and said so
                    return

    def _zip_member(self, data: bytes, info: zipfile.ZipInfo, name: str, depth: int) -> None:
        if info.flag_bits & 0x41:  # traditional or strong encryption
            self._note(name, "encrypted, so it cannot be read")
            return
        if info.file_size > self.limits.file_bytes:
            self._note(name, too_large(info.file_size, self.limits))
            return
        method = info.compress_type
        if method not in ZIP_READERS:
            known = ZIP_METHOD_NAMES.get(method, f"method {method}")
            self._note(name, f"compressed with {known}, which cannot be read")
            return
        room = self._room()
        try:
            raw = raw_member(data, info)
            content = ZIP_READERS[method](raw, info, room + 1)
        except DAMAGED as exc:
            self._note(name, f"cannot be read ({reason(exc)})")
            return
        if len(content) > room:
            if room < self.limits.file_bytes:
                self._out_of_bytes(name)
            else:  # its declared size was smaller
                limit = format_size(self.limits.file_bytes)
                self._note(name, f"unpacks to more than the {limit} scan limit")
            return
        if not self._spend(name, len(content)):
            return
        if len(content) != info.file_size or zlib.crc32(content) != info.CRC:
            self._note(name, "damaged: its CRC-32 does not match (scanned as read)")
        self._blob(name, content, depth + 1)

    def _local_headers(self, where: str, data: bytes, depth: int) -> None:
        """Members of a zip whose central directory is gone, from their local headers."""
        pos = 0
        while True:
            pos = data.find(b"PK\x03\x04", pos)
            if pos < 0 or pos + 30 > len(data):
                return
            _, _, flags, method, _, _, _, size, _, name_len, extra_len = struct.unpack_from(
                "<4sHHHHHLLLHH", data, pos
            )
            raw_name = data[pos + 30 : pos + 30 + name_len]
            start = pos + 30 + name_len + extra_len
            pos = start if size in (0, 0xFFFFFFFF) else start + size
            text = raw_name.decode("utf-8" if flags & 0x800 else "cp437", "replace")
            if text.endswith("/"):
                continue
            name = f"{where}!{shown_name(text)}"
            if not self._take_member(name):
                return
            if flags & 0x1:
                self._note(name, "encrypted, so it cannot be read")
                continue
            room = self._room()
            if method == zipfile.ZIP_STORED and size not in (0, 0xFFFFFFFF):
                content = data[start : start + min(size, room + 1)]
            elif method == zipfile.ZIP_DEFLATED:
                inflater = zlib.decompressobj(-15)
                end = len(data) if size in (0, 0xFFFFFFFF) else start + size
                try:
                    content = inflater.decompress(data[start:end], room + 1)
                except zlib.error as exc:
                    self._note(name, f"cannot be read ({reason(exc)})")
                    continue
                if not self._spend(name, len(content)):
                    return
            else:
                method_name = ZIP_METHOD_NAMES.get(method, f"method {method}")
                self._note(name, f"cannot be read from a damaged archive ({method_name})")
                continue
            if len(content) > room:
                self._note(name, too_large(len(content), self.limits))
                continue
            self._blob(name, content, depth + 1)

    # -- gzip, bzip2, xz; tar

    def _stream(self, where: str, data: bytes, depth: int) -> None:
        kind = stream_kind(data)
        assert kind is not None
        room = self._room()
        content, problem = decompress(kind, data, room)
        if not self._spend(where, len(content)):
            return
        if problem == "too large":
            if room < self.limits.file_bytes:
                self._out_of_bytes(where)
            else:
                limit = format_size(self.limits.file_bytes)
                self._note(
                    where,
                    f"unpacks to more than the {limit} scan limit: only its first {limit} "
                    "were scanned",
                )
        elif problem:
            self._note(
                where, f"damaged {kind} data ({problem}); what could be unpacked was scanned"
            )
        if is_tar(content):
            self._tar(where, content, depth)
        else:
            self._blob(f"{where}!{inner_name(where)}", content, depth + 1)

    def _tar(self, where: str, data: bytes, depth: int) -> None:
        try:
            archive = tarfile.open(fileobj=io.BytesIO(data), mode="r:")  # noqa: SIM115
        except DAMAGED as exc:
            self._note(where, f"not a readable tar archive ({reason(exc)})")
            return
        with archive:
            while True:
                try:
                    info = archive.next()
                except DAMAGED as exc:
                    self._note(
                        where,
                        f"damaged tar archive ({reason(exc)}); members after "
                        "the damage were not scanned",
                    )
                    return
                if info is None:
                    return
                if not info.isreg():
                    continue
                name = f"{where}!{shown_name(info.name)}"
                if not self._take_member(name):
                    return
                if info.size > self.limits.file_bytes:
                    self._note(name, too_large(info.size, self.limits))
                    continue
                try:
                    member = archive.extractfile(info)
                    content = member.read() if member is not None else b""
                except DAMAGED as exc:
                    self._note(name, f"cannot be read ({reason(exc)})")
                    continue
                self._blob(name, content, depth + 1)
                if self.bytes_left < 0:  # over the budget, and said so
                    return
