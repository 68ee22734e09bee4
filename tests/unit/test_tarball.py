"""pyfn_action.runtime.tarball: same entries, same bytes, whatever the files' times and owners."""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

import pytest

from pyfn_action.progress import silent
from pyfn_action.runtime.tarball import TarEntry, compression_for, write_tar


def _entries(src: Path) -> dict[str, TarEntry]:
    return {
        "top/bin/tool": TarEntry.file(src / "tool", 0o755),
        "top/bin/alias": TarEntry.symlink("tool", 0o755),
        "top/lib/deep/data.txt": TarEntry.file(src / "data.txt", 0o644),
        "top/lib/NOTE": TarEntry.blob(b"hello\n"),
    }


@pytest.fixture
def src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "tool").write_bytes(b"\x7fELF fake")
    (src / "data.txt").write_text("data\n")
    return src


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz", ".tar.bz2", ".tar.xz"])
def test_same_files_same_bytes(src: Path, tmp_path: Path, suffix: str) -> None:
    """Same files (content, mode bits of the entry, mtime) give the same archive."""
    compression = compression_for(Path(f"a{suffix}"))
    assert compression is not None
    for path in src.iterdir():
        os.utime(path, (1_600_000_000, 1_600_000_000))
    first = tmp_path / "out1" / f"a{suffix}"
    second = tmp_path / "out2" / f"b{suffix}"
    sha1 = write_tar(
        _entries(src), first, compression=compression, epoch=0, progress=silent, label="x"
    )
    for path in src.iterdir():
        path.chmod(0o600)  # the entry's mode is written, not the file's
    sha2 = write_tar(
        _entries(src), second, compression=compression, epoch=0, progress=silent, label="x"
    )
    assert sha1 == sha2
    assert first.read_bytes() == second.read_bytes()
    assert sorted(p.name for p in first.parent.iterdir()) == [first.name]
    with tarfile.open(first) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "top",
        "top/bin",
        "top/bin/alias",
        "top/bin/tool",
        "top/lib",
        "top/lib/NOTE",
        "top/lib/deep",
        "top/lib/deep/data.txt",
    ]
    modes = {m.name: m.mode for m in members}
    assert modes["top/bin/tool"] == modes["top/lib"] == 0o755
    assert modes["top/lib/deep/data.txt"] == modes["top/lib/NOTE"] == 0o644
    assert {(m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, "", "")}
    # Copied files keep their time, so compiled bytecode stays valid; the rest get the epoch.
    times = {m.name: m.mtime for m in members}
    assert times["top/bin/tool"] == times["top/lib/deep/data.txt"] == 1_600_000_000
    assert times["top/lib/NOTE"] == times["top/lib"] == times["top/bin/alias"] == 0


def test_file_times_are_kept(src: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.tar.gz"
    sha1 = write_tar(_entries(src), out, compression="gz", epoch=0, progress=silent, label="x")
    os.utime(src / "data.txt", (1_700_000_000, 1_700_000_000))
    sha2 = write_tar(_entries(src), out, compression="gz", epoch=0, progress=silent, label="x")
    assert sha1 != sha2


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.tar.gz", "gz"),
        ("a.tgz", "gz"),
        ("a.tar.bz2", "bz2"),
        ("a.tar.xz", "xz"),
        ("a.tar", None),
        ("a.zip", None),
        (".tar.gz", None),
        ("a.tar.zst", None),
    ],
)
def test_compression_for(name: str, expected: str | None) -> None:
    assert compression_for(Path(name)) == expected


def test_failure_leaves_nothing(src: Path, tmp_path: Path) -> None:
    entries = _entries(src)
    (src / "data.txt").unlink()  # vanishes between planning and writing
    out = tmp_path / "out" / "a.tar.gz"
    with pytest.raises(FileNotFoundError):
        write_tar(entries, out, compression="gz", epoch=0, progress=silent, label="x")
    assert list(out.parent.iterdir()) == []


def test_unknown_compression_leaves_nothing(src: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown compression"):
        write_tar(
            _entries(src),
            tmp_path / "a.tar.zst",
            compression="zst",
            epoch=0,
            progress=silent,
            label="x",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
