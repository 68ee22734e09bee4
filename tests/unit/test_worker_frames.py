"""The worker's frame reader (the shim's pyfn/worker.py), on a real pipe."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import struct
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

WORKER = Path(__file__).parents[2] / "pyfn_action" / "shim" / "pyfn" / "worker.py"
MiB = 1024 * 1024


@pytest.fixture(scope="module")
def worker() -> ModuleType:
    """worker.py, loaded from its file as the bundle runs it (it is no module of pyfn's)."""
    spec = importlib.util.spec_from_file_location("pyfn_shim_worker", WORKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def test_frames_split_anywhere_are_read_whole_and_in_order(worker: ModuleType) -> None:
    """Frames of every size, written in pieces that cut their prefixes, headers and bodies
    anywhere, come out whole and in order; then the end of the pipe is None."""
    bodies = [b"", b"a", os.urandom(70_000), b"b" * 3, os.urandom(3 * MiB), b"tail"]
    stream = b"".join(_frame({"id": i}, body) for i, body in enumerate(bodies))
    with _pipe_fed(stream, [1, 3, 5, 7, 11, 4099, 65_537, 9]) as fd:
        reader = worker.FrameReader(fd)
        for i, body in enumerate(bodies):
            assert reader.read() == ({"id": i}, body), i
        assert reader.read() is None


def test_a_frame_cut_short_is_none(worker: ModuleType) -> None:
    whole = _frame({"id": 1}, b"x" * 1000)
    with _pipe_fed(whole[:-1], [4096]) as fd:
        assert worker.FrameReader(fd).read() is None


def test_a_large_body_is_copied_once_into_its_final_buffer(worker: ModuleType) -> None:
    """Reading a 32 MiB body holds its pieces and the body they are joined into, no more:
    at most twice its size at the peak (a reader that grows a buffer, then slices and
    copies it, holds three times as much)."""
    body = bytes(32 * MiB)
    stream = _frame({"id": 7}, body) + _frame({"id": 8}, b"next")
    with _pipe_fed(stream, [MiB]) as fd:
        reader = worker.FrameReader(fd)
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
