"""The worker's end of the shim's protocol: frames read from index.js, frames written to it.

A frame is::

    u32 header length | u32 body length | header (JSON, UTF-8) | body (raw bytes)

both lengths big-endian. Requests come in on one pipe, answers (and the worker's
``ready`` or ``fatal``) go out on another, so nothing the function prints can
corrupt them. Part of the worker (``worker.py`` loads it by path, never by name):
Python 3.9 and the standard library only.
"""

from __future__ import annotations

import json
import logging
import os
import select
import struct
from typing import Any

HEADER = struct.Struct(">II")
# Request frames are read READ_AHEAD bytes at a time at least (a small request in one
# system call, usually), MAX_READ at most (a large body in pieces, joined once).
READ_AHEAD = 1 << 16
MAX_READ = 1 << 20
# Above these, a response is answered 500 here (index.js refuses such frames and kills
# the worker that sends one): 64 MiB of body, 1 MiB of JSON header.
MAX_RESPONSE_BODY = 64 * 1024 * 1024
MAX_RESPONSE_HEADER = 1024 * 1024


class FrameReader:
    """Frames from a pipe. A small frame usually arrives whole in one read; the parts
    of a larger one are read in pieces and joined once, into the buffer of its final
    size: every byte is copied once after it is read, never a copy of a copy."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.ahead = b""  # the last read, of which ``ahead[taken:]`` is not taken yet
        self.taken = 0

    def pending(self, timeout: float = 0.0) -> bool:
        """Whether a request has (at least partly) arrived, waiting at most ``timeout`` s."""
        if self.taken < len(self.ahead):
            return True
        readable, _, _ = select.select([self.fd], [], [], timeout)
        return bool(readable)

    def _take(self, size: int) -> bytes | None:
        """The next ``size`` bytes; None if the pipe ends first."""
        end = self.taken + size
        if end <= len(self.ahead):
            data = self.ahead[self.taken : end]
            self.taken = end
            return data
        pieces: list[bytes | memoryview] = [memoryview(self.ahead)[self.taken :]]
        have = len(self.ahead) - self.taken
        last = b""
        while have < size:
            last = os.read(self.fd, max(READ_AHEAD, min(size - have, MAX_READ)))
            if not last:
                return None
            pieces.append(last)
            have += len(last)
        # The last read may hold the start of the next frame: it is kept for that.
        self.ahead, self.taken = last, len(last) - (have - size)
        pieces[-1] = memoryview(last)[: self.taken]
        return b"".join(pieces)

    def read(self) -> tuple[dict[str, Any], bytes] | None:
        """The next frame's header and body; None once the pipe ends, even mid-frame
        (index.js closed it: its process is gone or shutting down)."""
        head = self._take(HEADER.size)
        if head is None:
            return None
        header_len, body_len = HEADER.unpack(head)
        header = self._take(header_len)
        body = self._take(body_len) if body_len else b""
        if header is None or body is None:
            return None
        return json.loads(header.decode("utf-8")), body


def write_frame(fd: int, header: dict[str, Any], body: bytes = b"") -> None:
    _write_raw(fd, json.dumps(header).encode("utf-8"), body)


def _write_raw(fd: int, data: bytes, body: bytes) -> None:
    view = memoryview(HEADER.pack(len(data), len(body)) + data + body)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def write_response(
    fd: int, request_id: int, status: int, headers: list[list[str]], body: bytes
) -> None:
    """The response frame, or a plain 500 if the response is above the frame's limits."""
    data = json.dumps({"id": request_id, "status": status, "headers": headers}).encode("utf-8")
    if len(body) > MAX_RESPONSE_BODY or len(data) > MAX_RESPONSE_HEADER:
        logging.getLogger("pyfn.worker").error(
            "response too large: %d bytes of body, %d of headers (limits: %d, %d)",
            len(body),
            len(data),
            MAX_RESPONSE_BODY,
            MAX_RESPONSE_HEADER,
        )
        data = json.dumps(
            {"id": request_id, "status": 500, "headers": [["Content-Type", "text/plain"]]}
        ).encode("utf-8")
        body = b"Internal Server Error\n"
    _write_raw(fd, data, body)
