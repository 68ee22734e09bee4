"""pyfn_action.runtime.libdeps: finding sonames as ld.so does, and what the image lacks."""

from __future__ import annotations

import logging
import shutil
import subprocess
from pathlib import Path

import pytest

from pyfn_action.runtime.elf import read_elf
from pyfn_action.runtime.libdeps import LibraryResolver, libraries_to_bundle, load_image_libs


def _build(tmp: Path, name: str, source: str, *flags: str) -> Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.fail("no C compiler (cc/gcc) on PATH: install gcc (CI does)")
    (tmp / f"{name}.c").write_text(source)
    out = tmp / name
    cmd = [cc, "-shared", "-fPIC", "-o", str(out), f"{name}.c", *flags]
    subprocess.run(cmd, check=True, cwd=tmp, capture_output=True)
    return out


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """app/libapp.so needs libinner.so.2 (found via $ORIGIN/../deps) and libm.so.6."""
    (tmp_path / "deps").mkdir()
    (tmp_path / "app").mkdir()
    inner = _build(
        tmp_path / "deps",
        "libinner.so.2",
        "int inner(void) { return 2; }\n",
        "-Wl,-soname,libinner.so.2",
    )
    _build(
        tmp_path / "app",
        "libapp.so",
        "int inner(void);\nint app(void) { return inner(); }\n",
        "-Wl,--no-as-needed,--enable-new-dtags,-rpath,$ORIGIN/../deps",
        str(inner),
        "-lm",
    )
    return tmp_path


def test_image_libs() -> None:
    libs = load_image_libs()
    assert {"libc.so.6", "libm.so.6", "libssl.so.3", "libsqlite3.so.0"} <= libs
    assert not any(name.startswith("#") or " " in name for name in libs)


def test_resolver_follows_origin_then_system(tree: Path) -> None:
    app = read_elf(tree / "app" / "libapp.so")
    resolver = LibraryResolver("x86_64", 64)
    assert resolver.resolve("libinner.so.2", app) == tree / "deps" / "libinner.so.2"
    libc = resolver.resolve("libc.so.6", app)
    assert libc is not None and read_elf(libc).soname == "libc.so.6"
    assert resolver.resolve("libnothing-here.so.9", app) is None
    assert LibraryResolver("aarch64", 64).resolve("libc.so.6", app) is None  # wrong machine


def test_bundles_what_the_image_lacks(tree: Path) -> None:
    app = read_elf(tree / "app" / "libapp.so")
    resolver = LibraryResolver("x86_64", 64, cache={})
    bundled = libraries_to_bundle([app], load_image_libs(), resolver)
    assert sorted(bundled) == ["libinner.so.2"]
    assert bundled["libinner.so.2"].path == tree / "deps" / "libinner.so.2"
    skipped = libraries_to_bundle(
        [app], load_image_libs(), resolver, skip=lambda soname, path: soname == "libinner.so.2"
    )
    assert skipped == {}


def test_missing_library_is_logged(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tree / "deps" / "libinner.so.2").unlink()
    app = read_elf(tree / "app" / "libapp.so")
    with caplog.at_level(logging.WARNING, logger="pyfn_action.runtime.libdeps"):
        bundled = libraries_to_bundle([app, app], load_image_libs(), LibraryResolver("x86_64", 64))
    assert bundled == {}
    assert [r.getMessage().count("libinner.so.2") for r in caplog.records] == [1]
