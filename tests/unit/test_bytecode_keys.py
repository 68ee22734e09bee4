"""The bytecode step's memory of source keys: kept by a file's identity, never by its say."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyfn_action import fetch
from pyfn_action.bundle.bytecode import _SourceKeys
from pyfn_action.bundle.entry import Entry


def later(path: Path) -> None:
    """Give a file just rewritten the later time a change after the file settled gets (in
    a test, the rewrite may fall in the same tick of the kernel's clock)."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _entry(path: Path, arcname: str = "site/m.py") -> Entry:
    return Entry(arcname, path, None, False, "m", "package")


def _kept(keys: _SourceKeys, entry: Entry) -> str | None:
    """The key kept for ``entry``, or None if the memory had none (one was computed)."""
    computed: list[Entry] = []
    key = keys.key(entry, lambda e: computed.append(e) or "computed")
    return None if computed else key


def _remember(keys: _SourceKeys, entry: Entry, key: str) -> None:
    assert keys.key(entry, lambda e: key) == key


def test_a_key_is_kept_by_identity_and_dropped_when_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetch, "SETTLED_SECONDS", -1.0)  # as if made long ago
    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    store = tmp_path / "store" / "sources.json"
    keys = _SourceKeys(store)
    _remember(keys, _entry(source), "k1")  # none kept yet: computed, and kept
    keys.save()
    again = _SourceKeys(store)
    assert _kept(again, _entry(source)) == "k1"
    assert _kept(again, _entry(source, "site/other.py")) is None  # another name: another key
    source.write_text("x = 2\n")  # same size, other bytes, a later time (as after 2 s)
    later(source)
    assert _kept(_SourceKeys(store), _entry(source)) is None
    data = Entry("app/gen.py", None, b"x = 3\n", False, "app", "app")
    _remember(keys, data, "k2")  # bytes without a file have no identity: never kept
    assert _kept(keys, data) is None


def test_a_file_changed_a_moment_ago_is_not_kept(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    keys = _SourceKeys(tmp_path / "sources.json")
    _remember(keys, _entry(source), "k1")  # its times could not tell a same-tick change
    keys.save()
    assert _kept(_SourceKeys(tmp_path / "sources.json"), _entry(source)) is None


@pytest.mark.parametrize("content", [b"not json", b'{"sources": 3}', b'{"other": {}}'])
def test_a_damaged_memory_is_ignored(tmp_path: Path, content: bytes) -> None:
    store = tmp_path / "sources.json"
    store.write_bytes(content)
    source = tmp_path / "m.py"
    source.write_text("x = 1\n")
    assert _kept(_SourceKeys(store), _entry(source)) is None
