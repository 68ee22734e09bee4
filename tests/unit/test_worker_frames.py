"""The worker's frames (the shim's pyfn/pyfn_frames.py), on real pipes."""

from __future__ import annotations

import contextlib
import json
import os
import struct
import threading
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from support.shimpy import shim_module

MiB = 1024 * 1024
Frames = list[tuple[dict[str, object], bytes]]


@pytest.fixture(scope="module")
def frames() -> ModuleType:
    """pyfn_frames.py, loaded from its file as the worker loads it."""
    return shim_module("pyfn_frames")


def _frame(header: dict[str, object], body: bytes) -> bytes:
    data = json.dumps(header).encode()
    return struct.pack(">II", len(data), len(body)) + data + body


@contextlib.contextmanager
def _pipe_fed(data: bytes, pieces: list[int]) -> Iterator[int]:
    """A pipe's read end; a thread writes ``data`` into it in pieces of these sizes (the last
    repeated), without copying it, then closes it."""

    def write(fd: int) -> None:
        view, sizes = memoryview(data), iter(pieces)
        size = pieces[-1]
        with contextlib.suppress(BrokenPipeError), os.fdopen(fd, "wb", buffering=0) as out:
            while view:
                size = next(sizes, size)
                view = view[out.write(view[:size]) :]

    read, write_end = os.pipe()
    writer = threading.Thread(target=write, args=(write_end,))
    writer.start()
    try:
        yield read
    finally:
        os.close(read)
        writer.join(timeout=30)


def test_frames_split_anywhere_are_read_whole_and_in_order(frames: ModuleType) -> None:
    """Frames of every size, written in pieces that cut their prefixes, headers and bodies
    anywhere, come out whole and in order; then the end of the pipe is None."""
    bodies = [b"", b"a", os.urandom(70_000), b"b" * 3, os.urandom(3 * MiB), b"tail"]
    stream = b"".join(_frame({"id": i}, body) for i, body in enumerate(bodies))
    with _pipe_fed(stream, [1, 3, 5, 7, 11, 4099, 65_537, 9]) as fd:
        reader = frames.FrameReader(fd)
        for i, body in enumerate(bodies):
            assert reader.read() == ({"id": i}, body), i
        assert reader.read() is None


def test_a_frame_cut_short_is_none(frames: ModuleType) -> None:
    whole = _frame({"id": 1}, b"x" * 1000)
    with _pipe_fed(whole[:-1], [4096]) as fd:
        assert frames.FrameReader(fd).read() is None


def test_a_large_body_is_copied_once_into_its_final_buffer(frames: ModuleType) -> None:
    """Reading a 32 MiB body holds its pieces and the body they are joined into, no more:
    at most twice its size at the peak (a reader that grows a buffer, then slices and
    copies it, holds three times as much)."""
    tracemalloc = pytest.importorskip("tracemalloc")  # CPython's: PyPy has none
    body = bytes(32 * MiB)
    stream = _frame({"id": 7}, body) + _frame({"id": 8}, b"next")
    with _pipe_fed(stream, [MiB]) as fd:
        reader = frames.FrameReader(fd)
        tracemalloc.start()
        try:
            header, got = reader.read()
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert header == {"id": 7} and got == body
        ratio = peak / len(body)
        assert ratio < 2.25, f"reading the body held {ratio:.2f} times its size"
        assert reader.read() == ({"id": 8}, b"next")


def _read_all(frames: ModuleType, fd: int) -> Frames:
    reader = frames.FrameReader(fd)
    got = []
    while (frame := reader.read()) is not None:
        got.append(frame)
    return got


def test_several_frames_in_one_write_are_read_one_by_one(frames: ModuleType) -> None:
    """A write that holds several whole frames and the start of the next: each read
    gives one frame, and the bytes of the next are kept for it."""
    sent = [({"id": i, "method": "GET"}, bytes([i]) * i) for i in range(40)]
    stream = b"".join(_frame(header, body) for header, body in sent)
    with _pipe_fed(stream, [len(stream)]) as fd:
        assert _read_all(frames, fd) == sent


def test_frames_fed_one_byte_at_a_time(frames: ModuleType) -> None:
    sent = [({"id": 1}, b"first"), ({"id": 2, "url": "/é?x=1"}, b""), ({"id": 3}, b"\x00\xff")]
    stream = b"".join(_frame(header, body) for header, body in sent)
    with _pipe_fed(stream, [1]) as fd:
        assert _read_all(frames, fd) == sent


