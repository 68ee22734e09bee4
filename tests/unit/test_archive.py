from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from support.tarballs import TOP, add_file, add_link, fake_runtime

from pyfn_action.errors import RuntimeFetchError, UnsafeArchive
from pyfn_action.runtime.archive import extract


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


@pytest.mark.parametrize(
    ("kind", "name", "device"),
    [
        (tarfile.FIFOTYPE, "var/pipe", None),
        (tarfile.BLKTYPE, "dev/sda", (8, 0)),
        (tarfile.CHRTYPE, "dev/null", (1, 3)),
    ],
    ids=["fifo", "block-device", "char-device"],
)
@pytest.mark.parametrize("where", ["first", "last"])
@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_fifos_and_devices_are_refused_naming_the_entry(
    tmp_path: Path, kind: bytes, name: str, device: tuple[int, int] | None, where: str, mode: str
) -> None:
    """docs/security.md: a runtime archive is refused if a member "is a device or FIFO";
    judged before anything is written, so nothing is created, not even the files
    listed before it."""
    archive = tmp_path / "rt.tar"
    with tarfile.open(archive, mode) as tar:
        special = tarfile.TarInfo(f"{TOP}/{name}")
        special.type = kind
        special.mode = 0o666
        if device is not None:
            special.devmajor, special.devminor = device
        if where == "first":
            tar.addfile(special)
        add_file(tar, f"{TOP}/bin/pypy3.9", b"#!/bin/sh\n", 0o755)
        add_file(tar, f"{TOP}/lib/os.py", b"# os\n")
        if where == "last":
            tar.addfile(special)
    dest = tmp_path / "cache" / "tree"
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchive) as caught:
        extract(archive, dest)
    assert caught.value.what == f"Refusing rt.tar: entry '{TOP}/{name}' is a device file or FIFO"
    assert caught.value.why == "a runtime archive holds only files, directories and links"
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, not even the dest
    assert not dest.exists() and not dest.parent.exists()


def test_inner_symlink_is_allowed(tmp_path: Path) -> None:
    archive = _bad(tmp_path, lambda t: add_link(t, f"{TOP}/bin/pypy", "pypy3.9"))
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "bin" / "pypy").is_symlink()


# --- hostile archives: judged against where members really land, not their text ------


def _fifo(name: str):  # type: ignore[no-untyped-def]
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)

    return add


def _block(name: str):  # type: ignore[no-untyped-def]
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = tarfile.BLKTYPE
        tar.addfile(info)

    return add


def _all(*steps):  # type: ignore[no-untyped-def]
    def add(tar: tarfile.TarFile) -> None:
        for step in steps:
            step(tar)

    return add


def _sym(name: str, target: str):  # type: ignore[no-untyped-def]
    return lambda t: add_link(t, f"{TOP}/{name}", target)


def _hard(name: str, target: str):  # type: ignore[no-untyped-def]
    return lambda t: add_link(t, f"{TOP}/{name}", f"{TOP}/{target}", hard=True)


def _file(name: str, data: bytes = b"pwned"):  # type: ignore[no-untyped-def]
    return lambda t: add_file(t, f"{TOP}/{name}", data)


HOSTILE = [
    # a -> . makes a/a/a the root; b -> ../../.. from there is three levels up
    ("chain write", _all(_sym("a", "."), _sym("a/a/a/b", "../../.."), _file("a/a/a/b/ESCAPED"))),
    # x/.. reads as "." but x is the root, so up is the root's parent
    ("link via a link to the root's parent", _all(_sym("x", "."), _sym("up", "x/.."))),
    ("file through a link out", _all(_sym("x", "."), _sym("up", "x/.."), _file("up/ESCAPED"))),
    # the read side: a hard link copies whatever its target resolves to
    ("hard link to a link out", _all(_sym("x", "."), _sym("s", "x/../secret"), _hard("h", "s"))),
    (
        "hard link through a linked dir",
        _all(_sym("x", "."), _sym("up", "x/.."), _hard("h", "up/secret")),
    ),
    ("hard link through an inner link", _all(_file("lib/f"), _sym("l", "lib"), _hard("h", "l/f"))),
    ("file through an inner link", _all(_file("lib/f"), _sym("l", "lib"), _file("l/g"))),
    ("hard link to a directory", _all(_file("lib/f"), _hard("h", "lib"))),
    ("hard link before its target", _all(_hard("h", "lib/f"), _file("lib/f"))),
    ("hard link to itself", _hard("h", "h")),
    ("hard link with '..'", lambda t: add_link(t, f"{TOP}/h", f"{TOP}/../x", hard=True)),
    ("hard link out of the top", lambda t: add_link(t, f"{TOP}/h", "etc/passwd", hard=True)),
    ("absolute hard link", lambda t: add_link(t, f"{TOP}/h", "/etc/passwd", hard=True)),
    ("symlink then file", _all(_sym("x", "."), _sym("f", "x/../secret"), _file("f"))),
    ("file then symlink", _all(_file("f"), _sym("x", "."), _sym("f", "x/../secret"))),
    ("file twice", _all(_file("bin/f", b"one"), _file("bin/f", b"two"))),
    (
        "same name spelled twice",
        _all(_file("bin/f"), lambda t: add_file(t, f"./{TOP}//bin/./f", b"x")),
    ),
    ("dir then symlink", _all(lambda t: t.addfile(_dir(f"{TOP}/d")), _sym("d", "x/.."))),
    ("link loop", _all(_sym("a", "b"), _sym("b", "a"))),
    ("self loop", _sym("a", "a/x")),
    ("deep '..' after links", _all(_sym("x", "."), _sym("y", "x/x/x/x/../../../../.."))),
    ("absolute symlink target", _sym("a", "/")),
    ("fifo", _fifo(f"{TOP}/pipe")),
    ("block device", _block(f"{TOP}/sda")),
]


