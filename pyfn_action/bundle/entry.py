"""One file of the bundle, as every bundle step passes it on: where its bytes come
from, where it goes in the zip, and which part of the bundle it belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Entry:
    """One file of the bundle."""

    arcname: str  # POSIX path inside the zip
    source: Path | None  # file to read, or None when ``data`` holds the bytes
    data: bytes | None
    executable: bool
    component: str
    kind: str

    def size(self) -> int:
        if self.data is not None:
            return len(self.data)
        assert self.source is not None
        return self.source.stat().st_size

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.source is not None
        return self.source.read_bytes()
