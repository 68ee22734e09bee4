from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import pytest

from pyfn_action.bundle.nodepackage import pinned
from pyfn_action.cli import run
from pyfn_action.errors import ServeError
from pyfn_action.flows.nodeframework import ensure_framework
from pyfn_action.flows.served import served_copy, unpack_bundle
from pyfn_action.report.manifest import FunctionInfo, Manifest

_MANIFEST = Manifest(
    pyfn_version="0",
    function=FunctionInfo(
        name="f", entry_point="main", signature="http", script=None, stdin=None, gen=2
    ),
    runtime={"executable": "pypy/bin/pypy3.11"},
).to_bytes()


def _zip(path: Path, members: dict[str, tuple[bytes, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, (data, mode) in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o100000 | mode) << 16
            zf.writestr(info, data)
    return path


def test_unpack_keeps_modes(tmp_path: Path) -> None:
    bundle = _zip(
        tmp_path / "b.zip",
        {
            "index.js": (b"//", 0o644),
            "pyfn/manifest.json": (_MANIFEST, 0o644),
            "pypy/bin/pypy3.11": (b"\x7fELF", 0o755),
        },
    )
    assert unpack_bundle(bundle, tmp_path / "out").function.entry_point == "main"
    assert (tmp_path / "out" / "pypy" / "bin" / "pypy3.11").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out" / "index.js").stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../escape.txt"])
def test_unpack_refuses_escaping_entries(tmp_path: Path, name: str) -> None:
    bundle = _zip(tmp_path / "b.zip", {name: (b"x", 0o644)})
    with pytest.raises(ServeError, match="outside its root"):
        unpack_bundle(bundle, tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()


def test_unpack_refuses_what_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(ServeError, match="not a pyfn bundle"):
        unpack_bundle(_zip(tmp_path / "b.zip", {"x": (b"", 0o644)}), tmp_path / "out")
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ServeError, match="Cannot unpack"):
        unpack_bundle(tmp_path / "junk.zip", tmp_path / "out2")
    incomplete = {"index.js": (b"//", 0o644), "pyfn/manifest.json": (b"{}", 0o644)}
    with pytest.raises(ServeError, match="not a complete manifest"):
        unpack_bundle(_zip(tmp_path / "c.zip", incomplete), tmp_path / "out3")


def test_missing_node_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ServeError) as info:
        ensure_framework(tmp_path, {"PATH": str(tmp_path)})
    assert "no `node` on PATH" in info.value.message
    assert "apt-get install nodejs" in info.value.message


def test_missing_npm_says_how_to_get_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    node = bin_dir / "node"
    node.write_text("#!/bin/sh\n")
    node.chmod(0o755)
    with pytest.raises(ServeError, match="npm is not installed"):
        ensure_framework(tmp_path / "cache", {"PATH": str(bin_dir)})
    assert not any((tmp_path / "cache").rglob("*.json"))  # nothing half-installed