def _dir(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info


@pytest.mark.parametrize(("label", "build"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_archives_are_refused_and_leave_nothing(tmp_path: Path, label: str, build) -> None:
    # as in the runtime cache: <cache>/runtimes/<tmp>/tree, a host file beside the tree
    dest = tmp_path / "cache" / "runtimes" / "x" / "tree"
    dest.parent.mkdir(parents=True)
    secret = dest.parent / "secret"
    secret.write_text("host secret")
    archive = _bad(tmp_path, build)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(UnsafeArchive):
        extract(archive, dest)
    assert not dest.exists()
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written anywhere
    assert secret.read_text() == "host secret"


def test_refusal_is_a_pyfn_error_with_advice(tmp_path: Path) -> None:
    archive = _bad(tmp_path, HOSTILE[0][1])
    with pytest.raises(UnsafeArchive) as caught:
        extract(archive, tmp_path / "out")
    assert caught.value.exit_code == 4
    assert "a/a/a/b" in caught.value.message and "pyfn runtime pack" in caught.value.message


LEGIT = [
    ("link to a directory", _all(_file("lib/f", b"F"), _sym("lib/alias", "."), _sym("l", "lib"))),
    ("link to the root", _sym("bin/root", "..")),
    ("chain inside", _all(_sym("a", "b"), _sym("b", "bin/pypy3.9"))),
    ("links through links, inside", _all(_sym("x", "."), _sym("y", "x/x/bin/../bin/pypy3.9"))),
    ("hard link to an earlier file", _all(_file("lib/f", b"F"), _hard("lib/g", "lib/f"))),
    ("hard link to a hard link", _all(_file("f", b"F"), _hard("g", "f"), _hard("h", "g"))),
    ("dangling inner link", _sym("bin/gone", "nothing-here")),
    (
        "directory twice",
        _all(lambda t: t.addfile(_dir(f"{TOP}/d")), lambda t: t.addfile(_dir(f"{TOP}/d"))),
    ),
    ("links listed before their targets", _all(_sym("bin/pypy3", "p"), _sym("bin/p", "pypy3.9"))),
]


@pytest.mark.parametrize(("label", "build"), LEGIT, ids=[h[0] for h in LEGIT])
def test_links_that_stay_inside_are_extracted(tmp_path: Path, label: str, build) -> None:
    dest = tmp_path / "out"
    extract(_bad(tmp_path, build), dest)
    assert (dest / "bin" / "pypy3.9").read_bytes() == b"x"
    for path in dest.rglob("*"):
        if path.is_symlink() and path.exists():
            assert path.resolve().is_relative_to(dest.resolve())


def test_hard_link_is_a_copy_of_its_target(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    extract(_bad(tmp_path, _all(_file("lib/f", b"F"), _hard("lib/g", "lib/f"))), dest)
    assert (dest / "lib" / "g").read_bytes() == b"F"
    assert not (dest / "lib" / "g").is_symlink()


def test_corrupt_data_is_refused_without_traceback(tmp_path: Path) -> None:
    """A gzip stream damaged past the headers fails while extracting, as a pyfn error."""
    import gzip

    archive = tmp_path / "rt.tar.gz"
    fake_runtime(archive, extra={"lib/big.bin": bytes(range(256)) * 4096})
    raw = bytearray(gzip.decompress(archive.read_bytes()))
    packed = bytearray(gzip.compress(bytes(raw)))
    packed[len(packed) // 2] ^= 0xFF
    archive.write_bytes(bytes(packed))
    dest = tmp_path / "out"
    with pytest.raises(RuntimeFetchError):
        extract(archive, dest)
    assert not dest.exists()


def test_huge_mtime_is_refused_without_traceback(tmp_path: Path) -> None:
    archive = tmp_path / "rt.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        add_file(tar, f"{TOP}/bin/pypy3.9", b"x", 0o755)
        info = tarfile.TarInfo(f"{TOP}/lib/f")
        info.mtime = 10**30
        tar.addfile(info, io.BytesIO(b""))
    dest = tmp_path / "out"
    with pytest.raises(RuntimeFetchError):
        extract(archive, dest)
    assert not dest.exists()
