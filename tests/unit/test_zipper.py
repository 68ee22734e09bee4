from __future__ import annotations

import hashlib
import stat
import zipfile
from pathlib import Path

import pytest

from pyfn_action.errors import BundleError
from pyfn_action.stage import Entry
from pyfn_action.zipper import write_zip, zip_time


def _entries(tmp_path: Path) -> list[Entry]:
    exe = tmp_path / "pypy3.11"
    exe.write_bytes(b"\x7fELF" + bytes(1000))
    exe.chmod(0o700)
    return [
        Entry("pypy/bin/pypy3.11", exe, None, True, "runtime", "runtime"),
        Entry("app/main.py", None, b"print('hi')\n" * 50, False, "app", "app"),
        Entry("index.js", None, b"module.exports = {}\n", False, "shim", "shim"),
    ]


def test_same_inputs_same_bytes(tmp_path: Path) -> None:
    one = write_zip(_entries(tmp_path), tmp_path / "a" / "bundle.zip", source_date_epoch=1700000000)
    two = write_zip(
        list(reversed(_entries(tmp_path))),
        tmp_path / "b" / "bundle.zip",
        source_date_epoch=1700000000,
    )
    assert one.sha256 == two.sha256 == hashlib.sha256(one.path.read_bytes()).hexdigest()
    three = write_zip(
        _entries(tmp_path), tmp_path / "c" / "bundle.zip", source_date_epoch=1800000000
    )
    assert three.sha256 != one.sha256


def test_zip_rules(tmp_path: Path) -> None:
    result = write_zip(_entries(tmp_path), tmp_path / "bundle.zip", source_date_epoch=0)
    with zipfile.ZipFile(result.path) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["app/main.py", "index.js", "pypy/bin/pypy3.11"]
    for info in infos:
        assert info.create_system == 3
        assert info.compress_type == zipfile.ZIP_DEFLATED
        assert info.date_time == (1980, 1, 1, 0, 0, 0)  # clamped, never before 1980
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert modes == {"app/main.py": 0o644, "index.js": 0o644, "pypy/bin/pypy3.11": 0o755}
    assert result.uncompressed_bytes == sum(i.file_size for i in infos)
    assert result.compressed_bytes == result.path.stat().st_size


@pytest.mark.parametrize(
    ("epoch", "expected"),
    [(0, (1980, 1, 1, 0, 0, 0)), (1700000000, (2023, 11, 14, 22, 13, 20))],
)
def test_zip_time(epoch: int, expected: tuple[int, ...]) -> None:
    assert zip_time(epoch) == expected


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "gone"
    entries = [Entry("x", missing, None, False, "app", "app")]
    with pytest.raises(BundleError, match="gone"):
        write_zip(entries, tmp_path / "out" / "bundle.zip")
    assert list((tmp_path / "out").iterdir()) == []
