from __future__ import annotations

import tarfile
from pathlib import Path

import pytest
from support.tarballs import TOP, add_file, add_link, fake_runtime

from pyfn_action.archive import extract
from pyfn_action.errors import UnsafeArchive


def test_extracts_and_strips_the_top_directory(tmp_path: Path) -> None:
    archive = tmp_path / "rt.tar.gz"
    fake_runtime(archive)
    top = extract(archive, tmp_path / "out")
    assert top == TOP
    exe = tmp_path / "out" / "bin" / "pypy3.9"
    assert exe.read_bytes() == b"#!/bin/sh\n"
    assert exe.stat().st_mode & 0o111
    link = tmp_path / "out" / "bin" / "pypy3"
    assert link.is_symlink() and link.resolve() == exe.resolve()


def _bad(tmp_path: Path, build) -> Path:
    archive = tmp_path / "bad.tar"
    with tarfile.open(archive, "w") as tar:
        add_file(tar, f"{TOP}/bin/pypy3.9", b"x", 0o755)
        build(tar)
    return archive


@pytest.mark.parametrize(
    ("label", "build", "reason"),
    [
        ("dotdot", lambda t: add_file(t, f"{TOP}/../../evil", b"x"), "'..'"),
        ("absolute", lambda t: add_file(t, "/tmp/evil", b"x"), "absolute"),
        (
            "escaping symlink",
            lambda t: add_link(t, f"{TOP}/lib/x", "../../../etc/passwd"),
            "outside",
        ),
        ("absolute symlink", lambda t: add_link(t, f"{TOP}/lib/x", "/etc/passwd"), "outside"),
        (
            "hard link out",
            lambda t: add_link(t, f"{TOP}/lib/x", "/etc/passwd", hard=True),
            "not in the archive",
        ),
    ],
)
def test_refuses_unsafe_members(tmp_path: Path, label: str, build, reason: str) -> None:
    archive = _bad(tmp_path, build)
    dest = tmp_path / "out"
    with pytest.raises(UnsafeArchive, match=reason):
        extract(archive, dest)
    assert not dest.exists()  # judged before anything was written


def test_refuses_device_files(tmp_path: Path) -> None:
    def device(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(f"{TOP}/dev/null")
        info.type = tarfile.CHRTYPE
        tar.addfile(info)

    with pytest.raises(UnsafeArchive, match="device"):
        extract(_bad(tmp_path, device), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_inner_symlink_is_allowed(tmp_path: Path) -> None:
    archive = _bad(tmp_path, lambda t: add_link(t, f"{TOP}/bin/pypy", "pypy3.9"))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "bin" / "pypy").is_symlink()
