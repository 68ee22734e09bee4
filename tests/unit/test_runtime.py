from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.servers import Routes, serve
from support.tarballs import fake_runtime

from pyfn_action.errors import ChecksumMismatch, ConfigError, RuntimeFetchError
from pyfn_action.runtime.pypy import (
    RuntimeRequest,
    load_manifest,
    resolve_runtime,
    select_build,
)

NAME = "pypy3.9-v7.3.11-linux64.tar.gz"


@pytest.fixture
def archive(tmp_path: Path) -> tuple[bytes, str]:
    path = tmp_path / NAME
    sha = fake_runtime(path)
    return path.read_bytes(), sha


def test_manifest_matches_the_published_sums() -> None:
    builds = load_manifest()
    shared = Path(__file__).parents[3] / "shared" / "data" / "pypy-sha256.txt"
    if shared.is_file():
        published = {
            line.split()[1]: line.split()[0]
            for line in shared.read_text().splitlines()
            if line and not line.startswith("#")
        }
        assert {b.filename: b.sha256 for b in builds} == published
    assert {b.arch for b in builds} == {"x86_64", "aarch64"}


def test_select_newest_and_pinned() -> None:
    builds = load_manifest()
    newest = select_build(RuntimeRequest("pypy3.11", "x86_64"), builds)
    assert newest.filename == "pypy3.11-v7.3.23-linux64.tar.bz2"
    assert newest.url() == "https://downloads.python.org/pypy/pypy3.11-v7.3.23-linux64.tar.bz2"
    pinned = select_build(RuntimeRequest("pypy3.10", "aarch64", "7.3.19"), builds)
    assert pinned.filename == "pypy3.10-v7.3.19-aarch64.tar.bz2"
    with pytest.raises(ConfigError, match="known releases"):
        select_build(RuntimeRequest("pypy3.10", "x86_64", "7.3.1"), builds)


def test_download_verify_cache(tmp_path: Path, archive: tuple[bytes, str]) -> None:
    data, sha = archive
    routes = Routes(files={f"/{NAME}": data})
    cache = tmp_path / "cache"
    with serve(routes) as base:
        request = RuntimeRequest(archive=f"{base}/{NAME}", sha256=sha)
        runtime = resolve_runtime(request, cache)
        again = resolve_runtime(request, cache)
    assert routes.hits == [f"/{NAME}"]  # the second call came from the cache
    assert runtime == again
    assert (runtime.python_version, runtime.pypy_version, runtime.arch) == (
        "3.9",
        "7.3.11",
        "x86_64",
    )
    assert runtime.target((2, 35)).abi == "pypy39_pp73"
    assert runtime.executable.is_file()
    assert (cache / "archives" / sha / NAME).read_bytes() == data