@pytest.mark.parametrize(
    "keep",
    [0, 3, 8, 9, 20, -1],
    ids=["nothing", "in-the-lengths", "lengths-only", "in-the-header", "in-the-body", "short"],
)
def test_a_pipe_that_ends_mid_frame_is_the_end(frames: ModuleType, keep: int) -> None:
    """After whole frames, a frame cut anywhere (its lengths, its header, its body) is
    the end of the requests: None, as for a pipe that closed between frames."""
    first = _frame({"id": 1}, b"ok")
    cut = _frame({"id": 2}, b"0123456789")[:keep]
    with _pipe_fed(first + cut, [5]) as fd:
        reader = frames.FrameReader(fd)
        assert reader.read() == ({"id": 1}, b"ok")
        assert reader.read() is None


def test_lengths_past_the_end_of_the_pipe_are_the_end(frames: ModuleType) -> None:
    """A length that promises more than ever comes (a corrupt prefix) reads to the
    pipe's end and gives None: no frame is made up from what there is."""
    data = json.dumps({"id": 1}).encode()
    for header_len, body_len in [(len(data) + 1, 0), (len(data), 1), (2**32 - 1, 0)]:
        stream = struct.pack(">II", header_len, body_len) + data
        with _pipe_fed(stream, [4096]) as fd:
            assert frames.FrameReader(fd).read() is None, (header_len, body_len)


def test_a_header_length_that_cuts_the_json_raises(frames: ModuleType) -> None:
    """A header length shorter than its JSON is a broken frame: an error, not a guess
    (the worker dies of it and index.js replaces it)."""
    data = json.dumps({"id": 1}).encode()
    for header_len in (len(data) - 1, 0):
        stream = struct.pack(">II", header_len, 0) + data
        with _pipe_fed(stream, [4096]) as fd, pytest.raises(ValueError):
            frames.FrameReader(fd).read()


def test_pending_sees_a_request_already_read_ahead(frames: ModuleType) -> None:
    stream = _frame({"id": 1}, b"a") + _frame({"id": 2}, b"b")
    read, write = os.pipe()
    try:
        reader = frames.FrameReader(read)
        assert reader.pending(0.0) is False
        os.write(write, stream)
        assert reader.pending(1.0) is True
        assert reader.read() == ({"id": 1}, b"a")
        assert reader.pending(0.0) is True  # the second came in the same read
        assert reader.read() == ({"id": 2}, b"b")
        assert reader.pending(0.0) is False
    finally:
        os.close(read)
        os.close(write)


def _written(frames: ModuleType, write: Callable[[int], None]) -> Frames:
    """What ``write(fd)`` put on a pipe, read back as frames (read while it writes)."""
    read, write_end = os.pipe()
    got: Frames = []
    reader = threading.Thread(target=lambda: got.extend(_read_all(frames, read)))
    reader.start()
    try:
        write(write_end)
    finally:
        os.close(write_end)
        reader.join(timeout=30)
        os.close(read)
    return got


def test_written_frames_read_back_whole(frames: ModuleType) -> None:
    """What the worker writes is what index.js reads: lengths, JSON header, raw body; a
    body larger than the pipe's buffer goes out in several writes, whole."""
    body = os.urandom(3 * MiB)

    def write(fd: int) -> None:
        frames.write_frame(fd, {"type": "ready", "pid": 7, "load_ms": 12})
        frames.write_response(fd, 5, 200, [["Content-Type", "application/octet-stream"]], body)
        frames.write_response(fd, 6, 204, [], b"")

    assert _written(frames, write) == [
        ({"type": "ready", "pid": 7, "load_ms": 12}, b""),
        ({"id": 5, "status": 200, "headers": [["Content-Type", "application/octet-stream"]]}, body),
        ({"id": 6, "status": 204, "headers": []}, b""),
    ]


def test_a_response_above_the_frame_limits_is_a_plain_500(
    frames: ModuleType, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """index.js kills a worker that sends a frame above its limits: such a response is
    answered 500 here instead, for its request alone, and logged."""
    monkeypatch.setattr(frames, "MAX_RESPONSE_BODY", 10)
    monkeypatch.setattr(frames, "MAX_RESPONSE_HEADER", 200)
    plain = {"id": 1, "status": 500, "headers": [["Content-Type", "text/plain"]]}

    def write(fd: int) -> None:
        frames.write_response(fd, 1, 200, [], b"x" * 11)
        frames.write_response(fd, 1, 200, [["X-Big", "y" * 200]], b"")
        frames.write_response(fd, 2, 200, [["X-Small", "y"]], b"x" * 10)

    assert _written(frames, write) == [
        (plain, b"Internal Server Error\n"),
        (plain, b"Internal Server Error\n"),
        ({"id": 2, "status": 200, "headers": [["X-Small", "y"]]}, b"x" * 10),
    ]
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["response too large"] * 2
