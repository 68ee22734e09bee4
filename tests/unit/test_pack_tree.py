"""How pack plans a standard library tree: site dirs, EXTERNALLY-MANAGED and symlinks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pyfn_action.runtime.pack import _add_tree, _Root
from pyfn_action.runtime.tarball import TarEntry


@pytest.fixture
def planned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> dict[str, TarEntry]:
    stdlib = tmp_path / "usr" / "lib" / "pypy3.9"
    outside = tmp_path / "elsewhere"
    (stdlib / "pkg").mkdir(parents=True)
    (stdlib / "dist-packages" / "thirdparty").mkdir(parents=True)
    (outside / "sub").mkdir(parents=True)
    (stdlib / "pkg" / "mod.py").write_text("x = 1\n")
    (stdlib / "pkg" / "_ext.pypy39-pp73-x86_64-linux-gnu.so").write_bytes(b"not really elf")
    (stdlib / "EXTERNALLY-MANAGED").write_text("[externally-managed]\n")
    (stdlib / "dist-packages" / "thirdparty" / "__init__.py").write_text("")
    (outside / "data.txt").write_text("outside\n")
    (outside / "sub" / "tool").write_text("#!/bin/sh\n")
    (outside / "sub" / "tool").chmod(0o755)
    (stdlib / "alias.py").symlink_to("pkg/mod.py")
    (stdlib / "absolute.py").symlink_to(stdlib / "pkg" / "mod.py")
    (stdlib / "pkg" / "up").symlink_to("..")
    (stdlib / "copied.txt").symlink_to(outside / "data.txt")
    (stdlib / "copied-dir").symlink_to(outside / "sub")
    (stdlib / "dangling").symlink_to(tmp_path / "nowhere")
    (outside / "sub" / "loop").symlink_to(outside / "sub")
    entries: dict[str, TarEntry] = {}
    elves: list[Path] = []
    arc = "lib/pypy3.9"
    with caplog.at_level(logging.WARNING, logger="pyfn_action.runtime.pack"):
        _add_tree(stdlib, arc, _Root(stdlib, arc, skip_site=True), entries, elves)
    assert elves == []
    return entries


@pytest.mark.parametrize(
    ("name", "kind", "mode", "link"),
    [
        ("lib/pypy3.9", "dir", 0o755, ""),
        ("lib/pypy3.9/pkg/mod.py", "file", 0o644, ""),
        ("lib/pypy3.9/pkg/_ext.pypy39-pp73-x86_64-linux-gnu.so", "file", 0o755, ""),
        ("lib/pypy3.9/dist-packages", "dir", 0o755, ""),
        ("lib/pypy3.9/alias.py", "link", 0o644, "pkg/mod.py"),
        ("lib/pypy3.9/absolute.py", "link", 0o644, "pkg/mod.py"),
        ("lib/pypy3.9/pkg/up", "link", 0o755, ".."),
        ("lib/pypy3.9/copied.txt", "file", 0o644, ""),
        ("lib/pypy3.9/copied-dir", "dir", 0o755, ""),
        ("lib/pypy3.9/copied-dir/tool", "file", 0o755, ""),
    ],
)
def test_entry(planned: dict[str, TarEntry], name: str, kind: str, mode: int, link: str) -> None:
    entry = planned[name]
    assert (entry.kind, entry.mode, entry.link) == (kind, mode, link)


@pytest.mark.parametrize(
    "name",
    [
        "lib/pypy3.9/EXTERNALLY-MANAGED",
        "lib/pypy3.9/dist-packages/thirdparty",
        "lib/pypy3.9/dist-packages/thirdparty/__init__.py",
        "lib/pypy3.9/dangling",
        "lib/pypy3.9/copied-dir/loop",
    ],
)
def test_left_out(planned: dict[str, TarEntry], name: str) -> None:
    assert name not in planned