def test_checksum_mismatch_leaves_cache_untouched(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    data, _ = archive
    cache = tmp_path / "cache"
    with serve(Routes(files={f"/{NAME}": data})) as base:
        with pytest.raises(ChecksumMismatch, match="expected SHA-256 0000"):
            resolve_runtime(RuntimeRequest(archive=f"{base}/{NAME}", sha256="0" * 64), cache)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_cut_off_download_leaves_no_entry(tmp_path: Path, archive: tuple[bytes, str]) -> None:
    data, sha = archive
    cache = tmp_path / "cache"
    routes = Routes(files={f"/{NAME}": data}, cut_after={f"/{NAME}": len(data) // 2})
    with serve(routes) as base, pytest.raises(RuntimeFetchError, match="cut off"):
        resolve_runtime(RuntimeRequest(archive=f"{base}/{NAME}", sha256=sha), cache)
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_unreachable_host_says_what_to_do(tmp_path: Path) -> None:
    with serve(Routes()) as base:
        pass  # the port is closed again: nothing listens there
    with pytest.raises(RuntimeFetchError, match="runtime pack"):
        resolve_runtime(
            RuntimeRequest(archive=f"{base}/{NAME}", sha256="1" * 64), tmp_path / "cache"
        )


def test_mirror_replaces_the_official_host(tmp_path: Path) -> None:
    routes = Routes()
    with serve(routes) as base, pytest.raises(RuntimeFetchError, match="HTTP 404"):
        resolve_runtime(RuntimeRequest("pypy3.10", mirror=f"{base}/mirror"), tmp_path)
    assert routes.hits == ["/mirror/pypy3.10-v7.3.19-linux64.tar.bz2"]


def test_corrupt_cache_entries_are_replaced(tmp_path: Path, archive: tuple[bytes, str]) -> None:
    data, sha = archive
    cache = tmp_path / "cache"
    local = tmp_path / NAME
    request = RuntimeRequest(archive=str(local), sha256=sha)
    runtime = resolve_runtime(request, cache)
    # a truncated file in the extracted tree
    (runtime.root / "lib" / "pypy3.9" / "os.py").write_text("")
    # and a corrupted cached archive
    cached_archive = cache / "archives" / sha / NAME
    cached_archive.write_bytes(b"garbage")
    repaired = resolve_runtime(request, cache)
    assert (repaired.root / "lib" / "pypy3.9" / "os.py").read_text() == "# os\n"
    assert cached_archive.read_bytes() == data
    record = json.loads((cache / "runtimes" / f"{sha}.json").read_text())
    assert record["files"]["lib/pypy3.9/os.py"] == 5


def test_archive_without_the_layout_is_refused(tmp_path: Path) -> None:
    import hashlib
    import tarfile

    path = tmp_path / "notpypy.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(__file__, arcname="top/README")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(RuntimeFetchError, match="official layout"):
        resolve_runtime(RuntimeRequest(archive=str(path), sha256=sha), tmp_path / "cache")
    assert not list((tmp_path / "cache" / "runtimes").glob("*.json"))


def test_tampered_mirror_is_refused(tmp_path: Path) -> None:
    """An official build fetched through a mirror must still match the published sum."""
    name = "pypy3.10-v7.3.19-linux64.tar.bz2"
    routes = Routes(files={f"/m/{name}": b"not the official bytes"})
    with serve(routes) as base, pytest.raises(ChecksumMismatch, match="c73ac2cc"):
        resolve_runtime(RuntimeRequest("pypy3.10", mirror=f"{base}/m"), tmp_path / "c")
    assert not any(p.is_file() for p in (tmp_path / "c").rglob("*"))


def test_leftovers_of_a_killed_build_are_cleared(
    tmp_path: Path, archive: tuple[bytes, str]
) -> None:
    """A build killed mid-download or mid-extraction leaves temporary files; the next one
    (holding the entry's lock, so nobody else is writing them) removes them."""
    _, sha = archive
    cache = tmp_path / "cache"
    half_tree = cache / "runtimes" / f".{sha}.k1ll3d" / "tree" / "lib"
    half_tree.mkdir(parents=True)
    (half_tree / "half.py").write_text("#")
    part = cache / "archives" / sha / f".{NAME}.k1ll3d.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half")
    runtime = resolve_runtime(RuntimeRequest(archive=str(tmp_path / NAME), sha256=sha), cache)
    assert runtime.executable.is_file()
    assert sorted(p.name for p in (cache / "runtimes").iterdir()) == [sha, f"{sha}.json"]
    assert sorted(p.name for p in (cache / "archives" / sha).iterdir()) == [NAME]


def test_unsafe_archive_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    import hashlib
    import tarfile

    from support.tarballs import TOP, add_file, add_link

    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        add_file(tar, f"{TOP}/bin/pypy3.9", b"#!/bin/sh\n", 0o755)
        add_link(tar, f"{TOP}/a", ".")
        add_link(tar, f"{TOP}/a/a/a/b", "../../..")
        add_file(tar, f"{TOP}/a/a/a/b/ESCAPED", b"pwned")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeFetchError, match="Refusing") as caught:
        resolve_runtime(RuntimeRequest(archive=str(path), sha256=sha), cache)
    assert caught.value.exit_code == 4
    assert not list(tmp_path.rglob("ESCAPED"))
    assert not [p for p in cache.rglob("*") if not p.is_dir()]  # no archive, tree or lock
