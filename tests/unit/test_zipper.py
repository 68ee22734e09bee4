from __future__ import annotations

import hashlib
import os
import shutil
import stat
import zipfile
import zlib
from pathlib import Path

import pytest

from pyfn_action.bundle import zipper
from pyfn_action.bundle.entry import Entry
from pyfn_action.bundle.zipper import write_zip, zip_time
from pyfn_action.errors import BundleError


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
        # Deflate where it pays, Stored where it does not: nothing else
        assert info.compress_type == (
            zipfile.ZIP_DEFLATED if info.compress_size < info.file_size else zipfile.ZIP_STORED
        )
        assert info.date_time == (1980, 1, 1, 0, 0, 0)  # clamped, never before 1980
    modes = {i.filename: stat.S_IMODE(i.external_attr >> 16) for i in infos}
    assert modes == {"app/main.py": 0o644, "index.js": 0o644, "pypy/bin/pypy3.11": 0o755}
    assert result.uncompressed_bytes == sum(i.file_size for i in infos)
    assert result.compressed_bytes == result.path.stat().st_size


def test_deflate_where_it_shrinks_the_file_stored_where_it_does_not(tmp_path: Path) -> None:
    """What docs/runtime-contract.md says the zip holds: Deflate, and Stored for a file
    Deflate would not make smaller; never another method."""
    import random

    noise = random.Random(7).randbytes(4096)  # incompressible: Deflate would grow it
    entries = [
        Entry("app/main.py", None, b"print('hi')\n" * 50, False, "app", "app"),
        Entry("app/noise.bin", None, noise, False, "app", "app"),
        Entry("app/empty.txt", None, b"", False, "app", "app"),
        Entry("app/x.txt", None, b"x", False, "app", "app"),
    ]
    for cache in (None, tmp_path / "cache", tmp_path / "cache"):  # cold, then warm
        result = write_zip(entries, tmp_path / "out" / "bundle.zip", cache_dir=cache)
        with zipfile.ZipFile(result.path) as zf:
            methods = {i.filename: i.compress_type for i in zf.infolist()}
            assert zf.testzip() is None
            assert zf.read("app/noise.bin") == noise
        assert methods == {
            "app/empty.txt": zipfile.ZIP_STORED,
            "app/main.py": zipfile.ZIP_DEFLATED,
            "app/noise.bin": zipfile.ZIP_STORED,
            "app/x.txt": zipfile.ZIP_STORED,
        }


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