def test_serve_cli_reports_a_bad_bundle(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    (tmp_path / "bad.zip").write_bytes(b"nope")
    env = {"PATH": "/usr/bin:/bin", "PYFN_CACHE_DIR": str(tmp_path / "c")}
    code = run(["serve", "--bundle", str(tmp_path / "bad.zip")], env, out, err)
    assert code == 8
    assert err.getvalue().startswith("pyfn: error: Cannot unpack")
    # Judged before the framework was fetched, and nothing unpacked is kept.
    assert not (tmp_path / "c" / "node-functions-framework").exists()
    assert not [p for p in (tmp_path / "c" / "served").iterdir() if p.is_dir()]


FAKE_NPM = """#!/bin/sh
# npm ci, standing in: slow, and it counts its runs.
echo run >> "$NPM_RUNS"
sleep 1
mkdir -p node_modules/@google-cloud/functions-framework/build/src
echo '// main' > node_modules/@google-cloud/functions-framework/build/src/main.js
echo '{"name": "@google-cloud/functions-framework", "version": "'"$FF_VERSION"'"}' \
  > node_modules/@google-cloud/functions-framework/package.json
"""
INSTALL = """
import os, sys, time
from pathlib import Path
from pyfn_action.flows.nodeframework import ensure_framework
barrier = Path(sys.argv[2])
deadline = time.monotonic() + 30
while not barrier.exists() and time.monotonic() < deadline:
    time.sleep(0.01)
print(ensure_framework(Path(sys.argv[1]), dict(os.environ)).home)
"""


def _fake_npm_env(tmp_path: Path, script: str, version: str) -> dict[str, str]:
    """The real node beside a fake npm that installs framework ``version``."""
    import os
    import shutil

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(script)
    (bin_dir / "npm").chmod(0o755)
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH (CI installs it)")
    (bin_dir / "node").symlink_to(node)
    return {
        **os.environ,
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "NPM_RUNS": str(tmp_path / "runs"),
        "FF_VERSION": version,
    }


def test_concurrent_serves_install_the_framework_once(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = _fake_npm_env(tmp_path, FAKE_NPM, pinned().version)
    cache, barrier = tmp_path / "cache", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INSTALL, str(cache), str(barrier)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    barrier.touch()
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert results[0][0] == results[1][0]
    assert (tmp_path / "runs").read_text().count("run") == 1
    assert [p.name for p in cache.rglob("*.lock")] == []


def test_an_install_of_another_version_is_refused_and_not_kept(tmp_path: Path) -> None:
    """npm ci that installs anything but the declared version leaves nothing behind."""
    env = _fake_npm_env(tmp_path, FAKE_NPM.replace("sleep 1", ""), "0.0.1")
    with pytest.raises(ServeError, match=r"did not install the declared .* 5\.0\.5"):
        ensure_framework(tmp_path / "cache", env)
    homes = tmp_path / "cache" / "node-functions-framework"
    assert [p.name for p in homes.iterdir() if not p.name.endswith(".lock")] == []


def test_the_launcher_removes_only_the_directory_serve_names(tmp_path: Path) -> None:
    """A PYFN_SERVE_CLEANUP in the caller's environment never reaches the launcher."""
    import os

    from pyfn_action.flows.nodeframework import Framework
    from pyfn_action.flows.serve import start, stop

    seen = tmp_path / "env"
    node = tmp_path / "node"
    node.write_text(f"#!/bin/sh\nenv > {seen}\n")
    node.chmod(0o755)
    framework = Framework(tmp_path, str(node), pinned())
    env = {"PATH": os.environ["PATH"], "PYFN_SERVE_CLEANUP": str(tmp_path / "precious")}
    for cleanup, wanted in ((None, None), (tmp_path / "unpacked", str(tmp_path / "unpacked"))):
        process = start(
            framework, tmp_path, entry_point="f", host="127.0.0.1", port=1, env=env, cleanup=cleanup
        )
        process.wait(timeout=10)  # the stand-in writes its environment and exits
        stop(process)
        named = [
            line.split("=", 1)[1]
            for line in seen.read_text().splitlines()
            if line.startswith("PYFN_SERVE_CLEANUP=")
        ]
        assert named == ([] if wanted is None else [wanted])


def _bundle(tmp_path: Path, name: str = "b.zip", text: bytes = b"//") -> Path:
    return _zip(
        tmp_path / name,
        {
            "index.js": (text, 0o644),
            "pyfn/manifest.json": (_MANIFEST, 0o644),
            "pypy/bin/pypy3.11": (b"\x7fELF", 0o755),
        },
    )


def test_a_served_copy_is_reused_while_it_matches_the_bundle(tmp_path: Path) -> None:
    bundle, cache = _bundle(tmp_path), tmp_path / "cache"
    with served_copy(bundle, cache) as first:
        assert not first.reused and first.cleanup is None
        assert first.root.is_relative_to(cache) and (first.root / "index.js").read_bytes() == b"//"
        inode = (first.root / "index.js").stat().st_ino
    with served_copy(bundle, cache) as again:
        assert again.reused and again.root == first.root
        assert (again.root / "index.js").stat().st_ino == inode  # not unpacked again
        assert again.manifest.function.entry_point == "main"


@pytest.mark.parametrize(
    "change", ["edit", "same-size", "add", "remove", "chmod", "incomplete", "linked-dir"]
)
def test_a_served_copy_that_differs_in_any_way_is_unpacked_again(
    tmp_path: Path, change: str
) -> None:
    bundle, cache = _bundle(tmp_path), tmp_path / "cache"
    with served_copy(bundle, cache) as first:
        root = first.root
    if change == "edit":
        (root / "index.js").write_bytes(b"// changed")
    elif change == "same-size":
        (root / "index.js").write_bytes(b"!!")  # only the CRC tells
    elif change == "add":
        (root / "app.db").write_bytes(b"")
    elif change == "remove":
        (root / "pypy" / "bin" / "pypy3.11").unlink()
    elif change == "chmod":
        (root / "pypy" / "bin" / "pypy3.11").chmod(0o644)
    elif change == "linked-dir":
        (root / "app.db").symlink_to(tmp_path, target_is_directory=True)  # holds no file
    else:
        (root.parent / ".complete").unlink()  # as if unpacking had been cut short
    with served_copy(bundle, cache) as again:
        assert not again.reused and again.root == root
        assert (root / "index.js").read_bytes() == b"//"
        assert (root / "pypy" / "bin" / "pypy3.11").stat().st_mode & 0o777 == 0o755
        assert not (root / "app.db").exists()


def test_a_changed_copy_in_use_is_left_to_its_holder(tmp_path: Path) -> None:
    bundle, cache = _bundle(tmp_path), tmp_path / "cache"
    with served_copy(bundle, cache) as holder:
        (holder.root / "state.json").write_text("{}")  # the function writes beside itself
        with served_copy(bundle, cache) as other:
            assert other.cleanup is not None and not other.root.is_relative_to(cache)
            assert not (other.root / "state.json").exists()
            private = other.cleanup
        assert not private.exists()  # a private copy goes when its serve ends
        assert (holder.root / "state.json").read_text() == "{}"  # untouched


def _served(cache: Path) -> set[str]:
    """The copies in the cache, by their bundle's SHA-256."""
    return {p.name for p in (cache / "served").iterdir() if p.is_dir()}


def _digest(bundle: Path) -> str:
    return hashlib.sha256(bundle.read_bytes()).hexdigest()


def test_served_copies_are_pruned_but_never_one_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    bundles = [_bundle(tmp_path, f"b{n}.zip", f"// {n}".encode()) for n in range(7)]
    digests = [_digest(b) for b in bundles]
    with served_copy(bundles[0], cache) as held:
        os.utime(held.root.parent / ".complete", (1, 1))  # the least recently served
        for n, bundle in enumerate(bundles[1:], 1):
            with served_copy(bundle, cache) as copy:
                os.utime(copy.root.parent / ".complete", (1000 + n, 1000 + n))
        # The four most recently served, and the oldest, which is in use.
        assert _served(cache) == {digests[n] for n in (0, 3, 4, 5, 6)}
        assert held.root.is_dir()
    with served_copy(bundles[6], cache):
        pass
    assert _served(cache) == {digests[n] for n in (3, 4, 5, 6)}  # no longer in use: gone


def test_the_four_most_recently_served_copies_are_kept(tmp_path: Path) -> None:
    """docs/runtime-contract.md: "the four most recently served copies are kept": served,
    not unpacked."""
    cache = tmp_path / "cache"
    bundles = [_bundle(tmp_path, f"b{n}.zip", f"// {n}".encode()) for n in range(5)]
    digests = [_digest(b) for b in bundles]
    for n in range(4):  # unpacked in this order, clearly apart in time
        with served_copy(bundles[n], cache) as copy:
            os.utime(copy.root.parent / ".complete", (1000 + n, 1000 + n))
    assert len(_served(cache)) == 4
    with served_copy(bundles[0], cache) as again:  # the oldest, served again
        assert again.reused
    with served_copy(bundles[4], cache):  # a fifth: the least recently served goes
        pass
    assert _served(cache) == {digests[n] for n in (0, 2, 3, 4)}


def test_a_cache_that_cannot_be_written_serves_a_private_copy(tmp_path: Path) -> None:
    bundle, cache = _bundle(tmp_path), tmp_path / "cache"
    cache.write_text("not a directory")
    with served_copy(bundle, cache) as copy:
        assert copy.cleanup is not None and (copy.root / "index.js").is_file()
    assert not copy.cleanup.exists()


def test_a_bad_bundle_is_refused_before_anything_is_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(ServeError, match="not a pyfn bundle"):
        with served_copy(_zip(tmp_path / "x.zip", {"x": (b"", 0o644)}), cache):
            pass
    assert not [p for p in (cache / "served").iterdir() if p.is_dir()]
    with pytest.raises(ServeError, match="Cannot unpack"):
        with served_copy(tmp_path / "missing.zip", cache):
            pass