def test_cache_warm_and_cold_give_the_same_bytes(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cold = write_zip(_entries(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache)
    warm = write_zip(_entries(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache)
    none = write_zip(_entries(tmp_path), tmp_path / "c" / "b.zip")
    assert cold.sha256 == warm.sha256 == none.sha256
    assert list((cache / "deflate").rglob("*"))  # it was used


def test_corrupt_cache_entry_is_recomputed_not_used(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    good = write_zip(_entries(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache)
    shutil.rmtree(cache / "zipblocks", ignore_errors=True)  # the runtime file: Deflate cache
    for path in (cache / "deflate").rglob("*"):
        if path.is_file():
            data = bytearray(path.read_bytes())
            data[-1] ^= 0xFF  # one flipped byte in each cached stream
            path.write_bytes(bytes(data))
    again = write_zip(_entries(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache)
    assert again.sha256 == good.sha256
    with zipfile.ZipFile(again.path) as zf:
        assert zf.testzip() is None


def test_unzip_accepts_it(tmp_path: Path) -> None:
    import subprocess

    result = write_zip(_entries(tmp_path), tmp_path / "b.zip")
    check = subprocess.run(["unzip", "-t", str(result.path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No errors detected" in check.stdout


def test_many_entries_use_zip64_end_records(tmp_path: Path) -> None:
    entries = [
        Entry(f"app/f{i:05d}.txt", None, b"%d" % i, False, "app", "app") for i in range(70_000)
    ]
    result = write_zip(entries, tmp_path / "big.zip")
    with zipfile.ZipFile(result.path) as zf:
        assert len(zf.namelist()) == 70_000
        assert zf.read("app/f69999.txt") == b"69999"


def test_a_name_that_is_not_utf8_is_an_error_naming_the_file(tmp_path: Path) -> None:
    # os.listdir gives undecodable bytes as surrogates (PEP 383): a zip cannot hold them.
    name = "app/caf\udce9.txt"
    entries = [Entry(name, None, b"x", False, "app", "app")]
    with pytest.raises(BundleError) as caught:
        write_zip(entries, tmp_path / "out" / "bundle.zip")
    assert "caf\\udce9.txt" in caught.value.message or "caf\\xe9.txt" in caught.value.message
    assert "UTF-8" in caught.value.message and "rename" in caught.value.message.lower()
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_a_name_too_long_for_a_zip_is_an_error(tmp_path: Path) -> None:
    entries = [Entry("app/" + "a/" * 40_000 + "x.py", None, b"x", False, "app", "app")]
    with pytest.raises(BundleError, match="too long"):
        write_zip(entries, tmp_path / "out" / "bundle.zip")


@pytest.fixture
def settled_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files count as settled at once (they were just made): blocks are kept."""
    from pyfn_action import fetch

    monkeypatch.setattr(fetch, "SETTLED_SECONDS", -1.0)


def _layered(tmp_path: Path, tag: str = "") -> list[Entry]:
    """A runtime and a site on disk (the parts kept as blocks) around data entries."""
    files = tmp_path / "files"
    entries = [
        Entry("app/main.py", None, f"print('hi'){tag}\n".encode() * 50, False, "app", "app"),
        Entry("index.js", None, b"module.exports = {}\n", False, "shim", "shim"),
        Entry("tail.txt", None, b"after the blocks\n", False, "shim", "shim"),  # sorts last
    ]
    for arcname, size, executable in (
        ("pypy/bin/pypy3.11", 3000, True),
        ("pypy/lib/os.py", 900, False),
        ("site/flask/app.py", 2000, False),
        ("site/flask/__init__.py", 0, False),
    ):
        path = files / arcname
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((arcname.encode() + b"\n") * (size // 20))
        entries.append(Entry(arcname, path, None, executable, "runtime", "runtime"))
    return entries


@pytest.mark.usefixtures("settled_now")
def test_runtime_and_site_blocks_are_reused_byte_for_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    plain = write_zip(_layered(tmp_path), tmp_path / "plain" / "b.zip")
    cold = write_zip(_layered(tmp_path), tmp_path / "cold" / "b.zip", cache_dir=cache)
    assert cold.sha256 == plain.sha256 and cold.entries == plain.entries
    assert len(list((cache / "zipblocks").glob("*.blk"))) == 2  # pypy/ and site/
    read: list[int] = []
    real = zipper.compress_all

    def counting(contents, cache, **kw):  # type: ignore[no-untyped-def]
        read.append(len(contents))
        return real(contents, cache, **kw)

    monkeypatch.setattr(zipper, "compress_all", counting)
    warm = write_zip(_layered(tmp_path, "!"), tmp_path / "warm" / "b.zip", cache_dir=cache)
    fresh = write_zip(_layered(tmp_path, "!"), tmp_path / "fresh" / "b.zip")
    assert read == [3, 7]  # warm: only the entries outside the blocks were read
    assert warm.sha256 == fresh.sha256 and warm.entries == fresh.entries
    with zipfile.ZipFile(warm.path) as zf:
        assert zf.testzip() is None
        assert zf.read("tail.txt") == b"after the blocks\n"  # offsets after a block hold
        assert zf.read("site/flask/app.py").startswith(b"site/flask/app.py")


_REAL_COMPRESSOBJ = zlib.compressobj


def _huffman_only(
    level: int = -1,
    method: int = zlib.DEFLATED,
    wbits: int = 15,
    mem_level: int = 8,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
) -> zlib._Compress:
    """Another zlib's compressor: it finds no matches, whatever it is asked for."""
    return _REAL_COMPRESSOBJ(level, method, wbits, mem_level, zlib.Z_HUFFMAN_ONLY)


@pytest.mark.usefixtures("settled_now")
def test_blocks_another_zlib_compressed_are_not_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same runtime and site files, zipped again after zlib changed (a Python or
    system upgrade): the blocks the old zlib wrote are not copied into the new zip."""
    cache = tmp_path / "cache"
    plain = write_zip(_layered(tmp_path), tmp_path / "plain" / "b.zip")
    with monkeypatch.context() as before:
        before.setattr(zlib, "ZLIB_RUNTIME_VERSION", "1.2.8-before")
        before.setattr(zlib, "compressobj", _huffman_only)
        old = write_zip(_layered(tmp_path), tmp_path / "old" / "b.zip", cache_dir=cache)
    assert old.sha256 != plain.sha256
    assert len(list((cache / "zipblocks").glob("*.blk"))) == 2  # kept, by the old zlib
    warm = write_zip(_layered(tmp_path), tmp_path / "warm" / "b.zip", cache_dir=cache)
    assert warm.sha256 == plain.sha256
    again = write_zip(_layered(tmp_path), tmp_path / "again" / "b.zip", cache_dir=cache)
    assert again.sha256 == plain.sha256
    assert len(list((cache / "zipblocks").glob("*.blk"))) == 4  # each zlib's own


@pytest.mark.usefixtures("settled_now")
def test_a_changed_file_makes_a_new_block(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    write_zip(_layered(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache)
    target = tmp_path / "files" / "site" / "flask" / "app.py"
    data = target.read_bytes()
    target.write_bytes(data.replace(b"site", b"SITE"))  # same size, other bytes
    st = target.stat()  # and a later time, as a change after the file settled gets
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = write_zip(_layered(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache)
    fresh = write_zip(_layered(tmp_path), tmp_path / "c" / "b.zip")
    assert again.sha256 == fresh.sha256
    with zipfile.ZipFile(again.path) as zf:
        assert zf.read("site/flask/app.py").startswith(b"SITE/flask/app.py")


@pytest.mark.usefixtures("settled_now")
def test_a_damaged_block_is_deleted_and_written_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache"
    good = write_zip(_layered(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache)
    for block in (cache / "zipblocks").glob("*.blk"):
        data = bytearray(block.read_bytes())
        data[-3] ^= 0xFF  # one flipped byte in the compressed data
        block.write_bytes(bytes(data))
    again = write_zip(_layered(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache)
    assert again.sha256 == good.sha256
    assert "damaged" in caplog.text
    with zipfile.ZipFile(again.path) as zf:
        assert zf.testzip() is None
    third = write_zip(_layered(tmp_path), tmp_path / "c" / "b.zip", cache_dir=cache)
    assert third.sha256 == good.sha256  # the blocks written anew are good


@pytest.mark.usefixtures("settled_now")
def test_the_eight_most_recently_used_blocks_are_kept(tmp_path: Path) -> None:
    """docs/configuration.md: "the eight most recently used are kept": used, not written."""
    cache, blocks = tmp_path / "cache", tmp_path / "cache" / "zipblocks"

    def zip_set(n: int) -> set[str]:
        """Zip file set n (its own runtime and site: two blocks); the blocks it added."""
        before = {p.name for p in blocks.glob("*.blk")}
        write_zip(_layered(tmp_path / f"set{n}"), tmp_path / f"z{n}" / "b.zip", cache_dir=cache)
        return {p.name for p in blocks.glob("*.blk")} - before

    made = [zip_set(n) for n in range(4)]  # eight blocks, written oldest first
    assert all(len(m) == 2 for m in made)
    for n, names in enumerate(made):  # clearly apart in time: set 0 the oldest
        for name in names:
            os.utime(blocks / name, (1_000_000 + n, 1_000_000 + n))
    assert zip_set(0) == set()  # set 0 again: its blocks are copied, so now the most recent
    made.append(zip_set(4))  # two more: the two least recently used go, set 1's
    kept = {p.name for p in blocks.glob("*.blk")}
    assert len(kept) == 8
    assert kept == made[0] | made[2] | made[3] | made[4]


def test_no_block_is_kept_of_files_changed_a_moment_ago(tmp_path: Path) -> None:
    """A change in the same tick of the kernel's clock would leave a file's times as they
    were: a block is kept only once its files' change times are older than that."""
    cache = tmp_path / "cache"
    first = write_zip(_layered(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache)
    assert not list((cache / "zipblocks").glob("*.blk"))
    again = write_zip(_layered(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache)
    assert again.sha256 == first.sha256


@pytest.mark.usefixtures("settled_now")
def test_a_block_removed_while_the_zip_is_written_is_still_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another build may prune a block between the check and the copy: the block is held
    open from the one to the other."""
    cache = tmp_path / "cache"
    first = write_zip(_layered(tmp_path), tmp_path / "a" / "b.zip", cache_dir=cache)
    real = zipper._copy_block
    removed: list[str] = []

    def pruned_meanwhile(segment, out):  # type: ignore[no-untyped-def]
        Path(segment.block.name).unlink()
        removed.append(segment.block.name)
        real(segment, out)

    monkeypatch.setattr(zipper, "_copy_block", pruned_meanwhile)
    again = write_zip(_layered(tmp_path), tmp_path / "b" / "b.zip", cache_dir=cache)
    assert len(removed) == 2 and again.sha256 == first.sha256
